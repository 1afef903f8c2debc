package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/postgres/pgtest"
	"github.com/tailor-ml/tailor/internal/store/sqlstore"
	"github.com/tailor-ml/tailor/internal/store/storetest"
)

var ctx = context.Background()

// pg is this test binary's server; every test gets a database of its own.
var pg *pgtest.Server

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(m.Run()) // a child of TestProcesses: the parent's server
	}
	os.Exit(pgtest.Main(m, &pg))
}

func openURL(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(pg.Database(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestEmbeddedMigrations(t *testing.T) {
	migs, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	sqliteMigs, err := os.ReadDir("../sqlite/migrations")
	if err != nil {
		t.Fatal(err)
	}
	var names, want []string
	for _, m := range migs {
		names = append(names, m.Name)
	}
	for _, e := range sqliteMigs {
		want = append(want, e.Name())
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("postgres migrations %v, sqlite migrations %v: want the same numbers and names", names, want)
	}
	url := pg.Database(t)
	s := openURL(t, url)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != migs[len(migs)-1].Version {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, migs[len(migs)-1].Version)
	}
	var appliedAt string
	if err := s.db.QueryRowContext(ctx, `SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&appliedAt); err != nil {
		t.Fatal(err)
	}
	// Reopening applies nothing again.
	s2 := openURL(t, url)
	var n int
	var again string
	if err := s2.db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(applied_at) FROM schema_migrations`).Scan(&n, &again); err != nil {
		t.Fatal(err)
	}
	if n != len(migs) || again != appliedAt {
		t.Errorf("after reopen: %d rows applied at %s, want %d at %s", n, again, len(migs), appliedAt)
	}
	// The default project exists, created with a parseable time.
	p, err := s.Project(ctx, store.DefaultProject)
	if err != nil || p.CreatedAt.IsZero() {
		t.Errorf("default project = %+v, %v", p, err)
	}
}

func TestUpgradeAndFailure(t *testing.T) {
	url := pg.Database(t)
	v1 := []string{"0001_a.sql", "CREATE TABLE a (x BIGINT);"}
	v2 := append(v1, "0002_b.sql", "CREATE TABLE b (y TEXT);\nINSERT INTO a (x) VALUES (1);")
	s, err := open(url, Options{}, migrations(t, v1...))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = open(url, Options{}, migrations(t, v2...))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersion(ctx); v != 2 || !tables(t, s)["b"] {
		t.Fatalf("after upgrade: version %d, tables %v", v, tables(t, s))
	}
	s.Close()

	// A failing migration leaves nothing behind: neither its first
	// statement nor the step before it in the same batch.
	v4 := append(v2, "0003_c.sql", "CREATE TABLE c (z TEXT);",
		"0004_d.sql", "CREATE TABLE d (w TEXT);\nINSERT INTO nowhere VALUES (1);")
	_, err = open(url, Options{}, migrations(t, v4...))
	if err == nil || !strings.Contains(err.Error(), "0004_d.sql") {
		t.Fatalf("failing migration: err %v, want one naming 0004_d.sql", err)
	}
	s, err = open(url, Options{}, migrations(t, v2...))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tbl := tables(t, s)
	if v, _ := s.SchemaVersion(ctx); v != 2 || tbl["c"] || tbl["d"] {
		t.Errorf("after failed upgrade: version %d, tables %v; want 2 without c, d", v, tbl)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	url := pg.Database(t)
	s := openURL(t, url)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 'x')`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(url, Options{})
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "999") {
		t.Fatalf("Open newer database = %v, want ErrConflict naming version 999", err)
	}
}

// Stores opening one fresh database at once apply each migration once.
func TestConcurrentMigrate(t *testing.T) {
	url := pg.Database(t)
	const n = 6
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for range n {
		wg.Go(func() {
			s, err := Open(url, Options{})
			if err == nil {
				s.Close()
			}
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	s := openURL(t, url)
	migs, _ := embeddedMigrations()
	var rows, versions int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != len(migs) || versions != len(migs) {
		t.Errorf("schema_migrations has %d rows for %d versions, want %d each", rows, versions, len(migs))
	}
}

// The audit table refuses UPDATE, DELETE and TRUNCATE from any connection.
func TestAuditAppendOnly(t *testing.T) {
	s := openURL(t, pg.Database(t))
	if _, err := s.AppendEvents(store.WithActor(ctx, "ana"), []store.Event{{Type: "run.created", Subject: "r1"}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit_log SET actor = 'eve'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		_, err := s.db.ExecContext(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want it refused as append-only", q, err)
		}
	}
	v, err := s.VerifyAudit(ctx)
	if err != nil || !v.OK() || v.Entries != 1 {
		t.Errorf("VerifyAudit = %+v, %v; want 1 entry, OK", v, err)
	}
}

// Two Stores on one database see each other's writes and share one event
// sequence.
func TestTwoStoresOneDatabase(t *testing.T) {
	url := pg.Database(t)
	a, b := openURL(t, url), openURL(t, url)
	evA, err := a.CreateRun(ctx, store.Run{ID: "run-1", Key: "k"}, []store.Event{{Type: "run.created", Subject: "run-1"}})
	if err != nil {
		t.Fatal(err)
	}
	queued, running := store.RunQueued, store.RunRunning
	_, evB, err := b.UpdateRun(ctx, "run-1", store.RunUpdate{IfState: &queued, State: &running},
		[]store.Event{{Type: "run.state.changed", Subject: "run-1"}})
	if err != nil {
		t.Fatalf("second store cannot update the first one's run: %v", err)
	}
	if evB[0].Seq != evA[0].Seq+1 {
		t.Errorf("seq %d from b does not follow %d from a", evB[0].Seq, evA[0].Seq)
	}
	if _, _, err = a.UpdateRun(ctx, "run-1", store.RunUpdate{IfState: &queued, State: &running}, nil); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("stale CAS across stores = %v, want ErrConflict", err)
	}
}

// A write that waits longer than LockTimeout for the write lock fails as
// unavailable instead of hanging.
func TestLockTimeout(t *testing.T) {
	url := pg.Database(t)
	short, err := Open(url, Options{LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	tx := holdWriteLock(t, url)
	defer tx.Rollback()
	if _, err = short.AppendEvents(ctx, []store.Event{{Type: "x", Subject: "y"}}); !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("write while another transaction holds the lock = %v, want ErrUnavailable", err)
	}
}

// Open waits for another process's migration (the write lock) longer than
// a write waits: it is still waiting past LockTimeout, and opens once the
// lock is released.
func TestMigrateWaitsForTheLock(t *testing.T) {
	url := pg.Database(t)
	waiting := openURL(t, url) // migrated; reads pg_locks below
	tx := holdWriteLock(t, url)
	opened := make(chan error, 1)
	go func() {
		s, err := Open(url, Options{LockTimeout: 50 * time.Millisecond})
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	// Wait until Open is queued on the lock, then past its LockTimeout.
	for n := 0; n == 0; {
		if err := waiting.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-opened:
			t.Fatalf("Open returned %v while another transaction held the write lock", err)
		default:
		}
	}
	time.Sleep(200 * time.Millisecond) // 4 × LockTimeout
	select {
	case err := <-opened:
		t.Fatalf("Open returned %v while another transaction held the write lock", err)
	default:
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("Open after the lock was released: %v", err)
	}
}

// holdWriteLock takes the write lock in a transaction of its own; the
// caller rolls it back.
func holdWriteLock(t *testing.T, url string) *sql.Tx {
	t.Helper()
	holder := openURL(t, url) // the database must be migrated already
	tx, err := holder.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, dialect.WriteLock); err != nil {
		t.Fatal(err)
	}
	return tx
}

const childEnv = "TAILOR_POSTGRES_CHILD"

// TestChildWriter is the body of a child process in TestProcesses.
func TestChildWriter(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("runs only as a child of TestProcesses")
	}
	url, name, _ := strings.Cut(spec, "|")
	s := openURL(t, url)
	for i := range 10 {
		id := fmt.Sprintf("%s-%d", name, i)
		if _, err := s.CreateRun(ctx, store.Run{ID: id, Key: name}, []store.Event{{Type: "run.created", Subject: id}}); err != nil {
			t.Fatal(err)
		}
	}
}

// Several processes open one fresh database at once (each migrating it)
// and write: every migration is applied once, event seqs run 1..n without
// gaps and the audit chain verifies.
func TestProcesses(t *testing.T) {
	url := pg.Database(t)
	const n = 3
	outs := make([][]byte, n)
	errc := make(chan error, n)
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|p%d", childEnv, url, i))
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
	s := openURL(t, url)
	migs, _ := embeddedMigrations()
	var rows int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(migs) {
		t.Errorf("schema_migrations rows = %d, %v; want %d", rows, err, len(migs))
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
	if v, err := s.VerifyAudit(ctx); err != nil || !v.OK() || v.Entries != n*10 {
		t.Errorf("VerifyAudit = %+v, %v", v, err)
	}
}

func migrations(t *testing.T, nameSQL ...string) []sqlstore.Migration {
	t.Helper()
	files := fstest.MapFS{}
	for i := 0; i+1 < len(nameSQL); i += 2 {
		files[nameSQL[i]] = &fstest.MapFile{Data: []byte(nameSQL[i+1])}
	}
	migs, err := sqlstore.LoadMigrations(files)
	if err != nil {
		t.Fatal(err)
	}
	return migs
}

func tables(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	rows, err := s.db.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
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
