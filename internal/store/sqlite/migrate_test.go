package sqlite

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store/sqlstore"
)

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, body := range files {
		m[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return m
}

func migrations(t *testing.T, files map[string]string) []migration {
	t.Helper()
	migs, err := sqlstore.LoadMigrations(mapFS(files))
	if err != nil {
		t.Fatal(err)
	}
	return migs
}

func tables(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[n] = true
	}
	return out
}

func TestEmbeddedMigrations(t *testing.T) {
	migs, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tailor.db")
	s := openFile(t, path)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != migs[len(migs)-1].Version {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, migs[len(migs)-1].Version)
	}
	for _, tbl := range []string{"dataset_versions", "base_versions", "recipe_versions", "runs", "run_logs", "aliases", "events", "schema_migrations",
		"model_versions", "eval_reports", "alias_history", "approvals", "trigger_firings", "trigger_cursor", "run_usage", "request_usage"} {
		if !tables(t, s)[tbl] {
			t.Errorf("table %s missing", tbl)
		}
	}
	var appliedAt string
	if err := s.r.QueryRowContext(ctx, `SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&appliedAt); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopening is a no-op: nothing is applied again.
	s = openFile(t, path)
	defer s.Close()
	var n int
	var again string
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MAX(applied_at) FROM schema_migrations`).Scan(&n, &again); err != nil {
		t.Fatal(err)
	}
	if n != len(migs) || again != appliedAt {
		t.Errorf("after reopen: %d rows applied at %s, want %d at %s", n, again, len(migs), appliedAt)
	}
}

func TestUpgradeAndFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tailor.db")
	v1 := map[string]string{"0001_a.sql": "CREATE TABLE a (x INTEGER);"}
	s, err := open(path, Options{}, migrations(t, v1))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	v2 := map[string]string{"0001_a.sql": v1["0001_a.sql"],
		"0002_b.sql": "CREATE TABLE b (y TEXT);\nINSERT INTO a (x) VALUES (1);"}
	s, err = open(path, Options{}, migrations(t, v2))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersion(ctx); v != 2 || !tables(t, s)["b"] {
		t.Fatalf("after upgrade: version %d, tables %v", v, tables(t, s))
	}
	s.Close()

	// A failing migration leaves nothing behind: neither its first
	// statement nor the step before it in the same batch.
	v4 := map[string]string{"0001_a.sql": v1["0001_a.sql"], "0002_b.sql": v2["0002_b.sql"],
		"0003_c.sql": "CREATE TABLE c (z);",
		"0004_d.sql": "CREATE TABLE d (w);\nINSERT INTO nowhere VALUES (1);"}
	_, err = open(path, Options{}, migrations(t, v4))
	if err == nil || !strings.Contains(err.Error(), "0004_d.sql") {
		t.Fatalf("failing migration: err %v, want one naming 0004_d.sql", err)
	}
	s, err = open(path, Options{}, migrations(t, v2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tbl := tables(t, s)
	if v, _ := s.SchemaVersion(ctx); v != 2 || tbl["c"] || tbl["d"] {
		t.Errorf("after failed upgrade: version %d, tables %v; want 2 without c, d", v, tbl)
	}
}

// TestGapFilledLater: numbers are handed out to parallel branches, so a
// file migrated with 1 and 3 gets 2 when a binary that has it opens it.
func TestGapFilledLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tailor.db")
	v13 := map[string]string{"0001_a.sql": "CREATE TABLE a (x INTEGER);", "0003_c.sql": "CREATE TABLE c (z);"}
	s, err := open(path, Options{}, migrations(t, v13))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersion(ctx); v != 3 || !tables(t, s)["c"] || tables(t, s)["b"] {
		t.Fatalf("with a gap: version %d, tables %v", v, tables(t, s))
	}
	s.Close()
	v123 := map[string]string{"0001_a.sql": v13["0001_a.sql"], "0002_b.sql": "CREATE TABLE b (y);", "0003_c.sql": v13["0003_c.sql"]}
	s, err = open(path, Options{}, migrations(t, v123))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if !tables(t, s)["b"] || n != 3 {
		t.Errorf("gap filled: tables %v, %d migrations recorded; want b and 3", tables(t, s), n)
	}
	// A binary without 2 refuses the file that has it.
	if _, err := open(path, Options{}, migrations(t, v13)); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("open with a version the binary lacks = %v, want conflict", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tailor.db")
	s := openFile(t, path)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 'x')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(path, Options{})
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "999") {
		t.Fatalf("Open newer file = %v, want ErrConflict naming version 999", err)
	}
}
