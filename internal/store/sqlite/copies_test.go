package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlstore"
)

// TestUpgradeModelRegions opens a file written before 0008_residency.sql:
// each model version takes the region of its base.
func TestUpgradeModelRegions(t *testing.T) {
	all, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var before []migration
	for _, m := range all {
		if strings.HasSuffix(m.Name, "_residency.sql") {
			break
		}
		before = append(before, m)
	}
	path := filepath.Join(t.TempDir(), "tailor.db")
	s, err := open(path, Options{}, before)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, b := range []struct{ name, id, region string }{{"tiny", strings.Repeat("a", 64), "eu"}, {"big", strings.Repeat("b", 64), "us"}} {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO base_versions (id, name, version, arch, params, manifest, region, created_at) VALUES (?, ?, 1, 'llama', 1, 'sha256:m', ?, ?)`,
			b.id, b.name, b.region, now.Format(sqlstore.TimeLayout)); err != nil {
			t.Fatal(err)
		}
	}
	for i, base := range []string{strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)} {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO model_versions (id, name, version, base_id, adapter, run_id, task, labels, lineage, created_at)
			VALUES (?, 'm', ?, ?, '', '', 'classify', NULL, NULL, ?)`, strings.Repeat(string(rune('d'+i)), 64), i+1, base, now.Format(sqlstore.TimeLayout)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openFile(t, path)
	defer s.Close()
	vs, err := s.ModelVersions(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.Region)
	}
	if strings.Join(got, ",") != "eu,us," {
		t.Errorf("regions after upgrade %q, want eu, us and none (its base is unknown)", got)
	}
	if _, err := s.CopiesOf(ctx, store.CopyModel, "m", vs[0].ID); err != nil {
		t.Errorf("region_copies after upgrade: %v", err)
	}
}
