package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/store"
)

// lostExecutor runs real child workers like LocalExecutor and reports a
// worker's exit status 75 as ErrWorkerLost, the way the Kubernetes
// executor reports a Job whose pod was deleted.
type lostExecutor struct{ LocalExecutor }

type lostProcess struct{ Process }

func (e *lostExecutor) Start(ctx context.Context, spec Spec) (Process, error) {
	p, err := e.LocalExecutor.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return lostProcess{p}, nil
}

func (p lostProcess) Wait() error {
	err := p.Process.Wait()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 75 {
		return fmt.Errorf("pod deleted: %w", ErrWorkerLost)
	}
	return err
}

func TestLostWorkerResumes(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode        string
		maxAttempts int
		want        store.RunState
		attempts    int
		transitions []string
	}{
		{"lost", 0, store.RunSucceeded, 2, []string{"queued", "running", "queued", "running", "succeeded"}},
		{"always-lost", 3, store.RunFailed, 3, []string{"queued", "running", "queued", "running", "queued", "running", "failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
			exe := &lostExecutor{LocalExecutor{Command: []string{self, "-test.run=^$"}, Env: []string{"TAILOR_TEST_WORKER=" + tc.mode}}}
			f := &fixture{st: st, pub: &recorder{}}
			f.sched = New(Options{Store: st, Publisher: f.pub, Executor: exe, MaxAttempts: tc.maxAttempts})
			ctx, cancel := context.WithCancel(context.Background())
			f.stop = func() { cancel(); f.sched.Wait() }
			if err := f.sched.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(f.stop)
			submit(t, f, "run-l")
			r := waitState(t, st, "run-l", tc.want)
			if r.Attempt != tc.attempts {
				t.Errorf("attempts %d, want %d", r.Attempt, tc.attempts)
			}
			if got := f.pub.transitions("run-l"); !slices.Equal(got, tc.transitions) {
				t.Errorf("transitions %v, want %v", got, tc.transitions)
			}
			if tc.want == store.RunSucceeded {
				var m struct {
					Resume  string
					Attempt int
				}
				if err := json.Unmarshal(r.Metrics, &m); err != nil {
					t.Fatal(err)
				}
				// Attempt 2 resumed from attempt 1's last checkpoint.
				if m.Resume != "sha256:ckpt2-a1" || m.Attempt != 2 {
					t.Errorf("attempt 2 got resume %q attempt %d; want sha256:ckpt2-a1, 2", m.Resume, m.Attempt)
				}
			} else if !strings.Contains(r.Error, "pod deleted: worker lost") {
				t.Errorf("failed run's error %q does not say its worker was lost", r.Error)
			}
		})
	}
}
