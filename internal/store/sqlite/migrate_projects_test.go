package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tailor-ml/tailor/internal/store/storetest"
)

// TestMigrateProjects runs storetest.MigrateProjects on a file written at
// schema 8, then opened with every migration.
func TestMigrateProjects(t *testing.T) {
	all, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var upTo8 []migration
	for _, m := range all {
		if m.Version <= 8 {
			upTo8 = append(upTo8, m)
		}
	}
	path := filepath.Join(t.TempDir(), "tailor.db")
	s, err := open(path, Options{}, upTo8)
	if err != nil {
		t.Fatal(err)
	}
	old := storetest.Schema8{Store: s, Exec: func(ctx context.Context, q string, args ...any) error {
		_, err := s.w.ExecContext(ctx, q, args...)
		return err
	}}
	storetest.MigrateProjects(t, old, storetest.ReadSchema8Rows(t), func() storetest.Upgraded {
		s := openFile(t, path)
		t.Cleanup(func() { s.Close() })
		return storetest.Upgraded{Store: s, QueryRow: func(ctx context.Context, q string, dest ...any) error {
			return s.r.QueryRowContext(ctx, q).Scan(dest...)
		}}
	})
}
