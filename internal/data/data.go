// Package data owns Tailor's datasets: record schemas for each task, readers
// for JSONL and CSV files, canonical record encoding, content-defined chunking
// into the blob store, immutable dataset versions described by a Manifest, the
// statistical Profile computed at ingest (the drift reference), deterministic
// train/validation/test splits, and diffs between versions.
//
// Everything streams: a file of any size is imported in memory bounded by the
// chunk size, the sketches of the profile, a few batches of records queued
// for the profile's goroutine, and a set of 16-byte id hashes.
// Chunks go to a Sink and come back from a Source (blob.Store satisfies both);
// the caller stores the Manifest and the store.DatasetVersion row.
//
// This package imports only internal/errs and the standard library; it must
// not import internal/store or internal/blob implementations.
package data

import (
	"context"
	"fmt"
	"io"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Tasks a dataset can serve.
const (
	TaskClassify = "classify" // text, label
	TaskSFT      = "sft"      // prompt + completion, or chat messages
	TaskText     = "text"     // text alone: a corpus for causal-LM pretraining
)

// Formats Import reads.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// Split names, as ReadRecords takes them.
const (
	SplitTrain      = "train"
	SplitValidation = "validation"
	SplitTest       = "test"
)

// Chat roles accepted in sft messages.
var roles = map[string]bool{"system": true, "user": true, "assistant": true, "tool": true}

// Message is one turn of an sft chat record.
type Message struct {
	Content string `json:"content"`
	Role    string `json:"role"`
}

// Record is one dataset record. Which fields are set depends on the task:
// classify uses Text and Label; sft uses Prompt and Completion, or Messages.
// ID is always set once a record has been imported (explicit or derived from
// content, see docs/datasets.md).
//
// The field order is alphabetical so that encoding/json writes the canonical
// form with sorted keys; Metadata maps are sorted by encoding/json as well.
type Record struct {
	Completion string         `json:"completion,omitempty"`
	ID         string         `json:"id,omitempty"`
	Label      string         `json:"label,omitempty"`
	Messages   []Message      `json:"messages,omitempty"`
	Metadata   map[string]any `json:"metadata,omitempty"`
	Prompt     string         `json:"prompt,omitempty"`
	Text       string         `json:"text,omitempty"`
}

// Sink stores bytes and returns their digest and size. blob.Store satisfies it.
type Sink interface {
	Put(ctx context.Context, r io.Reader) (string, int64, error)
}

// Source opens stored bytes by digest. blob.Store satisfies it.
type Source interface {
	Open(ctx context.Context, digest string) (io.ReadCloser, error)
}

// Pos locates a record in its input file: Line is 1-based; Record is the
// 1-based data record number (CSV: not counting the header).
type Pos struct {
	File   string
	Line   int64
	Record int64
	csv    bool // errors name "record N, column" instead of "field"
}

func (p Pos) file() string {
	if p.File == "" {
		return "<input>"
	}
	return p.File
}

// invalidf returns an errs.Invalid error prefixed with "file:line: ".
// Line 0 (the whole file) is left out.
func (p Pos) invalidf(format string, args ...any) error {
	if p.Line == 0 {
		return errs.Invalid("%s: %s", p.file(), fmt.Sprintf(format, args...))
	}
	return errs.Invalid("%s:%d: %s", p.file(), p.Line, fmt.Sprintf(format, args...))
}

// fieldf returns an error naming the field: `file:line: field "x": ...`,
// or for CSV `file:line: record N, column "x": ...`.
func (p Pos) fieldf(field, format string, args ...any) error {
	if p.csv {
		return p.columnf(field, format, args...)
	}
	return p.invalidf("field %q: %s", field, fmt.Sprintf(format, args...))
}

// columnf returns a CSV error: `file:line: record N, column "x": ...`.
func (p Pos) columnf(column, format string, args ...any) error {
	return p.invalidf("record %d, column %q: %s", p.Record, column, fmt.Sprintf(format, args...))
}

func checkTask(task string) error {
	switch task {
	case TaskClassify, TaskSFT, TaskText:
		return nil
	}
	return errs.Invalid("unknown task %q: want %q, %q or %q", task, TaskClassify, TaskSFT, TaskText)
}
