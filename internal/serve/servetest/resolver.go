package servetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
)

// ResolverFixture is a Resolver under test plus the means to populate it.
// serve.MemResolver and the application's registry-backed resolver both
// run RunResolver, so tests may use the in-memory one in place of the real.
type ResolverFixture interface {
	serve.Resolver
	// AddBase adds a base version named name.
	AddBase(t *testing.T, name string)
	// AddVersion adds the next version of model over base, with an adapter
	// no other version has, and returns its adapter digest.
	AddVersion(t *testing.T, model, base string) string
	// SetAlias points model@alias at version v.
	SetAlias(t *testing.T, model, alias string, v int)
}

// RunResolver is the conformance suite for serve.Resolver.
func RunResolver(t *testing.T, newFixture func(t *testing.T) ResolverFixture) {
	ctx := context.Background()
	f := newFixture(t)
	f.AddBase(t, "tiny")
	a1 := f.AddVersion(t, "spam", "tiny")
	a2 := f.AddVersion(t, "spam", "tiny")

	resolve := func(addr string) serve.Target {
		t.Helper()
		ref, err := serve.ParseRef(addr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Resolve(ctx, ref)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", addr, err)
		}
		return got
	}
	if b := resolve("tiny"); b.Model != "tiny" || b.Adapter != "" || b.BaseID == "" {
		t.Errorf("bare base name: %+v", b)
	}
	if v := resolve("spam"); v.Adapter != a2 || v.Version != 2 {
		t.Errorf("bare model name without a champion should be the latest version: %+v", v)
	}
	v1 := resolve("spam@v1")
	if v1.Adapter != a1 || v1.Version != 1 || v1.Model != "spam" {
		t.Errorf("spam@v1: %+v", v1)
	}
	// One grammar with the registry: a bare number, latest and an id
	// prefix name versions too.
	for _, addr := range []string{"spam@1", "spam@" + v1.VersionID, "spam@" + v1.VersionID[:7]} {
		if v := resolve(addr); v.Adapter != a1 || v.Version != 1 {
			t.Errorf("%s: %+v", addr, v)
		}
	}
	if v := resolve("spam@latest"); v.Adapter != a2 {
		t.Errorf("spam@latest: %+v", v)
	}
	f.SetAlias(t, "spam", "champion", 1)
	if v := resolve("spam"); v.Adapter != a1 {
		t.Errorf("bare model name with a champion should be the champion: %+v", v)
	}
	if v := resolve("spam@champion"); v.Adapter != a1 {
		t.Errorf("spam@champion: %+v", v)
	}
	f.SetAlias(t, "spam", "challenger", 2)
	if v := resolve("spam@challenger"); v.Adapter != a2 {
		t.Errorf("spam@challenger: %+v", v)
	}
	for _, addr := range []string{"nosuch", "spam@v9", "spam@nosuch", "spam@0123456"} {
		ref, err := serve.ParseRef(addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Resolve(ctx, ref); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("Resolve(%s) = %v, want a not-found error", addr, err)
		}
	}
	entries, err := f.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	for _, want := range []string{"tiny", "spam", "spam@v1", "spam@v2", "spam@champion", "spam@challenger"} {
		if !slices.Contains(ids, want) {
			t.Errorf("Models lacks %q: %v", want, ids)
		}
	}
	if !slices.IsSorted(ids) {
		t.Errorf("Models not sorted by id: %v", ids)
	}
}
