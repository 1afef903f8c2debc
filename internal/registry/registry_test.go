package registry

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tailor-ml/tailor/internal/store"
)

func TestRegister(t *testing.T) {
	f := newFixture(t, nil)
	vs := f.register(t, "sentiment", 2)
	for i, v := range vs {
		if v.Version != i+1 || v.ID != ContentID(v.BaseID, v.Adapter) || v.CreatedAt.IsZero() {
			t.Errorf("version %d = %+v", i+1, v.ModelVersion)
		}
	}
	// The base alone is a servable version too.
	base, created, err := f.reg.Register(ctx, input("sentiment", ""))
	must(t, err)
	if !created || base.Version != 3 || base.Adapter != "" {
		t.Errorf("base alone: created %v, %+v", created, base.ModelVersion)
	}
	// Registering the same content again returns the existing version.
	again, created, err := f.reg.Register(ctx, input("sentiment", "a2"))
	must(t, err)
	if created || again.Version != 2 || again.ID != vs[1].ID {
		t.Errorf("same content again: created %v, version %d", created, again.Version)
	}
	// The same content under another name is that name's version 1.
	other, created, err := f.reg.Register(ctx, input("spam", "a2"))
	must(t, err)
	if !created || other.Version != 1 || other.ID != vs[1].ID {
		t.Errorf("other name: created %v, %+v", created, other.ModelVersion)
	}
	want := []string{EventVersionRegistered, EventVersionRegistered, EventVersionRegistered, EventVersionRegistered}
	if got := f.pub.types(); !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	var data versionEvent
	must(t, json.Unmarshal(f.pub.events[0].Data, &data))
	if data.Name != "sentiment" || data.Adapter != vs[0].Adapter || f.pub.events[0].Subject != vs[0].ID {
		t.Errorf("event data %+v subject %s", data, f.pub.events[0].Subject)
	}
}

func TestRegisterInvalid(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name string
		edit func(*store.ModelVersion)
		says []string
	}{
		{"bad name", func(v *store.ModelVersion) { v.Name = "Sentiment!" }, []string{`"Sentiment!"`}},
		{"bad base id", func(v *store.ModelVersion) { v.BaseID = "smollm" }, []string{"base_id", `"smollm"`}},
		{"bad adapter", func(v *store.ModelVersion) { v.Adapter = "md5:abc" }, []string{"adapter", `"md5:abc"`}},
		{"no task", func(v *store.ModelVersion) { v.Task = "" }, []string{"task"}},
		{"empty label key", func(v *store.ModelVersion) { v.Labels = map[string]string{"": "x"} }, []string{"label"}},
		{"wrong id", func(v *store.ModelVersion) { v.ID = hexOf("nope") }, []string{"content id", hexOf("nope")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := input("sentiment", "a1")
			tc.edit(&v)
			_, _, err := f.reg.Register(ctx, v)
			wantErr(t, err, "invalid", tc.says...)
		})
	}
	if vs, _ := f.st.ModelVersions(ctx, ""); len(vs) != 0 {
		t.Errorf("invalid registrations stored %d versions", len(vs))
	}
	if n := len(f.pub.types()); n != 0 {
		t.Errorf("invalid registrations published %d events", n)
	}
}

func TestAttachReport(t *testing.T) {
	f := newFixture(t, nil)
	v := f.register(t, "sentiment", 1)[0]
	fail := f.report(t, v, store.VerdictFail)
	got, err := f.reg.Version(ctx, "sentiment", "v1")
	must(t, err)
	if got.Verdict != store.VerdictFail || len(got.Reports) != 1 {
		t.Errorf("after failing report: verdict %q, %d reports", got.Verdict, len(got.Reports))
	}
	pass := f.report(t, v, store.VerdictPass)
	got, err = f.reg.Version(ctx, "sentiment", "v1")
	must(t, err)
	if got.Verdict != store.VerdictPass || !reflect.DeepEqual(got.Reports, []store.EvalReport{fail, pass}) {
		t.Errorf("after passing report: verdict %q, reports %+v", got.Verdict, got.Reports)
	}
	// The version row itself is unchanged.
	if !reflect.DeepEqual(got.ModelVersion, v.ModelVersion) {
		t.Errorf("version changed:\n got %+v\nwant %+v", got.ModelVersion, v.ModelVersion)
	}

	ok := store.EvalReport{Digest: "sha256:" + hexOf("r"), DatasetID: "d1", Split: "test", Verdict: store.VerdictPass}
	tests := []struct {
		name, version string
		edit          func(*store.EvalReport)
		kind          string
		says          []string
	}{
		{"duplicate", v.ID, func(r *store.EvalReport) { r.Digest = pass.Digest }, "conflict", []string{pass.Digest, "already attached"}},
		{"unknown version", hexOf("x"), func(*store.EvalReport) {}, "not_found", []string{hexOf("x")}},
		{"bad verdict", v.ID, func(r *store.EvalReport) { r.Verdict = "meh" }, "invalid", []string{`"meh"`}},
		{"bad digest", v.ID, func(r *store.EvalReport) { r.Digest = "abc" }, "invalid", []string{`"abc"`, "digest"}},
		{"no dataset", v.ID, func(r *store.EvalReport) { r.DatasetID = "" }, "invalid", []string{"dataset_id"}},
		{"no split", v.ID, func(r *store.EvalReport) { r.Split = "" }, "invalid", []string{"split"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			_, err := f.reg.AttachReport(ctx, tc.version, r)
			wantErr(t, err, tc.kind, tc.says...)
		})
	}
}

func TestVersionRefs(t *testing.T) {
	f := newFixture(t, nil)
	vs := f.register(t, "sentiment", 3)
	f.report(t, vs[0], store.VerdictPass)
	_, err := f.reg.Promote(ctx, promote("sentiment", "v1", "champion"))
	must(t, err)
	tests := []struct {
		ref  string
		want int
	}{
		{"", 3}, {"latest", 3}, {"v2", 2}, {"2", 2}, {vs[0].ID, 1}, {"champion", 1},
	}
	for _, tc := range tests {
		t.Run("ref "+tc.ref, func(t *testing.T) {
			got, err := f.reg.Version(ctx, "sentiment", tc.ref)
			must(t, err)
			if got.Version != tc.want {
				t.Errorf("version %d, want %d", got.Version, tc.want)
			}
		})
	}
	champ, err := f.reg.Version(ctx, "sentiment", "champion")
	must(t, err)
	if !reflect.DeepEqual(champ.Aliases, []string{"champion"}) || champ.Verdict != store.VerdictPass {
		t.Errorf("champion view: aliases %v verdict %q", champ.Aliases, champ.Verdict)
	}
	errTests := []struct {
		name, ref, kind, says string
	}{
		{"sentiment", "v9", "not_found", "v9"},
		{"sentiment", "challenger", "not_found", "challenger"},
		{"sentiment", hexOf("zz"), "not_found", hexOf("zz")},
		{"sentiment", "v0", "invalid", "v0"},
		{"sentiment", "Champion", "invalid", "Champion"},
		{"missing", "latest", "not_found", "missing"},
		{"Bad Name", "latest", "invalid", "Bad Name"},
	}
	for _, tc := range errTests {
		t.Run("bad "+tc.name+"@"+tc.ref, func(t *testing.T) {
			_, err := f.reg.Version(ctx, tc.name, tc.ref)
			wantErr(t, err, tc.kind, tc.says)
		})
	}
	list, err := f.reg.Versions(ctx, "sentiment")
	must(t, err)
	if len(list) != 3 || list[0].Verdict != store.VerdictPass || list[1].Verdict != "" || len(list[0].Aliases) != 1 {
		t.Errorf("versions list %+v", list)
	}
	_, err = f.reg.Versions(ctx, "missing")
	wantErr(t, err, "not_found", `"missing"`, "register")
}
