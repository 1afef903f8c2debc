// Package blob defines Tailor's content-addressed artifact store.
//
// Every artifact (dataset chunks and manifests, base-model files, recipe
// text, checkpoints, adapters, reports) is stored once under the sha256 of its
// bytes and never overwritten. Implementations live in sub-packages (local/,
// s3/) and must pass the conformance suite in blobtest/. This package
// imports only internal/errs.
package blob

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Digest is "sha256:" followed by 64 lower-case hex characters.
type Digest = string

// digestPrefix starts every Digest.
const digestPrefix = "sha256:"

// ParseDigest checks that d is "sha256:" followed by 64 lower-case hex
// characters and returns the hex part; the error is errs.Invalid and says
// what is wrong. Every store names its objects by this hex.
func ParseDigest(d Digest) (string, error) {
	h, ok := strings.CutPrefix(d, digestPrefix)
	if !ok {
		return "", errs.Invalid("blob digest %q: want prefix %q", d, digestPrefix)
	}
	if len(h) != 64 {
		return "", errs.Invalid("blob digest %q: want 64 hex characters, got %d", d, len(h))
	}
	for i := 0; i < len(h); i++ {
		if !hexDigit(h[i]) {
			return "", errs.Invalid("blob digest %q: character %d is not lower-case hex", d, len(digestPrefix)+i)
		}
	}
	return h, nil
}

// IsHex reports whether s is n lower-case hex characters (a digest's hex,
// or a shard folder's two).
func IsHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !hexDigit(s[i]) {
			return false
		}
	}
	return true
}

func hexDigit(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// Store is a content-addressed artifact store.
//
// Put is atomic (readers never see a partial blob) and idempotent (putting
// the same bytes twice returns the same digest and keeps one copy). Open,
// Stat and Verify return an error wrapping errs.ErrNotFound for an unknown
// digest and errs.ErrInvalid for a malformed one.
type Store interface {
	Put(ctx context.Context, r io.Reader) (Digest, int64, error)
	Open(ctx context.Context, d Digest) (io.ReadCloser, error)
	Stat(ctx context.Context, d Digest) (size int64, err error)
	// List calls fn for every stored blob in digest order.
	List(ctx context.Context, fn func(d Digest, size int64) error) error
	// Verify re-hashes the blob; a mismatch wraps errs.ErrConflict and names
	// the digest it actually has.
	Verify(ctx context.Context, d Digest) error
	// Delete removes a blob; used only by garbage collection and to discard
	// staged blobs. Deleting a missing blob is not an error.
	Delete(ctx context.Context, d Digest) error
}

// Toucher is a Store that knows when each blob was last written, which
// garbage collection needs to spare blobs a worker is about to report.
// Touch marks a stored blob as written now (what Put of the same bytes
// does); ModTime reads that time. Both stores in this module are Touchers;
// code that needs one asserts it and says so when the store is not.
type Toucher interface {
	Touch(ctx context.Context, d Digest) error
	ModTime(ctx context.Context, d Digest) (time.Time, error)
}
