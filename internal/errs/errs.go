// Package errs defines the few error kinds every layer of Tailor wraps.
//
// Specific errors wrap one of the root kinds with short context, for example
//
//	fmt.Errorf("dataset %q: %w", name, errs.ErrNotFound)
//
// and exactly one place maps a kind to an HTTP status (internal/httpapi) and
// one place to a CLI exit code (internal/cli). Nothing here imports another
// Tailor package.
package errs

import (
	"errors"
	"fmt"
)

// The root kinds. Wrap them; never compare error text.
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalid     = errors.New("invalid")
	ErrConflict    = errors.New("conflict")
	ErrForbidden   = errors.New("forbidden")
	ErrUnavailable = errors.New("unavailable")
	// ErrTimeout is a client that stopped sending in the middle of a
	// request; retrying is safe.
	ErrTimeout = errors.New("timeout")
	// ErrInsufficientStorage is the server's disk without room for what
	// was asked (an import); retrying helps once space is freed.
	ErrInsufficientStorage = errors.New("insufficient storage")
	// ErrUnauthenticated is a request without valid credentials (no token,
	// a malformed, unknown, expired or revoked one); ErrForbidden is a known
	// principal without the right.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrRateLimited is a caller over its request rate; retrying after a
	// pause helps.
	ErrRateLimited = errors.New("rate limited")
)

// Kind names the root kind of err: "not_found", "invalid", "conflict",
// "forbidden", "unavailable", "timeout", "insufficient_storage",
// "unauthenticated", "rate_limited", or "internal" when err wraps none of
// them.
func Kind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrInsufficientStorage):
		return "insufficient_storage"
	case errors.Is(err, ErrUnauthenticated):
		return "unauthenticated"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	}
	return "internal"
}

// WithKind is the inverse of Kind: msg as an error of the named kind (an
// unknown name, "internal" included, gives a plain error). It rebuilds an
// error that crossed a process boundary as its kind's name and its text.
func WithKind(kind, msg string) error {
	roots := map[string]error{"not_found": ErrNotFound, "invalid": ErrInvalid, "conflict": ErrConflict,
		"forbidden": ErrForbidden, "unavailable": ErrUnavailable, "timeout": ErrTimeout, "insufficient_storage": ErrInsufficientStorage,
		"unauthenticated": ErrUnauthenticated, "rate_limited": ErrRateLimited}
	if root, ok := roots[kind]; ok {
		return &kindError{msg: msg, kind: root}
	}
	return errors.New(msg)
}

// kindError wraps a message with a root kind without putting the kind's own
// text ("invalid", "not found") into the message shown to the user.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Invalid returns an error of kind ErrInvalid with the formatted message.
func Invalid(format string, args ...any) error { return wrapf(ErrInvalid, format, args...) }

// NotFound returns an error of kind ErrNotFound with the formatted message.
func NotFound(format string, args ...any) error { return wrapf(ErrNotFound, format, args...) }

// Conflict returns an error of kind ErrConflict with the formatted message.
func Conflict(format string, args ...any) error { return wrapf(ErrConflict, format, args...) }

// Forbidden returns an error of kind ErrForbidden with the formatted message.
func Forbidden(format string, args ...any) error { return wrapf(ErrForbidden, format, args...) }

// Unavailable returns an error of kind ErrUnavailable with the formatted message.
func Unavailable(format string, args ...any) error { return wrapf(ErrUnavailable, format, args...) }

// Timeout returns an error of kind ErrTimeout with the formatted message.
func Timeout(format string, args ...any) error { return wrapf(ErrTimeout, format, args...) }

// InsufficientStorage returns an error of kind ErrInsufficientStorage with
// the formatted message.
func InsufficientStorage(format string, args ...any) error {
	return wrapf(ErrInsufficientStorage, format, args...)
}

func wrapf(kind error, format string, args ...any) error {
	// fmt.Errorf keeps any %w in args reachable through errors.Is as well.
	inner := fmt.Errorf(format, args...)
	return &multi{kindError: kindError{msg: inner.Error(), kind: kind}, inner: inner}
}

// multi unwraps to both the kind and any error wrapped in the message.
type multi struct {
	kindError
	inner error
}

func (e *multi) Unwrap() []error {
	out := []error{e.kind}
	if u := errors.Unwrap(e.inner); u != nil {
		out = append(out, u)
	} else if m, ok := e.inner.(interface{ Unwrap() []error }); ok {
		out = append(out, m.Unwrap()...)
	}
	return out
}

// Unauthenticated returns an error of kind ErrUnauthenticated with the
// formatted message.
func Unauthenticated(format string, args ...any) error {
	return wrapf(ErrUnauthenticated, format, args...)
}

// RateLimited returns an error of kind ErrRateLimited with the formatted
// message.
func RateLimited(format string, args ...any) error { return wrapf(ErrRateLimited, format, args...) }
