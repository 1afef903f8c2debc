package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{errs.Invalid("x"), http.StatusBadRequest},
		{fmt.Errorf("a: %w", errs.NotFound("x")), http.StatusNotFound},
		{errs.Conflict("x"), http.StatusConflict},
		{errs.Forbidden("x"), http.StatusForbidden},
		{errs.Unavailable("x"), http.StatusServiceUnavailable},
		{errs.Timeout("x"), http.StatusRequestTimeout},
		{&http.MaxBytesError{Limit: 1}, http.StatusRequestEntityTooLarge},
		{errs.Invalid("upload: %w", &http.MaxBytesError{Limit: 1}), http.StatusRequestEntityTooLarge},
		{fmt.Errorf("import: %w", errs.InsufficientStorage("x")), http.StatusInsufficientStorage},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got := Status(tt.err); got != tt.want {
			t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestQueryBool(t *testing.T) {
	tests := []struct {
		query   string
		want    bool
		wantErr string
	}{
		{"", false, ""},
		{"append=true", true, ""},
		{"append=1", true, ""},
		{"append=false", false, ""},
		{"append=yes", false, `query parameter append="yes": want true or false`},
		{"append=TRUE", false, `query parameter append="TRUE": want true or false`},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := queryBool(q, "append")
		if tt.wantErr != "" {
			if !errors.Is(err, errs.ErrInvalid) || err.Error() != tt.wantErr {
				t.Errorf("%q: err = %v, want %q", tt.query, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %v, %v; want %v", tt.query, got, err, tt.want)
		}
	}
}
