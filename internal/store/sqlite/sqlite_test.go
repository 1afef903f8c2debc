package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/storetest"
)

var ctx = context.Background()

func openFile(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openFile(t, filepath.Join(t.TempDir(), "tailor.db"))
	})
}

func TestPragmas(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "tailor.db"))
	defer s.Close()
	tests := []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "1"}, // NORMAL
		{"busy_timeout", "10000"},
	}
	for _, tc := range tests {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := s.w.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
			}
		})
	}
	if _, err := s.r.ExecContext(ctx, "CREATE TABLE x (a)"); err == nil {
		t.Error("reader connection accepted a write")
	}
}

// Two Stores on one file see each other's writes and share one event
// sequence.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tailor.db")
	a, b := openFile(t, path), openFile(t, path)
	defer a.Close()
	defer b.Close()
	r := store.Run{ID: "run-1", Key: "k", State: store.RunQueued}
	evA, err := a.CreateRun(ctx, r, []store.Event{{Type: "run.created", Subject: "run-1"}})
	if err != nil {
		t.Fatal(err)
	}
	queued, running := store.RunQueued, store.RunRunning
	_, evB, err := b.UpdateRun(ctx, "run-1", store.RunUpdate{IfState: &queued, State: &running},
		[]store.Event{{Type: "run.state.changed", Subject: "run-1"}})
	if err != nil {
		t.Fatalf("second store cannot update the first one's run: %v", err)
	}
	if evB[0].Seq <= evA[0].Seq {
		t.Errorf("seq %d from b not after %d from a", evB[0].Seq, evA[0].Seq)
	}
	got, err := a.Run(ctx, "run-1")
	if err != nil || got.State != store.RunRunning {
		t.Fatalf("first store reads %v, %v; want running", got.State, err)
	}
	_, _, err = a.UpdateRun(ctx, "run-1", store.RunUpdate{IfState: &queued, State: &running}, nil)
	if !errors.Is(err, errs.ErrConflict) {
		t.Errorf("stale CAS across stores = %v, want ErrConflict", err)
	}
	evs, err := b.Events(ctx, 0, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events via b = %v, %v; want 2", evs, err)
	}
}

const childEnv = "TAILOR_SQLITE_CHILD"

// TestChildWriter is the body of a child process in TestProcesses.
func TestChildWriter(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("runs only as a child of TestProcesses")
	}
	path, name, _ := strings.Cut(spec, "|")
	s := openFile(t, path)
	defer s.Close()
	for i := range 10 {
		id := fmt.Sprintf("%s-%d", name, i)
		if _, err := s.CreateRun(ctx, store.Run{ID: id, Key: name}, []store.Event{{Type: "run.created", Subject: id}}); err != nil {
			t.Fatal(err)
		}
		for j := range 5 {
			if _, err := s.AppendRunLog(ctx, id, time.Time{}, json.RawMessage(`{"step":`+strconv.Itoa(j)+`}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Several processes (like the server and its workers) write one file at once.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "tailor.db")
	const n = 3
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|p%d", childEnv, path, i))
		cmds[i] = cmd
	}
	outs := make([][]byte, n)
	errc := make(chan error, n)
	for i, cmd := range cmds {
		go func() {
			var err error
			outs[i], err = cmd.CombinedOutput()
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Errorf("child: %v", err)
		}
	}
	if t.Failed() {
		for i, o := range outs {
			t.Logf("child %d output:\n%s", i, o)
		}
		t.FailNow()
	}
	s := openFile(t, path)
	defer s.Close()
	runs, err := s.Runs(ctx, store.RunFilter{})
	if err != nil || len(runs) != n*10 {
		t.Fatalf("runs = %d, %v; want %d", len(runs), err, n*10)
	}
	evs, err := s.Events(ctx, 0, 0)
	if err != nil || len(evs) != n*10 {
		t.Fatalf("events = %d, %v; want %d", len(evs), err, n*10)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
	for _, r := range runs {
		logs, err := s.RunLogs(ctx, r.ID, 0, 0)
		if err != nil || len(logs) != 5 || logs[4].Seq != 5 {
			t.Fatalf("run %s logs = %v, %v", r.ID, logs, err)
		}
	}
}

func TestOpenInvalidPath(t *testing.T) {
	for _, p := range []string{"", ":memory:", "a?mode=ro", "x#y"} {
		if _, err := Open(p, Options{}); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", p, err)
		}
	}
}
