package postgres

import (
	"context"
	"regexp"
	"testing"

	"github.com/tailor-ml/tailor/internal/store/sqlstore"
	"github.com/tailor-ml/tailor/internal/store/storetest"
)

// TestMigrateProjects runs storetest.MigrateProjects on a database written
// at schema 8, then opened with every migration, with the SQLite test's
// rows (its blob literals X'…' in PostgreSQL's bytea hex form).
func TestMigrateProjects(t *testing.T) {
	all, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var upTo8 []sqlstore.Migration
	for _, m := range all {
		if m.Version <= 8 {
			upTo8 = append(upTo8, m)
		}
	}
	url := pg.Database(t)
	s, err := open(url, Options{}, upTo8)
	if err != nil {
		t.Fatal(err)
	}
	old := storetest.Schema8{Store: s, Exec: func(ctx context.Context, q string, args ...any) error {
		_, err := s.db.ExecContext(ctx, sqlstore.Rebind(q), args...)
		return err
	}}
	rows := regexp.MustCompile(`X'([0-9a-f]*)'`).ReplaceAllString(storetest.ReadSchema8Rows(t), `'\x$1'`)
	storetest.MigrateProjects(t, old, rows, func() storetest.Upgraded {
		s := openURL(t, url)
		return storetest.Upgraded{Store: s, QueryRow: func(ctx context.Context, q string, dest ...any) error {
			return s.db.QueryRowContext(ctx, sqlstore.Rebind(q)).Scan(dest...)
		}}
	})
}
