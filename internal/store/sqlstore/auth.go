package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

var _ store.AuthStore = (*Store)(nil)

// PutProject inserts p, and admin when set, with events.
func (s *Store) PutProject(ctx context.Context, p store.Project, admin *store.Token, events []store.Event) ([]store.Event, error) {
	what := fmt.Sprintf("put project %q", p.Name)
	if err := required(what, "name", p.Name, "created_by", p.CreatedBy); err != nil {
		return nil, err
	}
	created, err := formatTime(what+" created_at", s.orNow(p.CreatedAt))
	if err != nil {
		return nil, err
	}
	var out []store.Event
	err = s.write(ctx, func(tx *Tx) error {
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM projects WHERE name = ?`, p.Name)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO projects (name, created_by, created_at) VALUES (?, ?, ?)`,
			p.Name, p.CreatedBy, created); err != nil {
			return err
		}
		if admin != nil {
			args, err := tokenArgs(*admin)
			if err != nil {
				return err
			}
			if err := s.putToken(ctx, tx, args); err != nil {
				return fmt.Errorf("token %q: %w", admin.ID, err)
			}
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func scanProject(sc scanner) (store.Project, error) {
	var p store.Project
	var created string
	if err := sc.Scan(&p.Name, &p.CreatedBy, &created); err != nil {
		return p, err
	}
	var err error
	p.CreatedAt, err = parseTime("project "+p.Name+" created_at", created)
	return p, err
}

// Project returns the project named name.
func (s *Store) Project(ctx context.Context, name string) (store.Project, error) {
	p, err := scanProject(s.r.QueryRowContext(ctx, `SELECT name, created_by, created_at FROM projects WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return p, errs.NotFound("project %q not found", name)
	}
	return p, err
}

// Projects lists every project by name.
func (s *Store) Projects(ctx context.Context) ([]store.Project, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, created_by, created_at FROM projects ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func validRole(r string) bool { return r == "viewer" || r == "operator" || r == "admin" }

// tokenRow is a checked token in column form.
type tokenRow struct {
	t                         store.Token
	created, expires, revoked any
	projects                  []string // t.Roles' keys, sorted
}

func tokenArgs(t store.Token) (tokenRow, error) {
	what := fmt.Sprintf("token %q", t.ID)
	if err := required(what, "id", t.ID, "principal", t.Principal, "hash", t.Hash, "project", t.Project, "created_by", t.CreatedBy); err != nil {
		return tokenRow{}, err
	}
	if _, ok := t.Roles[t.Project]; !ok {
		return tokenRow{}, errs.Invalid("%s: roles name no role in its project %q", what, t.Project)
	}
	r := tokenRow{t: t}
	for p, role := range t.Roles {
		if !validRole(role) {
			return tokenRow{}, errs.Invalid("%s: role %q in project %q: want viewer, operator or admin", what, role, p)
		}
		r.projects = append(r.projects, p)
	}
	sort.Strings(r.projects)
	var err error
	if r.created, err = formatTime(what+" created_at", t.CreatedAt); err != nil {
		return tokenRow{}, err
	}
	if r.expires, err = nullTime(what+" expires_at", t.ExpiresAt); err != nil {
		return tokenRow{}, err
	}
	if r.revoked, err = nullTime(what+" revoked_at", t.RevokedAt); err != nil {
		return tokenRow{}, err
	}
	return r, nil
}

// putToken inserts a checked token and its roles in tx.
func (s *Store) putToken(ctx context.Context, tx *Tx, r tokenRow) error {
	t := r.t
	dup, err := s.exists(ctx, tx, `SELECT 1 FROM tokens WHERE id = ?`, t.ID)
	if err != nil {
		return err
	}
	if dup {
		return errs.Conflict("already exists")
	}
	for _, p := range r.projects {
		ok, err := s.exists(ctx, tx, `SELECT 1 FROM projects WHERE name = ?`, p)
		if err != nil {
			return err
		}
		if !ok {
			return errs.NotFound("project %q not found; create it first (`tailor project create %s`)", p, p)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, principal, hash, project, note, created_by, created_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.ID, t.Principal, t.Hash, t.Project, t.Note, t.CreatedBy, r.created, r.expires, r.revoked); err != nil {
		return err
	}
	for _, p := range r.projects {
		if _, err := tx.ExecContext(ctx, `INSERT INTO token_roles (token_id, project, role) VALUES (?, ?, ?)`, t.ID, p, t.Roles[p]); err != nil {
			return err
		}
	}
	return nil
}

// PutToken inserts t and its roles with events.
func (s *Store) PutToken(ctx context.Context, t store.Token, events []store.Event) ([]store.Event, error) {
	what := fmt.Sprintf("put token %q", t.ID)
	t.CreatedAt = s.orNow(t.CreatedAt)
	r, err := tokenArgs(t)
	if err != nil {
		return nil, fmt.Errorf("put %w", err)
	}
	var out []store.Event
	err = s.write(ctx, func(tx *Tx) error {
		if err := s.putToken(ctx, tx, r); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

const tokenCols = `id, principal, hash, project, note, created_by, created_at, expires_at, revoked_at`

func scanToken(sc scanner) (store.Token, error) {
	var t store.Token
	var created string
	var expires, revoked sql.NullString
	if err := sc.Scan(&t.ID, &t.Principal, &t.Hash, &t.Project, &t.Note, &t.CreatedBy, &created, &expires, &revoked); err != nil {
		return t, err
	}
	var err error
	if t.CreatedAt, err = parseTime("token "+t.ID+" created_at", created); err != nil {
		return t, err
	}
	if t.ExpiresAt, err = parseNullTime("token "+t.ID+" expires_at", expires); err != nil {
		return t, err
	}
	t.RevokedAt, err = parseNullTime("token "+t.ID+" revoked_at", revoked)
	return t, err
}

// withRoles returns tokens with their Roles read from token_roles.
func (s *Store) withRoles(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, tokens []store.Token) ([]store.Token, error) {
	out := make([]store.Token, 0, len(tokens))
	for _, t := range tokens {
		rows, err := q.QueryContext(ctx, `SELECT project, role FROM token_roles WHERE token_id = ? ORDER BY project`, t.ID)
		if err != nil {
			return nil, err
		}
		t.Roles = map[string]string{}
		for rows.Next() {
			var p, r string
			if err := rows.Scan(&p, &r); err != nil {
				// #nosec G104 -- cleanup on an error path; the scan error is returned
				rows.Close()
				return nil, err
			}
			t.Roles[p] = r
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Token returns the token with id.
func (s *Store) Token(ctx context.Context, id string) (store.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, errs.NotFound("token %q not found", id)
	}
	if err != nil {
		return t, err
	}
	ts, err := s.withRoles(ctx, s.r, []store.Token{t})
	if err != nil {
		return t, err
	}
	return ts[0], nil
}

// Tokens lists the tokens with a role in project ("" = all), oldest first.
func (s *Store) Tokens(ctx context.Context, project string) ([]store.Token, error) {
	q := `SELECT ` + tokenCols + ` FROM tokens ORDER BY created_at, id`
	var args []any
	if project != "" {
		q = `SELECT ` + tokenCols + ` FROM tokens WHERE id IN (SELECT token_id FROM token_roles WHERE project = ?) ORDER BY created_at, id`
		args = append(args, project)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			// #nosec G104 -- cleanup on an error path; the scan error is returned
			rows.Close()
			return nil, err
		}
		out = append(out, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	return s.withRoles(ctx, s.r, out)
}

// RevokeToken marks the token revoked at at, once.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, events []store.Event) (store.Token, []store.Event, error) {
	what := fmt.Sprintf("revoke token %q", id)
	ts, err := formatTime(what+" revoked_at", s.orNow(at))
	if err != nil {
		return store.Token{}, nil, err
	}
	var t store.Token
	var out []store.Event
	err = s.write(ctx, func(tx *Tx) error {
		cur, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("not found")
		}
		if err != nil {
			return err
		}
		if cur.RevokedAt.IsZero() {
			if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, ts, id); err != nil {
				return err
			}
			if cur, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id)); err != nil {
				return err
			}
			if out, err = s.appendEvents(ctx, tx, events); err != nil {
				return err
			}
		}
		one, err := s.withRoles(ctx, tx, []store.Token{cur})
		if err != nil {
			return err
		}
		t = one[0]
		return nil
	})
	if err != nil {
		return t, nil, fmt.Errorf("%s: %w", what, err)
	}
	return t, out, nil
}

// CountTokens counts every stored token.
func (s *Store) CountTokens(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n)
	return n, err
}
