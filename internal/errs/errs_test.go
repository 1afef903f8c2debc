package errs

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{io.EOF, "internal"},
		{Invalid("line %d: field %q missing", 3, "label"), "invalid"},
		{fmt.Errorf("import: %w", NotFound("dataset %q", "x")), "not_found"},
		{Conflict("exists"), "conflict"},
		{Forbidden("region"), "forbidden"},
		{Unavailable("busy"), "unavailable"},
		{Timeout("stalled"), "timeout"},
		{fmt.Errorf("import: %w", InsufficientStorage("disk full")), "insufficient_storage"},
		{fmt.Errorf("x: %w", ErrInvalid), "invalid"},
		{Unauthenticated("no token"), "unauthenticated"},
		{fmt.Errorf("token: %w", RateLimited("slow down")), "rate_limited"},
	}
	for _, tt := range tests {
		if got := Kind(tt.err); got != tt.want {
			t.Errorf("Kind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestMessageAndWrapped(t *testing.T) {
	err := Invalid("read %s: %w", "a.jsonl", io.ErrUnexpectedEOF)
	if got := err.Error(); got != "read a.jsonl: unexpected EOF" {
		t.Fatalf("message %q", got)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is lost a wrapped error")
	}
}

// WithKind rebuilds every kind Kind names, keeping the text; anything else
// is internal.
func TestWithKindInvertsKind(t *testing.T) {
	for _, kind := range []string{"not_found", "invalid", "conflict", "forbidden", "unavailable", "timeout", "insufficient_storage", "unauthenticated", "rate_limited", "internal", "bogus"} {
		err := WithKind(kind, "the text")
		want := kind
		if kind == "bogus" {
			want = "internal"
		}
		if got := Kind(err); got != want || err.Error() != "the text" {
			t.Errorf("WithKind(%q): kind %q, text %q", kind, got, err)
		}
	}
}
