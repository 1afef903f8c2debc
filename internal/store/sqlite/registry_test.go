package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlstore"
)

// TestUpgradeToRegistry opens a file written with schema 1 only, then with
// the embedded migrations: old rows survive and the registry tables work.
func TestUpgradeToRegistry(t *testing.T) {
	all, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 2 || all[1].Name != "0002_registry.sql" {
		t.Fatalf("embedded migrations %v: want 0002_registry.sql second", all)
	}
	path := filepath.Join(t.TempDir(), "tailor.db")
	s, err := open(path, Options{}, all[:1])
	if err != nil {
		t.Fatal(err)
	}
	// Written as schema 1 code wrote it (today's SetAlias names the
	// project column that 0009 adds).
	if _, err := s.w.ExecContext(ctx, `INSERT INTO aliases (kind, name, alias, target, updated_at) VALUES ('model', 'm', 'champion', 'old', ?)`,
		time.Now().UTC().Format(sqlstore.TimeLayout)); err != nil {
		t.Fatal(err)
	}
	if tables(t, s)["model_versions"] {
		t.Fatal("schema 1 already has model_versions")
	}
	s.Close()

	s = openFile(t, path)
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != all[len(all)-1].Version {
		t.Fatalf("schema version %d, %v; want %d", v, err, all[len(all)-1].Version)
	}
	// An alias set before the upgrade has no history; the first recorded
	// move starts from its current target.
	m, _, err := s.MoveAlias(ctx, store.AliasMove{Kind: "model", Name: "m", Alias: "champion", From: "old", To: "new",
		Reason: "upgrade", Actor: "ana"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.AliasHistory(ctx, "model", "m", "champion")
	if err != nil || len(h) != 1 || h[0] != m {
		t.Errorf("history after upgrade %+v, %v; want [%+v]", h, err, m)
	}
}
