package storeaddr_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/postgres/pgtest"
	"github.com/tailor-ml/tailor/internal/store/storeaddr"
)

var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

func TestParse(t *testing.T) {
	cases := []struct {
		raw  string
		want storeaddr.Location
		str  string // canonical form
		err  string // substring of the error; "" when it parses
	}{
		{raw: "sqlite:///srv/tailor/tailor.db", want: storeaddr.Location{Scheme: "sqlite", Path: "/srv/tailor/tailor.db"}, str: "sqlite:///srv/tailor/tailor.db"},
		{raw: "sqlite://localhost/srv/t.db", want: storeaddr.Location{Scheme: "sqlite", Path: "/srv/t.db"}, str: "sqlite:///srv/t.db"},
		{raw: "sqlite:///srv/a/../t.db", want: storeaddr.Location{Scheme: "sqlite", Path: "/srv/t.db"}, str: "sqlite:///srv/t.db"},
		{raw: "sqlite:///with%20space.db", want: storeaddr.Location{Scheme: "sqlite", Path: "/with space.db"}, str: "sqlite:///with%20space.db"},
		{raw: "postgres://tailor@db:5432/tailor?sslmode=disable", want: storeaddr.Location{Scheme: "postgres", URL: "postgres://tailor@db:5432/tailor?sslmode=disable"},
			str: "postgres://tailor@db:5432/tailor?sslmode=disable"},
		{raw: "postgresql://db/tailor", want: storeaddr.Location{Scheme: "postgres", URL: "postgresql://db/tailor"}, str: "postgresql://db/tailor"},
		{raw: "postgres://tailor:s3cret@db/tailor", want: storeaddr.Location{Scheme: "postgres", URL: "postgres://tailor:s3cret@db/tailor"},
			str: "postgres://tailor@db/tailor"},
		{raw: "postgres:///tailor?host=/run/postgresql", want: storeaddr.Location{Scheme: "postgres", URL: "postgres:///tailor?host=/run/postgresql"},
			str: "postgres:///tailor?host=/run/postgresql"},

		{raw: "", err: "empty"},
		{raw: "/srv/tailor.db", err: "write it as sqlite:///srv/tailor.db"},
		{raw: "tailor.db", err: "no scheme"},
		{raw: "sqlite://host/srv/t.db", err: "on this machine"},
		{raw: "sqlite:rel.db", err: "only sqlite:///absolute/file.db"},
		{raw: "sqlite:///srv/t.db?mode=ro", err: "only sqlite:///absolute/file.db"},
		{raw: "sqlite:///srv/", err: "absolute path"},
		{raw: "postgres://tailor:s3cret@db", err: "names no database"},
		{raw: "postgres:tailor", err: "want postgres://"},
		{raw: "mysql://db/tailor", err: `unknown scheme "mysql"`},
		{raw: "::", err: "does not parse"},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			got, err := storeaddr.Parse(c.raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errs.ErrInvalid) {
					t.Fatalf("Parse(%q) = %+v, %v; want an invalid error containing %q", c.raw, got, err, c.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("Parse(%q) error %q shows the password", c.raw, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", c.raw, got, c.want)
			}
			if s := got.String(); s != c.str {
				t.Fatalf("String() = %q, want %q", s, c.str)
			}
		})
	}
}

// FuzzParse: a parsed address's canonical form parses to the same store,
// and neither it nor an error ever shows the password.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"sqlite:///a/b.db", "postgres://u:pw@h:1/d?sslmode=disable", "postgresql://u:pw@h/d", "postgres://u:pw@h",
		"sqlite://u:pw@/x", "x://u:pw@h/d", "/abs", "", "postgres://u:pw@[::1/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// secret: raw is a URL whose password is "pw", written once.
		u, uerr := url.Parse(raw)
		pw, hasPW := "", false
		if uerr == nil && u.User != nil {
			pw, hasPW = u.User.Password()
		}
		secret := hasPW && pw == "pw" && strings.Count(raw, ":pw@") == 1
		l, err := storeaddr.Parse(raw)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Parse(%q) error %v is not ErrInvalid", raw, err)
			}
			if secret && strings.Contains(err.Error(), ":pw@") {
				t.Fatalf("Parse(%q) error %q shows the password", raw, err)
			}
			return
		}
		s := l.String()
		if secret && strings.Contains(s, ":pw@") {
			t.Fatalf("Parse(%q).String() = %q shows the password", raw, s)
		}
		again, err := storeaddr.Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", raw, s, err)
		}
		if again.Scheme != l.Scheme || again.Path != l.Path || again.String() != s {
			t.Fatalf("Parse(%q) = %+v, Parse(%q) = %+v", raw, l, s, again)
		}
	})
}

// Open opens the store each scheme names, migrated and working.
func TestOpen(t *testing.T) {
	file, err := storeaddr.SQLiteURL(filepath.Join(t.TempDir(), "tailor.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{file, pg.Database(t)} {
		t.Run(strings.SplitN(raw, ":", 2)[0], func(t *testing.T) {
			s, err := storeaddr.Open(raw)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			evs, err := s.AppendEvents(context.Background(), []store.Event{{Type: "run.created", Subject: "r1"}})
			if err != nil || len(evs) != 1 || evs[0].Seq != 1 {
				t.Fatalf("AppendEvents = %v, %v; want seq 1", evs, err)
			}
		})
	}
	if _, err := storeaddr.Open("postgres://nobody:s3cret@127.0.0.1:1/none?sslmode=disable&connect_timeout=5"); err == nil ||
		!errors.Is(err, errs.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open of a database nobody serves = %v; want ErrUnavailable without the password", err)
	}
}
