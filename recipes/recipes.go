// Package recipes holds the recipes Tailor ships: the pretraining recipe of
// its own base model (tailor-tiny.yaml), the SpamAssassin classifier the demo
// trains (spam-lora.yaml), its incremental retraining, an SFT example
// (email-headers-sft.yaml), and the monitor and trigger specs of the demo's
// act two. They are plain files for users to copy, embedded so the demo
// needs no checkout.
package recipes

import "embed"

// Files holds every *.yaml recipe in this folder.
//
//go:embed *.yaml
var Files embed.FS

// Specs holds the shipped monitor and trigger specs (monitors/*.yaml,
// triggers/*.yaml) that the demo's act two applies.
//
//go:embed monitors/*.yaml triggers/*.yaml
var Specs embed.FS

// Read returns one embedded recipe by file name.
func Read(name string) ([]byte, error) { return Files.ReadFile(name) }
