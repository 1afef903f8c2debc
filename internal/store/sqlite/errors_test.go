package sqlite

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// dbErr gives a unique violation the conflict kind and a lock timeout the
// unavailable kind; other errors keep none.
func TestDBErr(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tailor.db")
	s := openFile(t, path)
	defer s.Close()
	_, err := s.w.ExecContext(ctx, `INSERT INTO projects (name, created_by, created_at) VALUES ('default', 'x', 'y')`)
	if err := dbErr(err); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("duplicate project row: %v, want ErrConflict", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO nowhere VALUES (1)`)
	if err := dbErr(err); err == nil || errs.Kind(err) != "internal" {
		t.Errorf("missing table: %v, want an error of no kind", err)
	}
	// A second store holding the write lock makes this one's write wait
	// out its busy timeout.
	other := openFile(t, path)
	defer other.Close()
	tx, err := other.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO trigger_cursor (id, seq) VALUES (1, 1)`); err != nil {
		t.Fatal(err)
	}
	short, err := Open(path, Options{BusyTimeout: 50 * time.Millisecond})
	if err == nil {
		defer short.Close()
		err = short.SaveTriggerCursor(ctx, 2)
	}
	if !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("write while another store holds the lock: %v, want ErrUnavailable", err)
	}
}
