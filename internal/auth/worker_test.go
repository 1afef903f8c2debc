package auth

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

type seeded struct{ r *rand.ChaCha8 }

func (s seeded) Read(b []byte) (int, error) { return s.r.Read(b) }

func TestWorkerCredentials(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := NewWorkerCredentials(WorkerOptions{TTL: time.Hour, Rand: seeded{rand.NewChaCha8([32]byte{7})}, Now: func() time.Time { return now }})
	a1, err := w.Mint("run-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := w.Mint("run-a", 2)
	b1, _ := w.Mint("run-b", 1)
	if !strings.HasPrefix(a1, "tlw_") || a1 == a2 {
		t.Fatalf("credentials %q %q", a1, a2)
	}
	userToken := "tlr_" + strings.TrimPrefix(a1, "tlw_")
	tampered := a1[:len(a1)-1] + map[bool]string{true: "0", false: "1"}[a1[len(a1)-1] != '0']
	tests := []struct {
		name, text, run string
		attempt         int
		kind            error // nil: accepted
		want            string
	}{
		{"own run, attempt 1", a1, "run-a", 1, nil, ""},
		{"own run, attempt 2", a2, "run-a", 2, nil, ""},
		{"other run", b1, "run-a", 0, errs.ErrForbidden, "is for another run, not run-a"},
		{"user token shape", userToken, "run-a", 0, errs.ErrUnauthenticated, "want tlw_<id>_<secret>"},
		{"wrong secret", tampered, "run-a", 0, errs.ErrUnauthenticated, "is not known to this server"},
		{"garbage", "tlw_xyz", "run-a", 0, errs.ErrUnauthenticated, "malformed worker credential"},
		{"empty", "", "run-a", 0, errs.ErrUnauthenticated, "malformed worker credential"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.Verify(tc.text, tc.run)
			if tc.kind == nil {
				if err != nil || got != tc.attempt {
					t.Fatalf("Verify = %d, %v; want %d", got, err, tc.attempt)
				}
				return
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify error %v; want %v containing %q", err, tc.kind, tc.want)
			}
			if strings.Contains(err.Error(), tc.text[min(len(tc.text), 21):]) && len(tc.text) > 21 {
				t.Fatalf("error %q repeats the secret", err)
			}
		})
	}
	// Revoking attempt 1 leaves attempt 2 (a new Job) working.
	w.Revoke("run-a", 1)
	if _, err := w.Verify(a1, "run-a"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("revoked credential: %v", err)
	}
	if got, err := w.Verify(a2, "run-a"); err != nil || got != 2 {
		t.Fatalf("attempt 2 after revoking 1: %d, %v", got, err)
	}
	now = now.Add(time.Hour)
	if _, err := w.Verify(a2, "run-a"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("expired credential: %v", err)
	}
}

func TestWorkerClassRefusesUsers(t *testing.T) {
	admin := Principal{Name: "root", TokenID: "tlr_0123456789abcdef", Project: "default", Roles: map[string]Role{"default": Admin}}
	err := Authorize(admin, "default", Worker, "GET /v1/runs/{id}/worker/spec")
	if !errors.Is(err, errs.ErrForbidden) || !strings.Contains(err.Error(), "only the run's own worker") {
		t.Fatalf("admin on a worker route: %v", err)
	}
}
