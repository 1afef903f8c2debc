// Package basemodel imports Hugging Face model folders as base-model
// versions: it validates config.json (via hfconfig), tokenizer.json and
// every safetensors header, checks the tensors against the architecture,
// streams the files into a content-addressed Sink and returns a Manifest with
// the model's fingerprint. Materialize writes a manifest's files back into a
// folder for a worker.
//
// # Fingerprint
//
// The fingerprint identifies the model independently of how its weights are
// sharded or which other files come along. It is the lower-case hex sha256
// of, in order (each "field" is a little-endian uint64 byte length followed
// by the bytes):
//
//	field("tailor.basemodel.fingerprint.v1")
//	field("config.json"), field(sha256(config.json bytes))
//	field("tokenizer.json"), field(sha256(tokenizer.json bytes))
//	for each tensor, in byte-wise sorted name order:
//	    field(name), field(dtype), field(shape as decimal dims joined by ","),
//	    field(sha256(the tensor's data bytes as stored))
//
// Tensor data is hashed per tensor rather than concatenated so that a tar
// stream, whose shards arrive in file order, can be fingerprinted in one pass
// with bounded memory; re-sharding the same weights keeps the fingerprint,
// converting their dtype changes it.
//
// This package imports internal/errs and the engine format packages; it does
// not import blob or store (the Sink and Source interfaces are what it needs).
package basemodel

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
)

// File is one stored file of a base model.
type File struct {
	Name   string `json:"name"`
	Digest string `json:"digest"` // as returned by the Sink, e.g. "sha256:…"
	Size   int64  `json:"size"`
}

// Manifest describes an imported base model. Its JSON is stored as a blob
// whose digest goes into store.BaseVersion.Manifest; Fingerprint is the
// BaseVersion ID.
type Manifest struct {
	Fingerprint string        `json:"fingerprint"`
	Name        string        `json:"name"`
	Arch        string        `json:"arch"`
	Params      int64         `json:"params"`
	Config      engine.Config `json:"config"`
	Dtype       string        `json:"dtype"` // F32, F16, BF16 or "mixed"
	Files       []File        `json:"files"` // sorted by name
	// Skipped lists files of the folder that were not stored (unknown kinds,
	// e.g. README.md or pytorch_model.bin).
	Skipped []string `json:"skipped,omitempty"`
}

// File returns the named file of the manifest.
func (m *Manifest) File(name string) (File, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// Sink stores a stream and returns its digest and size; blob.Store
// satisfies it. Import streams every kept file through Put; the caller stages
// the blobs (for example a sink that records digests and deletes them if
// Import fails) so that a failed import leaves nothing behind.
type Sink interface {
	Put(ctx context.Context, r io.Reader) (string, int64, error)
}

// fingerprint computes the documented fingerprint.
func fingerprint(config, tokenizer [32]byte, tensors []tensorRecord) string {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte("tailor.basemodel.fingerprint.v1"))
	field([]byte("config.json"))
	field(config[:])
	field([]byte("tokenizer.json"))
	field(tokenizer[:])
	sorted := append([]tensorRecord(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Info.Name < sorted[j].Info.Name })
	for _, t := range sorted {
		field([]byte(t.Info.Name))
		field([]byte(t.Info.DType))
		dims := make([]string, len(t.Info.Shape))
		for i, d := range t.Info.Shape {
			dims[i] = strconv.Itoa(d)
		}
		field([]byte(strings.Join(dims, ",")))
		field(t.Digest[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
