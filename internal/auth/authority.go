package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/store"
)

// Store is what an Authority keeps its projects and tokens in.
type Store interface {
	store.AuthStore
}

// Publisher publishes committed events (the bus); nil publishes nothing.
type Publisher interface {
	Publish(events ...store.Event)
}

// Options configure an Authority. Zero values take the documented defaults.
type Options struct {
	// Store holds projects and tokens (required, but for an InsecureLocal
	// authority that refuses every token).
	Store Store
	// Publisher gets the token and project events after their commit.
	Publisher Publisher
	// InsecureLocal lets a request without a token act as LocalPrincipal,
	// admin in the default project. Only for a server on loopback (the
	// config layer checks); a request with a token is still authenticated.
	InsecureLocal bool
	// Rate and Burst bound each token's requests: Rate per second, bursts
	// of Burst (defaults 100 and 200; Rate < 0: no limit).
	Rate  float64
	Burst int
	// Rand draws token secrets (default crypto/rand).
	Rand   io.Reader
	Now    func() time.Time
	Logger *slog.Logger
}

// Authority authenticates bearer tokens and manages tokens and projects.
type Authority struct {
	opts    Options
	limiter *Limiter
}

// New returns an Authority.
func New(opts Options) *Authority {
	if opts.Rate == 0 {
		opts.Rate = 100
	}
	if opts.Burst <= 0 {
		opts.Burst = 200
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Authority{opts: opts, limiter: NewLimiter(opts.Rate, opts.Burst, opts.Now)}
}

// Local is the principal of a request without a token under InsecureLocal.
func Local() Principal {
	return Principal{Name: LocalPrincipal, Project: store.DefaultProject, Roles: map[string]Role{store.DefaultProject: Admin}}
}

// Authenticate returns the principal of an Authorization header value
// ("Bearer tlr_…"; "" when the request has none), then takes one request
// from its token's rate limit. Errors: errs.ErrUnauthenticated (no token,
// malformed, unknown, wrong secret, expired, revoked) and
// errs.ErrRateLimited; their messages name the token by id at most.
func (a *Authority) Authenticate(ctx context.Context, header string) (Principal, error) {
	if header == "" {
		if a.opts.InsecureLocal {
			return Local(), nil
		}
		return Principal{}, errs.Unauthenticated("no token: send Authorization: Bearer <token> (the CLI reads TAILOR_TOKEN or its config file; see docs/security.md)")
	}
	scheme, text, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, errs.Unauthenticated("Authorization header: want Bearer <token>")
	}
	sec, err := ParseSecret(strings.TrimSpace(text))
	if err != nil {
		return Principal{}, err
	}
	if a.opts.Store == nil {
		return Principal{}, errs.Unauthenticated("token %s%s: this server keeps no tokens; send none", tokenPrefix, sec.ID)
	}
	t, err := a.opts.Store.Token(ctx, sec.ID)
	if errs.Kind(err) == "not_found" || (err == nil && !sec.Matches(t.Hash)) {
		return Principal{}, errs.Unauthenticated("token %s%s is not known to this server", tokenPrefix, sec.ID)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("read token %s%s: %w", tokenPrefix, sec.ID, err)
	}
	now := a.opts.Now()
	if !t.RevokedAt.IsZero() {
		return Principal{}, errs.Unauthenticated("token %s%s was revoked at %s; ask an admin for a new one", tokenPrefix, t.ID, t.RevokedAt.Format(time.RFC3339))
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return Principal{}, errs.Unauthenticated("token %s%s expired at %s; ask an admin for a new one", tokenPrefix, t.ID, t.ExpiresAt.Format(time.RFC3339))
	}
	p, err := principal(t)
	if err != nil {
		return Principal{}, err
	}
	if ok, wait := a.limiter.Allow(t.ID); !ok {
		return Principal{}, errs.RateLimited("token %s%s is over its rate limit (%g requests/s, bursts of %d); retry in %s",
			tokenPrefix, t.ID, a.opts.Rate, a.opts.Burst, wait.Round(time.Millisecond))
	}
	return p, nil
}

func principal(t store.Token) (Principal, error) {
	p := Principal{Name: t.Principal, TokenID: tokenPrefix + t.ID, Project: t.Project, Roles: map[string]Role{}, ExpiresAt: t.ExpiresAt}
	for proj, r := range t.Roles {
		role, err := ParseRole(r)
		if err != nil {
			return Principal{}, fmt.Errorf("stored token %s%s, project %q: %w", tokenPrefix, t.ID, proj, err)
		}
		p.Roles[proj] = role
	}
	return p, nil
}

// NewToken asks for a token.
type NewToken struct {
	// Principal is who the token acts as (default: the creator).
	Principal string
	// Project is the token's home project (required).
	Project string
	// Roles are its roles per project; Project's must be among them.
	Roles map[string]Role
	// TTL is how long it lives (0: until revoked).
	TTL  time.Duration
	Note string
}

// Created is a new token: its one showing of the secret, and the stored
// record.
type Created struct {
	Secret Secret
	Token  store.Token
}

// CreateToken mints a token for by. by must be admin in every project the
// token gets a role in, so no one hands out more than they hold.
func (a *Authority) CreateToken(ctx context.Context, by Principal, req NewToken) (Created, error) {
	if req.Principal == "" {
		req.Principal = by.Name
	}
	what := "create token"
	if err := ident.Label("principal", req.Principal); err != nil {
		return Created{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := ident.Text("note", req.Note); err != nil {
		return Created{}, fmt.Errorf("%s: %w", what, err)
	}
	if req.TTL < 0 {
		return Created{}, errs.Invalid("%s: expiry %s is negative", what, req.TTL)
	}
	if _, ok := req.Roles[req.Project]; !ok {
		return Created{}, errs.Invalid("%s: no role in its project %q", what, req.Project)
	}
	roles := map[string]string{}
	for proj, r := range req.Roles {
		if r == NoRole {
			return Created{}, errs.Invalid("%s: project %q: role none", what, proj)
		}
		if err := Authorize(by, proj, Administer, what); err != nil {
			return Created{}, err
		}
		roles[proj] = r.String()
	}
	return a.mint(ctx, by.Name, req.Principal, req.Project, roles, req.TTL, req.Note, nil)
}

// mint draws a token and stores it with its event through commit (nil:
// PutToken), which may store another change in the same transaction.
func (a *Authority) mint(ctx context.Context, by, principal, project string, roles map[string]string, ttl time.Duration, note string,
	commit func(Secret, store.Token, store.Event) ([]store.Event, error)) (Created, error) {
	sec, err := NewSecret(a.opts.Rand)
	if err != nil {
		return Created{}, fmt.Errorf("draw a token secret: %w", err)
	}
	now := a.opts.Now().UTC()
	t := store.Token{ID: sec.ID, Principal: principal, Hash: sec.Hash(), Project: project, Roles: roles, Note: note,
		CreatedBy: by, CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	ev := tokenEvent("token.created", t, now, "")
	var evs []store.Event
	if commit != nil {
		evs, err = commit(sec, t, ev)
	} else {
		evs, err = a.opts.Store.PutToken(ctx, t, []store.Event{ev})
	}
	if err != nil {
		return Created{}, err
	}
	a.publish(evs)
	a.opts.Logger.Info("token created", "token", tokenPrefix+t.ID, "principal", principal, "project", project, "by", by)
	return Created{Secret: sec, Token: t}, nil
}

// tokenEvent describes t without its hash; a revocation's reason, when
// given, is in its data too.
func tokenEvent(typ string, t store.Token, now time.Time, reason string) store.Event {
	d := map[string]any{"principal": t.Principal, "project": t.Project, "roles": t.Roles,
		"expires_at": t.ExpiresAt, "created_by": t.CreatedBy}
	if reason != "" {
		d["reason"] = reason
	}
	data, _ := json.Marshal(d)
	return store.Event{Type: typ, Subject: tokenPrefix + t.ID, Time: now, Data: data}
}

func (a *Authority) publish(evs []store.Event) {
	if a.opts.Publisher != nil && len(evs) > 0 {
		a.opts.Publisher.Publish(evs...)
	}
}

// Tokens lists the tokens with a role in project.
func (a *Authority) Tokens(ctx context.Context, project string) ([]store.Token, error) {
	return a.opts.Store.Tokens(ctx, project)
}

// RevokeToken revokes the token with id ("tlr_<id>" or the bare id). by
// must be admin in the token's home project, or be the token's principal.
// reason (optional, free text) is kept in the token.revoked event's data.
func (a *Authority) RevokeToken(ctx context.Context, by Principal, id, reason string) (store.Token, error) {
	id = strings.TrimPrefix(id, tokenPrefix)
	if err := ident.Text("reason", reason); err != nil {
		return store.Token{}, fmt.Errorf("revoke token %s%s: %w", tokenPrefix, id, err)
	}
	t, err := a.opts.Store.Token(ctx, id)
	if err != nil {
		return t, err
	}
	if t.Principal != by.Name {
		if err := Authorize(by, t.Project, Administer, "revoke token "+tokenPrefix+id); err != nil {
			return t, err
		}
	}
	now := a.opts.Now().UTC()
	t, evs, err := a.opts.Store.RevokeToken(ctx, id, now, []store.Event{tokenEvent("token.revoked", t, now, reason)})
	if err != nil {
		return t, err
	}
	a.publish(evs)
	a.opts.Logger.Info("token revoked", "token", tokenPrefix+t.ID, "principal", t.Principal, "by", by.Name)
	return t, nil
}

// CreateProject creates a project and, in the same transaction, a token
// for by that is admin in it and holds by's token's other roles (see
// below). The caller checked that by may create projects.
func (a *Authority) CreateProject(ctx context.Context, by Principal, name string) (store.Project, Created, error) {
	if err := ident.Name("project", name); err != nil {
		return store.Project{}, Created{}, err
	}
	p := store.Project{Name: name, CreatedBy: by.Name, CreatedAt: a.opts.Now().UTC()}
	data, _ := json.Marshal(map[string]any{"created_by": by.Name})
	pev := store.Event{Type: "project.created", Subject: name, Time: p.CreatedAt, Data: data}
	// The creator's new token is admin in the project and keeps the roles
	// the creating token holds elsewhere, so one token can switch between
	// the creator's projects; it grants nothing the creator lacked, and
	// expires no later than the creating token.
	roles := map[string]string{name: Admin.String()}
	var ttl time.Duration
	if by.TokenID != "" {
		for project, r := range by.Roles {
			if project != name && r != NoRole {
				roles[project] = r.String()
			}
		}
		if !by.ExpiresAt.IsZero() {
			if ttl = by.ExpiresAt.Sub(p.CreatedAt); ttl <= 0 {
				return store.Project{}, Created{}, errs.Unauthenticated("the creating token has expired")
			}
		}
	}
	c, err := a.mint(ctx, by.Name, by.Name, name, roles, ttl, "created with project "+name,
		func(_ Secret, t store.Token, tev store.Event) ([]store.Event, error) {
			return a.opts.Store.PutProject(ctx, p, &t, []store.Event{pev, tev})
		})
	return p, c, err
}

// Projects lists every project.
func (a *Authority) Projects(ctx context.Context) ([]store.Project, error) {
	return a.opts.Store.Projects(ctx)
}

// Bootstrap mints the first admin token, principal "admin" in the default
// project, when the store holds no token at all (a fresh data directory,
// or one from before tokens existed), and reports whether it did. keep
// gets the token text before the token is stored (the server writes it
// to a 0600 file): if keep fails nothing is stored; if storing fails, the
// kept text names a token that does not exist and the next start
// replaces it.
func (a *Authority) Bootstrap(ctx context.Context, keep func(token string) error) (bool, error) {
	n, err := a.opts.Store.CountTokens(ctx)
	if err != nil || n > 0 {
		return false, err
	}
	roles := map[string]string{store.DefaultProject: Admin.String()}
	_, err = a.mint(ctx, "tailor", "admin", store.DefaultProject, roles, 0, "bootstrap",
		func(sec Secret, t store.Token, ev store.Event) ([]store.Event, error) {
			if err := keep(sec.String()); err != nil {
				return nil, err
			}
			return a.opts.Store.PutToken(ctx, t, []store.Event{ev})
		})
	return err == nil, err
}
