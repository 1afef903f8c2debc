package auth

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

func TestAuthorize(t *testing.T) {
	p := Principal{Name: "ann", TokenID: "tlr_0123456789abcdef", Project: "blue", Roles: map[string]Role{"blue": Operator, "red": Viewer}}
	tests := []struct {
		project string
		class   Class
		want    string // "" allowed; otherwise a part of the 403 message
	}{
		{"blue", Public, ""},
		{"blue", Read, ""},
		{"blue", Operate, ""},
		{"blue", Administer, `needs role admin in project "blue"; token tlr_0123456789abcdef (ann) is operator there`},
		{"red", Read, ""},
		{"red", Operate, `needs role operator in project "red"`},
		{"green", Read, `has no role in project "green" (its roles: blue (operator), red (viewer))`},
		{"green", Public, ""},
	}
	for _, tt := range tests {
		err := Authorize(p, tt.project, tt.class, "GET /x")
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s in %s: %v", tt.class, tt.project, err)
			}
			continue
		}
		if !errors.Is(err, errs.ErrForbidden) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s in %s: %v, want forbidden with %q", tt.class, tt.project, err, tt.want)
		}
	}
}

func TestParseSecret(t *testing.T) {
	id, sec := "0123456789abcdef", strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want string // "" parses; otherwise a part of the error
	}{
		{"tlr_" + id + "_" + sec, ""},
		{"", "want tlr_<id>_<secret>"},
		{"Bearer tlr_" + id + "_" + sec, "want tlr_<id>_<secret>"},
		{"tlr_" + id, "its id is not 16 hex digits"},
		{"tlr_" + strings.ToUpper(id) + "_" + sec, "its id is not 16 hex digits"},
		{"tlr_" + id + "_" + sec[:63], "tlr_" + id + ": its secret is not 64 hex digits"},
		{"tlr_" + id + "_" + sec + "0", "its secret is not 64 hex digits"},
		{"tlr_" + id + "_" + sec[:62] + "zz", "its secret is not 64 hex digits"},
	}
	for _, tt := range tests {
		s, err := ParseSecret(tt.in)
		if tt.want == "" {
			if err != nil || s.String() != tt.in || s.ID != id {
				t.Errorf("%q: %v, %v", tt.in, s, err)
			}
			continue
		}
		if !errors.Is(err, errs.ErrUnauthenticated) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.in, err, tt.want)
		}
		if len(tt.in) > 40 && strings.Contains(err.Error(), tt.in[len(tt.in)-40:]) {
			t.Errorf("%q: the error repeats the secret: %v", tt.in, err)
		}
	}
}

// FuzzParseSecret: parsing never panics, a parsed token prints back to
// its input, and an error never contains the secret part.
func FuzzParseSecret(f *testing.F) {
	f.Add("tlr_0123456789abcdef_" + strings.Repeat("ab", 32))
	f.Add("tlr__")
	f.Add("tlr_0123456789abcdef_")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSecret(in)
		if err == nil {
			if s.String() != in {
				t.Fatalf("%q parsed to %q", in, s)
			}
			return
		}
		id, secret, ok := strings.Cut(strings.TrimPrefix(in, tokenPrefix), "_")
		// The id may be named; take it out before looking for the secret.
		if msg := strings.ReplaceAll(err.Error(), tokenPrefix+id, ""); ok && len(secret) >= 8 && strings.Contains(msg, secret) {
			t.Fatalf("error %q repeats the secret of %q", err, in)
		}
	})
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(2, 3, func() time.Time { return now })
	steps := []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "a", true}, {0, "a", true}, {0, "a", true}, // the burst
		{0, "a", false},
		{0, "b", true}, // another token has its own bucket
		{250 * time.Millisecond, "a", false},
		{250 * time.Millisecond, "a", true}, // 0.5 s at 2/s earns one
		{0, "a", false},
		{time.Hour, "a", true}, {0, "a", true}, {0, "a", true}, // refilled only to the burst
		{0, "a", false},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got, wait := l.Allow(s.key); got != s.want || (!got && wait <= 0) {
			t.Fatalf("step %d (%s): allowed %v (wait %s), want %v", i, s.key, got, wait, s.want)
		}
	}
	if ok, _ := NewLimiter(0, 0, nil).Allow("x"); !ok {
		t.Error("rate 0 must limit nothing")
	}
}

// world is an Authority over a real SQLite store with a controlled clock
// and a seeded source of secrets.
type world struct {
	t     *testing.T
	st    *sqlite.Store
	a     *Authority
	now   time.Time
	admin Principal
}

func newWorld(t *testing.T, opts Options) *world {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, st: st, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	opts.Store, opts.Now = st, func() time.Time { return w.now }
	opts.Rand = rand.NewChaCha8([32]byte{1, 2})
	w.a = New(opts)
	var boot string
	ok, err := w.a.Bootstrap(context.Background(), func(s string) error { boot = s; return nil })
	if err != nil || !ok {
		t.Fatalf("bootstrap: %v %v", ok, err)
	}
	if w.admin, err = w.a.Authenticate(context.Background(), "Bearer "+boot); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) token(by Principal, req NewToken) string {
	w.t.Helper()
	c, err := w.a.CreateToken(context.Background(), by, req)
	if err != nil {
		w.t.Fatal(err)
	}
	return "Bearer " + c.Secret.String()
}

func TestAuthenticate(t *testing.T) {
	w := newWorld(t, Options{})
	ctx := context.Background()
	if w.admin.Name != "admin" || w.admin.Roles[store.DefaultProject] != Admin {
		t.Fatalf("bootstrap principal %+v", w.admin)
	}
	live := w.token(w.admin, NewToken{Principal: "bob", Project: "default", Roles: map[string]Role{"default": Viewer}})
	short := w.token(w.admin, NewToken{Principal: "eve", Project: "default", Roles: map[string]Role{"default": Operator}, TTL: time.Hour})
	revoked := w.token(w.admin, NewToken{Principal: "mal", Project: "default", Roles: map[string]Role{"default": Admin}})
	if _, err := w.a.RevokeToken(ctx, w.admin, IDOf(strings.TrimPrefix(revoked, "Bearer ")), ""); err != nil {
		t.Fatal(err)
	}
	forged := live[:len(live)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(live, "0")]
	// The principal carries its token's expiry (whoami shows it).
	if p, err := w.a.Authenticate(ctx, short); err != nil || !p.ExpiresAt.Equal(w.now.Add(time.Hour)) {
		t.Errorf("a token with a 1h expiry: %+v, %v; want it to expire at %s", p, err, w.now.Add(time.Hour))
	}
	if p, err := w.a.Authenticate(ctx, live); err != nil || !p.ExpiresAt.IsZero() {
		t.Errorf("a token without expiry: %+v, %v", p, err)
	}
	w.now = w.now.Add(time.Hour)
	tests := []struct {
		name, header, want string // want "" authenticates
	}{
		{"live", live, ""},
		{"lower-case scheme", "bearer " + strings.TrimPrefix(live, "Bearer "), ""},
		{"missing", "", "no token"},
		{"basic", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "want Bearer <token>"},
		{"malformed", "Bearer tlr_xyz", "malformed token"},
		{"unknown", "Bearer tlr_ffffffffffffffff_" + strings.Repeat("0", 64), "tlr_ffffffffffffffff is not known"},
		{"wrong secret", forged, "is not known to this server"},
		{"expired", short, "expired at 2026-01-02T04:04:05Z"},
		{"revoked", revoked, "was revoked at"},
	}
	for _, tt := range tests {
		p, err := w.a.Authenticate(ctx, tt.header)
		if tt.want == "" {
			if err != nil || p.Name != "bob" {
				t.Errorf("%s: %+v, %v", tt.name, p, err)
			}
			continue
		}
		if !errors.Is(err, errs.ErrUnauthenticated) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want unauthenticated with %q", tt.name, err, tt.want)
		}
		if sec := strings.TrimPrefix(tt.header, "Bearer "); len(sec) > 30 && strings.Contains(err.Error(), sec[len(sec)-30:]) {
			t.Errorf("%s: the error repeats the secret: %v", tt.name, err)
		}
	}
}

func TestInsecureLocal(t *testing.T) {
	w := newWorld(t, Options{InsecureLocal: true})
	p, err := w.a.Authenticate(context.Background(), "")
	if err != nil || p.Name != LocalPrincipal || p.Roles[store.DefaultProject] != Admin || len(p.Roles) != 1 {
		t.Fatalf("no token under --insecure-local: %+v, %v", p, err)
	}
	// A token is still checked.
	if _, err := w.a.Authenticate(context.Background(), "Bearer tlr_nope"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("a bad token under --insecure-local: %v", err)
	}
	// Without a store, any token is refused, not a crash.
	tok := "Bearer tlr_0123456789abcdef_" + strings.Repeat("ab", 32)
	if _, err := New(Options{InsecureLocal: true}).Authenticate(context.Background(), tok); !errors.Is(err, errs.ErrUnauthenticated) ||
		!strings.Contains(err.Error(), "keeps no tokens") {
		t.Fatalf("a token at a storeless authority: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	w := newWorld(t, Options{Rate: 1, Burst: 2})
	h := w.token(w.admin, NewToken{Principal: "bob", Project: "default", Roles: map[string]Role{"default": Viewer}})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := w.a.Authenticate(ctx, h); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err := w.a.Authenticate(ctx, h)
	if !errors.Is(err, errs.ErrRateLimited) || !strings.Contains(err.Error(), "over its rate limit") {
		t.Fatalf("third request in a burst of 2: %v", err)
	}
	w.now = w.now.Add(time.Second)
	if _, err := w.a.Authenticate(ctx, h); err != nil {
		t.Fatalf("after a second at 1/s: %v", err)
	}
}

// TestCreateToken: no one grants a role where they are not admin, and the
// store never sees a secret.
func TestCreateToken(t *testing.T) {
	w := newWorld(t, Options{})
	ctx := context.Background()
	_, c, err := w.a.CreateProject(ctx, w.admin, "blue")
	if err != nil {
		t.Fatal(err)
	}
	// The creator's new token: admin in blue, and the creating token's
	// role in default, so it can switch between them.
	creator, err := w.a.Authenticate(ctx, "Bearer "+c.Secret.String())
	if err != nil || creator.Name != "admin" || creator.Project != "blue" || creator.Roles["blue"] != Admin || creator.Roles["default"] != Admin {
		t.Fatalf("the project's creator token: %+v, %v", creator, err)
	}
	// A token that is admin in blue alone.
	blueAdmin, err := w.a.Authenticate(ctx, w.token(creator, NewToken{Principal: "blue-admin", Project: "blue", Roles: map[string]Role{"blue": Admin}}))
	if err != nil || blueAdmin.Roles["default"] != NoRole {
		t.Fatalf("blue's admin: %+v, %v", blueAdmin, err)
	}
	opH := w.token(w.admin, NewToken{Principal: "op", Project: "default", Roles: map[string]Role{"default": Operator}})
	op, err := w.a.Authenticate(ctx, opH)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		by   Principal
		req  NewToken
		kind error
		want string
	}{
		{"operator mints", op, NewToken{Project: "default", Roles: map[string]Role{"default": Viewer}}, errs.ErrForbidden, "needs role admin"},
		{"admin of blue grants default", blueAdmin, NewToken{Principal: "x", Project: "blue", Roles: map[string]Role{"blue": Viewer, "default": Viewer}}, errs.ErrForbidden, `no role in project "default"`},
		{"home without role", w.admin, NewToken{Principal: "x", Project: "default", Roles: map[string]Role{}}, errs.ErrInvalid, `no role in its project "default"`},
		{"bad principal", w.admin, NewToken{Principal: "a\nb", Project: "default", Roles: map[string]Role{"default": Viewer}}, errs.ErrInvalid, "principal"},
		{"unknown project", w.admin, NewToken{Principal: "x", Project: "nope", Roles: map[string]Role{"nope": Viewer}}, errs.ErrForbidden, `"nope"`},
	}
	for _, tt := range tests {
		_, err := w.a.CreateToken(ctx, tt.by, tt.req)
		if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %v with %q", tt.name, err, tt.kind, tt.want)
		}
	}
	ts, err := w.st.Tokens(ctx, "")
	if err != nil || len(ts) != 4 {
		t.Fatalf("tokens %d, %v; want the bootstrap, blue's creator's, blue's admin's and op's", len(ts), err)
	}
	for _, tk := range ts {
		if len(tk.Hash) != 64 || tk.Hash == c.Secret.secret {
			t.Errorf("token %s stores %q", tk.ID, tk.Hash)
		}
	}
	// Its principal may revoke their own token; others need admin.
	if _, err := w.a.RevokeToken(ctx, blueAdmin, IDOf(strings.TrimPrefix(opH, "Bearer ")), ""); !errors.Is(err, errs.ErrForbidden) {
		t.Errorf("blue's admin revoked a default token: %v", err)
	}
	if _, err := w.a.RevokeToken(ctx, op, op.TokenID, "bad\x1b[2Jreason"); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "reason") {
		t.Errorf("a reason with an escape sequence: %v", err)
	}
	if _, err := w.a.RevokeToken(ctx, op, op.TokenID, "left the team"); err != nil {
		t.Errorf("revoke one's own token: %v", err)
	}
	// The reason is in the token.revoked event, and nothing else of it is.
	evs, err := w.st.Events(ctx, 0, 0)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events: %d, %v", len(evs), err)
	}
	last := evs[len(evs)-1]
	if last.Type != "token.revoked" || last.Subject != op.TokenID || !strings.Contains(string(last.Data), `"reason":"left the team"`) {
		t.Errorf("the revocation's event: %s %s %s", last.Type, last.Subject, last.Data)
	}
	// A second bootstrap does nothing.
	if ok, err := w.a.Bootstrap(ctx, func(string) error { return errors.New("must not be called") }); ok || err != nil {
		t.Errorf("second bootstrap: %v, %v", ok, err)
	}
}

func TestBootstrapKeepFails(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := New(Options{Store: st})
	if ok, err := a.Bootstrap(context.Background(), func(string) error { return errors.New("disk full") }); ok || err == nil {
		t.Fatalf("bootstrap with a failing keep: %v, %v", ok, err)
	}
	if n, err := st.CountTokens(context.Background()); n != 0 || err != nil {
		t.Fatalf("a token was stored though it could not be kept: %d, %v", n, err)
	}
}

// BenchmarkAuthenticate is the cost one request pays for its token: parse,
// one SQLite read of the token and its roles, hash compare, rate limit.
func BenchmarkAuthenticate(b *testing.B) {
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a := New(Options{Store: st, Rate: -1})
	var tok string
	if _, err := a.Bootstrap(context.Background(), func(s string) error { tok = s; return nil }); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, "Bearer "+tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCreateProjectKeepsTheCreatorsRoles: a project's creator gets a token
// that is admin in it and holds the creating token's other roles, no
// more (an operator stays an operator) and for no longer (it expires with
// the creating token).
func TestCreateProjectKeepsTheCreatorsRoles(t *testing.T) {
	w := newWorld(t, Options{})
	ctx := context.Background()
	h := w.token(w.admin, NewToken{Principal: "ops", Project: "default", Roles: map[string]Role{"default": Operator}, TTL: 48 * time.Hour})
	ops, err := w.a.Authenticate(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	_, c, err := w.a.CreateProject(ctx, ops, "green")
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.a.Authenticate(ctx, "Bearer "+c.Secret.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Roles["green"] != Admin || got.Roles["default"] != Operator || len(got.Roles) != 2 || !got.ExpiresAt.Equal(ops.ExpiresAt) {
		t.Errorf("green's creator token: roles %v, expires %v; want green=admin default=operator, expiring %v", got.Roles, got.ExpiresAt, ops.ExpiresAt)
	}
	w.now = ops.ExpiresAt
	if _, _, err := w.a.CreateProject(ctx, ops, "late"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Errorf("a project created by an expired token: %v, want unauthenticated", err)
	}
}
