// Package storeaddr opens the metadata store.Store an address names. It is
// the one parser of metadata store addresses, as internal/blob/blobstore is
// for artifact stores; `tailor server --store` takes one:
//
//	sqlite:///abs/dir/tailor.db              store/sqlite, a file on this machine
//	postgres://user@host:port/db?sslmode=…   store/postgres (postgresql:// too)
//
// A PostgreSQL address may carry a password, and pgx fills what it leaves
// out from the PG* environment variables (PGPASSWORD, PGHOST, PGSSLMODE, …)
// and ~/.pgpass. Location.String drops the password, so that the canonical
// form can go into logs; Location.URL keeps it and is for Open alone.
//
// This package imports internal/store, store/sqlite, store/postgres and
// internal/errs. It is imported by the composition root (app); never by
// store or its implementations.
package storeaddr

import (
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/postgres"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

// Schemes of the addresses Parse accepts.
const (
	SchemeSQLite   = "sqlite"
	SchemePostgres = "postgres"
)

// Location is a parsed metadata store address.
type Location struct {
	Scheme string // SchemeSQLite or SchemePostgres
	// Path is a SQLite store's absolute, clean file path (SchemeSQLite).
	Path string
	// URL is a PostgreSQL store's connection URL as given, password
	// included (SchemePostgres). Never log it: log String.
	URL string
}

// String is the address in its canonical form, without a password;
// Parse(l.String()) == l when l has none.
func (l Location) String() string {
	switch l.Scheme {
	case SchemeSQLite:
		return (&url.URL{Scheme: SchemeSQLite, Path: filepath.ToSlash(l.Path)}).String()
	case SchemePostgres:
		u, err := url.Parse(l.URL)
		if err != nil {
			return SchemePostgres + "://"
		}
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		return u.String()
	}
	return ""
}

// SQLiteURL is the address of the SQLite file at path ("sqlite:///abs/file").
func SQLiteURL(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", errs.Invalid("metadata store file %q: %v", file, err)
	}
	return Location{Scheme: SchemeSQLite, Path: abs}.String(), nil
}

const want = "want sqlite:///absolute/file.db or postgres://user@host:port/database"

// Parse reads a metadata store address. It does not touch the store. Its
// errors never quote a password.
func Parse(raw string) (Location, error) {
	if raw == "" {
		return Location{}, errs.Invalid("metadata store address is empty; %s", want)
	}
	if filepath.IsAbs(raw) {
		if strings.Contains(raw, "@") { // "//user:pw@host/db" is a URL without its scheme: not quoted
			return Location{}, errs.Invalid("metadata store address has no scheme; %s", want)
		}
		return Location{}, errs.Invalid("metadata store address %q is a path; write it as sqlite://%s", raw, filepath.ToSlash(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the input, which may hold a password.
		return Location{}, errs.Invalid("metadata store address does not parse as a URL; %s", want)
	}
	switch u.Scheme {
	case SchemePostgres, "postgresql":
		if u.Opaque != "" {
			return Location{}, errs.Invalid("metadata store address %q: want postgres://user@host:port/database", redact(u))
		}
		if strings.Trim(u.Path, "/") == "" && !u.Query().Has("dbname") {
			return Location{}, errs.Invalid("metadata store address %q names no database; %s", redact(u), want)
		}
		return Location{Scheme: SchemePostgres, URL: raw}, nil
	case SchemeSQLite:
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
			return Location{}, errs.Invalid("metadata store address %q: a SQLite address is only sqlite:///absolute/file.db", redact(u))
		}
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, errs.Invalid("metadata store address %q: host %q; a SQLite file is on this machine (sqlite:///absolute/file.db); to share one database between machines use postgres://", redact(u), u.Host)
		}
		if !path.IsAbs(u.Path) || strings.HasSuffix(u.Path, "/") || path.Clean(u.Path) == "/" {
			return Location{}, errs.Invalid("metadata store address %q: the file must be an absolute path (sqlite:///absolute/file.db)", redact(u))
		}
		if strings.ContainsRune(u.Path, 0) {
			return Location{}, errs.Invalid("metadata store address %q: the path has a NUL byte", redact(u))
		}
		return Location{Scheme: SchemeSQLite, Path: filepath.Clean(filepath.FromSlash(u.Path))}, nil
	case "":
		if strings.Contains(raw, "@") { // it may hold a secret: not quoted
			return Location{}, errs.Invalid("metadata store address has no scheme; %s", want)
		}
		return Location{}, errs.Invalid("metadata store address %q has no scheme; %s", raw, want)
	}
	// Not quoted: the rest of an unknown address may hold a secret.
	return Location{}, errs.Invalid("metadata store address: unknown scheme %q; %s", u.Scheme, want)
}

// redact is u without its password, for messages.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

// Open parses raw and opens its store, bringing its schema up to date.
func Open(raw string) (store.Store, error) {
	l, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	switch l.Scheme {
	case SchemeSQLite:
		return sqlite.Open(l.Path, sqlite.Options{})
	default: // SchemePostgres
		return postgres.Open(l.URL, postgres.Options{})
	}
}
