// Package recipes holds the recipes Tailor ships: the pretraining recipe of
// its own base model (tailor-tiny.yaml), the SpamAssassin classifier the demo
// trains (spam-lora.yaml), its incremental retraining on labelled feedback
// (spam-lora-incremental.yaml) and an SFT example (email-headers-sft.yaml). They
// are plain files for users to copy, embedded so the demo needs no checkout.
package recipes

import "embed"

// Files holds every *.yaml recipe in this folder.
//
//go:embed *.yaml
var Files embed.FS

// Read returns one embedded recipe by file name.
func Read(name string) ([]byte, error) { return Files.ReadFile(name) }
