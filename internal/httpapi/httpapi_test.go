package httpapi

import (
	"errors"
	"fmt"
	"net/http"
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
		{&http.MaxBytesError{Limit: 1}, http.StatusRequestEntityTooLarge},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got := Status(tt.err); got != tt.want {
			t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
