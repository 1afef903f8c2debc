package storetest

import (
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func testDatasets(t *testing.T, s store.Store) {
	v1, v2 := dataset("reviews", "one", 0), dataset("reviews", "two", 1)
	v2.Parent = v1.ID
	// v3 is inserted last but carries an older CreatedAt: "latest" follows
	// insertion order, not the timestamp.
	v3 := dataset("reviews", "three", -5)
	v3.Parent = v2.ID
	other := dataset("tickets", "one", 2) // same id, different name
	for i, v := range []store.DatasetVersion{v1, v2, v3, other} {
		prev := lastSeq(t, s)
		sent := []store.Event{ev("dataset.version.created", v.ID)}
		got, err := s.PutDatasetVersion(ctx, v, sent)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		checkEvents(t, s, prev, sent, got)
	}
	tests := []struct {
		name, id string
		want     store.DatasetVersion
	}{
		{"reviews", v1.ID, v1},
		{"reviews", v2.ID, v2},
		{"reviews", "", v3},
		{"reviews", "latest", v3},
		{"tickets", v1.ID, other},
		{"tickets", "latest", other},
	}
	for _, tc := range tests {
		t.Run(tc.name+"@"+tc.id, func(t *testing.T) {
			got, err := s.DatasetVersion(ctx, tc.name, tc.id)
			must(t, err)
			equal(t, "version", got, tc.want)
		})
	}
	all, err := s.DatasetVersions(ctx, "reviews")
	must(t, err)
	equal(t, "list reviews", all, []store.DatasetVersion{v1, v2, v3})
	all, err = s.DatasetVersions(ctx, "")
	must(t, err)
	equal(t, "list all", all, []store.DatasetVersion{v1, v2, v3, other})
	none, err := s.DatasetVersions(ctx, "missing")
	must(t, err)
	if len(none) != 0 {
		t.Errorf("list missing = %v, want empty", none)
	}

	_, err = s.DatasetVersion(ctx, "reviews", "abc")
	wantKind(t, "unknown id", err, errs.ErrNotFound, `"reviews"`, `"abc"`)
	_, err = s.DatasetVersion(ctx, "missing", "")
	wantKind(t, "unknown name", err, errs.ErrNotFound, `"missing"`)
	_, err = s.PutDatasetVersion(ctx, v2, nil)
	wantKind(t, "duplicate", err, errs.ErrConflict, `"reviews"`, v2.ID)
}

func testBases(t *testing.T, s store.Store) {
	var stored []store.BaseVersion
	for i, id := range []string{"a", "b", "c"} {
		prev := lastSeq(t, s)
		sent := []store.Event{ev("base.version.created", id), ev("base.alias.moved", id)}
		v, got, err := s.PutBaseVersion(ctx, base("smollm", id, i), sent)
		must(t, err)
		checkEvents(t, s, prev, sent, got)
		if v.Version != i+1 {
			t.Errorf("put %s: version %d, want %d", id, v.Version, i+1)
		}
		stored = append(stored, v)
	}
	// A duplicate is refused and does not use up a version number.
	_, _, err := s.PutBaseVersion(ctx, base("smollm", "b", 9), nil)
	wantKind(t, "duplicate", err, errs.ErrConflict, `"smollm"`, hexID("b"))
	d, _, err := s.PutBaseVersion(ctx, base("smollm", "d", 3), nil)
	must(t, err)
	if d.Version != 4 {
		t.Errorf("after duplicate: version %d, want 4", d.Version)
	}
	stored = append(stored, d)
	q, _, err := s.PutBaseVersion(ctx, base("qwen", "a", 4), nil)
	must(t, err)
	if q.Version != 1 {
		t.Errorf("other name: version %d, want 1", q.Version)
	}

	tests := []struct {
		ref  string
		want store.BaseVersion
	}{
		{"", d}, {"latest", d}, {"v2", stored[1]}, {"2", stored[1]}, {"v1", stored[0]},
		{hexID("c"), stored[2]}, {hexID("c")[:7], stored[2]}, {hexID("b")[:12], stored[1]}, {"pinned", stored[1]},
	}
	// An alias resolves to the version it points at; ident.ParseRef is the
	// grammar of every reference.
	_, err = s.SetAlias(ctx, store.Alias{Kind: "base", Name: "smollm", Alias: "pinned", Target: stored[1].ID, UpdatedAt: at(0)}, nil)
	must(t, err)
	for _, tc := range tests {
		t.Run("ref "+tc.ref, func(t *testing.T) {
			got, err := s.BaseVersion(ctx, "smollm", tc.ref)
			must(t, err)
			equal(t, "base", got, tc.want)
		})
	}
	for _, ref := range []string{"v9", "9", "nope", hexID("zzz"), hexID("zzz")[:7]} {
		_, err := s.BaseVersion(ctx, "smollm", ref)
		wantKind(t, "ref "+ref, err, errs.ErrNotFound, `"smollm"`, ref)
	}
	for _, ref := range []string{"v0", "0", "Pinned", "v1234567890"} {
		_, err := s.BaseVersion(ctx, "smollm", ref)
		wantKind(t, "ref "+ref, err, errs.ErrInvalid, `"smollm"`, ref)
	}
	_, err = s.BaseVersion(ctx, "missing", "")
	wantKind(t, "unknown name", err, errs.ErrNotFound, `"missing"`)
	list, err := s.BaseVersions(ctx, "smollm")
	must(t, err)
	equal(t, "list smollm", list, stored)
	list, err = s.BaseVersions(ctx, "")
	must(t, err)
	equal(t, "list all", list, append(append([]store.BaseVersion{}, stored...), q))
	// A prefix two versions share is refused, naming the count.
	for _, tail := range []string{"0000", "1111"} {
		v := base("twins", "t"+tail, 0)
		v.ID = hexID("t")[:60] + tail
		_, _, err := s.PutBaseVersion(ctx, v, nil)
		must(t, err)
	}
	_, err = s.BaseVersion(ctx, "twins", hexID("t")[:10])
	wantKind(t, "shared prefix", err, errs.ErrInvalid, `"twins"`, "2 versions", "write more of the id")
}

func testRecipes(t *testing.T, s store.Store) {
	var stored []store.RecipeVersion
	for i, id := range []string{"x", "y"} {
		v, _, err := s.PutRecipeVersion(ctx, recipe("sentiment", id, i), []store.Event{ev("recipe.version.created", id)})
		must(t, err)
		if v.Version != i+1 {
			t.Errorf("put %s: version %d, want %d", id, v.Version, i+1)
		}
		stored = append(stored, v)
	}
	_, _, err := s.PutRecipeVersion(ctx, recipe("sentiment", "x", 5), nil)
	wantKind(t, "duplicate", err, errs.ErrConflict, `"sentiment"`)
	shared, _, err := s.PutRecipeVersion(ctx, recipe("copy", "x", 6), nil)
	must(t, err)

	tests := []struct {
		ref  string
		want store.RecipeVersion
	}{
		{"", stored[1]}, {"latest", stored[1]}, {"v1", stored[0]}, {"1", stored[0]}, {hexID("y"), stored[1]},
	}
	for _, tc := range tests {
		t.Run("ref "+tc.ref, func(t *testing.T) {
			got, err := s.RecipeVersion(ctx, "sentiment", tc.ref)
			must(t, err)
			equal(t, "recipe", got, tc.want)
		})
	}
	_, err = s.RecipeVersion(ctx, "sentiment", "v3")
	wantKind(t, "v3", err, errs.ErrNotFound, `"sentiment"`, `"v3"`)

	byID, err := s.RecipeVersionByID(ctx, hexID("y"))
	must(t, err)
	equal(t, "by id", byID, stored[1])
	byID, err = s.RecipeVersionByID(ctx, hexID("x"))
	must(t, err)
	if byID.Name != "sentiment" {
		t.Errorf("by shared id: got name %q, want the first inserted (sentiment)", byID.Name)
	}
	_, err = s.RecipeVersionByID(ctx, "nope")
	wantKind(t, "by unknown id", err, errs.ErrNotFound, `"nope"`)

	list, err := s.RecipeVersions(ctx, "sentiment")
	must(t, err)
	equal(t, "list", list, stored)
	list, err = s.RecipeVersions(ctx, "")
	must(t, err)
	equal(t, "list all", list, append(append([]store.RecipeVersion{}, stored...), shared))
}
