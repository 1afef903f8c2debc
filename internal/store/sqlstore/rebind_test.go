package sqlstore

import (
	"strings"
	"testing"
)

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"WHERE (?1 = '' OR kind = ?1) AND (?2 = '' OR name = ?2)", "WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR name = $2)"},
		{"VALUES ('?', ?, '''?''', \"a?\", ?)", "VALUES ('?', $1, '''?''', \"a?\", $2)"},
		{"SELECT ? -- is it? yes\n, ?", "SELECT $1 -- is it? yes\n, $2"},
		{"SELECT /* ? */ ?", "SELECT /* ? */ $1"},
		{"SELECT $1, ?", "SELECT $1, $1"},
		{"DO $$ BEGIN RAISE '?'; END $$; SELECT ?", "DO $$ BEGIN RAISE '?'; END $$; SELECT $1"},
		{"$fn$ ? $fn$ ?", "$fn$ ? $fn$ $1"},
		{"SELECT 'open ?", "SELECT 'open ?"},
		{"LIMIT ? OFFSET ?10", "LIMIT $1 OFFSET $10"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := Rebind(tc.in); got != tc.want {
				t.Errorf("Rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzRebind: a query without `?` comes back unchanged, none gains a `?`,
// and one without quotes or comments loses every `?`.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{"SELECT ?", "?1 ?2 ?", "'?' \"?\" -- ?\n/* ? */ $$?$$ $a$?$a$", "'", "$", "$1$", "/*", "--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := Rebind(q)
		if !strings.Contains(q, "?") && out != q {
			t.Fatalf("Rebind(%q) = %q, want it unchanged", q, out)
		}
		if strings.Count(out, "?") > strings.Count(q, "?") {
			t.Fatalf("Rebind(%q) = %q adds placeholders", q, out)
		}
		if !strings.ContainsAny(q, "'\"-/$") && strings.Contains(out, "?") {
			t.Fatalf("Rebind(%q) = %q leaves a placeholder outside quotes and comments", q, out)
		}
	})
}
