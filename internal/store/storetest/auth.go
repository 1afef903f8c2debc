package storetest

import (
	"errors"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// testProjects: the default project exists in an empty store; projects
// insert once, read back and list by name.
func testProjects(t *testing.T, s store.Store) {
	ps, err := s.Projects(ctx)
	must(t, err)
	if len(ps) != 1 || ps[0].Name != store.DefaultProject {
		t.Fatalf("an empty store's projects: %+v, want only %q", ps, store.DefaultProject)
	}
	for i, name := range []string{"zeta", "alpha"} {
		p := store.Project{Name: name, CreatedBy: "root", CreatedAt: at(i)}
		prev := lastSeq(t, s)
		sent := []store.Event{ev("project.created", name)}
		evs, err := s.PutProject(ctx, p, nil, sent)
		must(t, err)
		checkEvents(t, s, prev, sent, evs)
		back, err := s.Project(ctx, name)
		must(t, err)
		equal(t, "read "+name, back, p)
	}
	_, err = s.PutProject(ctx, store.Project{Name: "alpha", CreatedBy: "other"}, nil, []store.Event{ev("project.created", "alpha")})
	wantKind(t, "duplicate", err, errs.ErrConflict, `"alpha"`)
	_, err = s.PutProject(ctx, store.Project{Name: "beta"}, nil, nil)
	wantKind(t, "no creator", err, errs.ErrInvalid, "created_by")
	_, err = s.Project(ctx, "nope")
	wantKind(t, "unknown", err, errs.ErrNotFound, `"nope"`)

	// A project with its creator's admin token: both or neither.
	tk := token("t-green", "green", "admin", 5)
	_, err = s.PutProject(ctx, store.Project{Name: "green", CreatedBy: "root", CreatedAt: at(5)}, &tk, []store.Event{ev("project.created", "green")})
	must(t, err)
	back, err := s.Token(ctx, "t-green")
	must(t, err)
	equal(t, "the project's admin token", back, tk)
	prev := lastSeq(t, s)
	bad := token("t-gray", "gray", "admin", 6)
	bad.Roles["red"] = "viewer" // no such project: the token fails, and the project with it
	_, err = s.PutProject(ctx, store.Project{Name: "gray", CreatedBy: "root"}, &bad, []store.Event{ev("project.created", "gray")})
	wantKind(t, "project with a bad token", err, errs.ErrNotFound, `"red"`)
	if _, err := s.Project(ctx, "gray"); !errors.Is(err, errs.ErrNotFound) || lastSeq(t, s) != prev {
		t.Errorf("a project whose token failed was stored (%v) or appended events", err)
	}
	ps, err = s.Projects(ctx)
	must(t, err)
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	equal(t, "project names", names, []string{"alpha", store.DefaultProject, "green", "zeta"})
}

func token(id, project, role string, i int) store.Token {
	return store.Token{ID: id, Principal: "p-" + id, Hash: hexID(id), Project: project, Roles: map[string]string{project: role},
		CreatedBy: "root", CreatedAt: at(i)}
}

// testTokens: tokens insert once with their roles, only into existing
// projects; list by project; revoke once; count.
func testTokens(t *testing.T, s store.Store) {
	n, err := s.CountTokens(ctx)
	must(t, err)
	if n != 0 {
		t.Fatalf("an empty store counts %d tokens", n)
	}
	_, err = s.PutProject(ctx, store.Project{Name: "blue", CreatedBy: "root", CreatedAt: at(0)}, nil, nil)
	must(t, err)
	a := token("aaaa", store.DefaultProject, "admin", 1)
	a.ExpiresAt = at(100)
	a.Note = "bootstrap"
	b := token("bbbb", "blue", "operator", 2)
	b.Roles[store.DefaultProject] = "viewer"
	c := token("cccc", "blue", "viewer", 3)
	for _, tk := range []store.Token{a, b, c} {
		prev := lastSeq(t, s)
		sent := []store.Event{ev("token.created", tk.ID)}
		evs, err := s.PutToken(ctx, tk, sent)
		must(t, err)
		checkEvents(t, s, prev, sent, evs)
		back, err := s.Token(ctx, tk.ID)
		must(t, err)
		equal(t, "read "+tk.ID, back, tk)
	}
	bad := []struct {
		name string
		tk   store.Token
		kind error
		msg  string
	}{
		{"duplicate", token("aaaa", "blue", "viewer", 4), errs.ErrConflict, `"aaaa"`},
		{"unknown project", token("dddd", "red", "viewer", 4), errs.ErrNotFound, `"red"`},
		{"bad role", token("eeee", "blue", "owner", 4), errs.ErrInvalid, `"owner"`},
		{"no hash", store.Token{ID: "ffff", Principal: "x", Project: "blue", Roles: map[string]string{"blue": "viewer"}, CreatedBy: "root"}, errs.ErrInvalid, "hash"},
		{"home project without a role", store.Token{ID: "gggg", Principal: "x", Hash: "h", Project: "blue", Roles: map[string]string{store.DefaultProject: "viewer"}, CreatedBy: "root"}, errs.ErrInvalid, `"blue"`},
	}
	for _, tc := range bad {
		prev := lastSeq(t, s)
		_, err := s.PutToken(ctx, tc.tk, []store.Event{ev("token.created", tc.tk.ID)})
		wantKind(t, tc.name, err, tc.kind, tc.msg)
		if lastSeq(t, s) != prev {
			t.Errorf("%s: a refused token appended events", tc.name)
		}
	}
	_, err = s.Token(ctx, "zzzz")
	wantKind(t, "unknown token", err, errs.ErrNotFound, `"zzzz"`)

	ids := func(project string) []string {
		ts, err := s.Tokens(ctx, project)
		must(t, err)
		var out []string
		for _, tk := range ts {
			out = append(out, tk.ID)
		}
		return out
	}
	equal(t, "all tokens", ids(""), []string{"aaaa", "bbbb", "cccc"})
	equal(t, "tokens of blue", ids("blue"), []string{"bbbb", "cccc"})
	equal(t, "tokens of default", ids(store.DefaultProject), []string{"aaaa", "bbbb"})
	equal(t, "tokens of an unknown project", ids("red"), []string(nil))

	prev := lastSeq(t, s)
	sent := []store.Event{ev("token.revoked", "bbbb")}
	got, evs, err := s.RevokeToken(ctx, "bbbb", at(10), sent)
	must(t, err)
	checkEvents(t, s, prev, sent, evs)
	b.RevokedAt = at(10)
	equal(t, "revoked", got, b)
	// A second revocation keeps the first time and appends nothing.
	prev = lastSeq(t, s)
	got, evs, err = s.RevokeToken(ctx, "bbbb", at(20), []store.Event{ev("token.revoked", "bbbb")})
	must(t, err)
	equal(t, "revoked twice", got, b)
	if len(evs) != 0 || lastSeq(t, s) != prev {
		t.Errorf("revoking a revoked token appended %d events", len(evs))
	}
	_, _, err = s.RevokeToken(ctx, "zzzz", at(20), nil)
	wantKind(t, "revoke unknown", err, errs.ErrNotFound, `"zzzz"`)
	n, err = s.CountTokens(ctx)
	must(t, err)
	if n != 3 {
		t.Errorf("CountTokens = %d, want 3", n)
	}
}
