package sqlstore

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tailor-ml/tailor/internal/errs"
)

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, body := range files {
		m[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return m
}

func TestLoadMigrationsErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string // the file the error must name
	}{
		{"bad name", map[string]string{"0001_init.sql": "", "init.sql": ""}, "init.sql"},
		{"upper case", map[string]string{"0001_Init.sql": ""}, "0001_Init.sql"},
		{"duplicate", map[string]string{"0001_a.sql": "", "0001_b.sql": ""}, "0001_"},
		{"zero", map[string]string{"0000_a.sql": ""}, "0000_a.sql"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadMigrations(mapFS(tc.files))
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadMigrations = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

func FuzzParseMigrationName(f *testing.F) {
	for _, s := range []string{"0001_init.sql", "0002_add_runs.sql", "1_x.sql", "0001_.sql", "0001_a.sql.bak",
		"99999999999999999999_a.sql", "000a_b.sql", "-001_a.sql", "0001_a b.sql", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		v, err := ParseMigrationName(name)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("ParseMigrationName(%q) error %v is not ErrInvalid", name, err)
			}
			return
		}
		if v < 1 || !strings.HasSuffix(name, ".sql") || strings.ContainsAny(name, "/\\ ") || strings.Count(name, ".") != 1 {
			t.Fatalf("ParseMigrationName(%q) = %d", name, v)
		}
	})
}
