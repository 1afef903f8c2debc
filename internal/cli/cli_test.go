package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitInternal},
		{usagef("bad flag"), ExitUsage},
		{flag.ErrHelp, ExitUsage},
		{errs.Invalid("x"), ExitInvalid},
		{fmt.Errorf("wrapped: %w", errs.NotFound("x")), ExitNotFound},
		{errs.Conflict("x"), ExitConflict},
		{errs.Forbidden("x"), ExitForbidden},
		{errs.Unavailable("x"), ExitUnavailable},
		{errs.Timeout("x"), ExitUnavailable},
		{errs.InsufficientStorage("x"), ExitUnavailable},
		{&api.StatusError{Status: 507, Err: api.Error{Kind: "insufficient_storage", Message: "m"}}, ExitUnavailable},
		{fmt.Errorf("list: %w", fmt.Errorf("%w at x: refused", api.ErrUnreachable)), ExitUnavailable},
		{fmt.Errorf("import: %w", fmt.Errorf("%w from x: EOF", api.ErrNoAnswer)), ExitUnavailable},
		{&api.StatusError{Status: 404, Err: api.Error{Kind: "not_found", Message: "m"}}, ExitNotFound},
		{fmt.Errorf("ctx: %w", &api.StatusError{Status: 400, Err: api.Error{Kind: "invalid"}}), ExitInvalid},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args     []string
		min, max int
		wantPos  []string
		wantName string
		wantErr  bool
	}{
		{[]string{"file.jsonl", "--name", "x"}, 1, 1, []string{"file.jsonl"}, "x", false},
		{[]string{"--name", "x", "file.jsonl"}, 1, 1, []string{"file.jsonl"}, "x", false},
		{[]string{"a", "--name=y", "b"}, 1, 2, []string{"a", "b"}, "y", false},
		{[]string{"--", "--name"}, 1, 1, []string{"--name"}, "", false},
		{[]string{}, 1, 1, nil, "", true},
		{[]string{"a", "b"}, 1, 1, nil, "", true},
		{[]string{"--nope"}, 0, 0, nil, "", true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		name := fs.String("name", "", "")
		pos, err := parse(fs, tt.args, tt.min, tt.max)
		if (err != nil) != tt.wantErr {
			t.Errorf("%v: err %v", tt.args, err)
			continue
		}
		if err == nil && (!slices.Equal(pos, tt.wantPos) || *name != tt.wantName) {
			t.Errorf("%v: pos %v name %q", tt.args, pos, *name)
		}
		if err != nil && ExitCode(err) != ExitUsage {
			t.Errorf("%v: exit code %d, want usage", tt.args, ExitCode(err))
		}
	}
}

func TestUnknownSubcommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"datset"}, nil, &out, &errOut); code != ExitUsage {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errOut.String(), `unknown subcommand "datset"`) || !strings.Contains(errOut.String(), "dataset") {
		t.Fatalf("stderr %q", errOut.String())
	}
}

func TestUnreachableServerSaysWhatToDo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"run", "list", "--server", "127.0.0.1:1"}, nil, &out, &errOut)
	if code != ExitUnavailable || !strings.Contains(errOut.String(), "TAILOR_SERVER") {
		t.Fatalf("exit %d stderr %q", code, errOut.String())
	}
}
