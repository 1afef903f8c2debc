package history

import (
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/api"
)

// fixture is a small consistent history and its final state: dataset d
// grows v1 → v2 → v3, one refused and one indeterminate append, a
// re-import; one recipe applied twice; one run started twice; an alias
// promoted and rolled back; two labels acknowledged, one refused, one
// indeterminate, accumulated into two feedback versions.
func fixture() ([]Op, Final) {
	ver := func(id, parent string, n int64) api.DatasetVersion {
		return api.DatasetVersion{ID: id, Name: "d", Parent: parent, Records: n}
	}
	imp := func(v api.DatasetVersion, created bool) api.DatasetImport {
		return api.DatasetImport{Version: v, Created: created}
	}
	move := func(seq int64, from, to, reason string) api.AliasMove {
		return api.AliasMove{Seq: seq, Name: "m", Alias: "champion", From: from, To: to, Reason: reason}
	}
	v1, v2, v3 := ver("v1", "", 1), ver("v2", "v1", 2), ver("v3", "v2", 4)
	fv1, fv2 := ver("fv1", "", 1), ver("fv2", "fv1", 2)
	m2, m3 := move(2, "m1", "m2", "p1"), move(3, "m2", "m1", "rb1")
	run := api.Run{ID: "run1", Key: "k1", RecipeID: "rv1", State: "succeeded"}
	reused := run
	reused.Reused = true
	h := []Op{
		{Kind: Import, Dataset: "d", Records: []string{"a1"}, ExpectParent: NoParent, Outcome: OK, Imported: imp(v1, true)},
		{Index: 1, Kind: Append, Dataset: "d", Records: []string{"b1"}, Outcome: OK, Imported: imp(v2, true)},
		{Index: 2, Kind: Append, Dataset: "d", Records: []string{"c1", "c2"}, ExpectParent: "v2", Outcome: OK, Imported: imp(v3, true)},
		{Index: 3, Kind: Append, Dataset: "d", Records: []string{"x1"}, ExpectParent: "v1", Outcome: Fail, Status: 409},
		{Index: 4, Kind: Append, Dataset: "d", Records: []string{"u1"}, Outcome: Unknown},
		{Index: 5, Kind: Reimport, Dataset: "d", Read: "v3", Outcome: OK, Imported: imp(v3, false)},
		{Client: 1, Kind: ApplyRecipe, Recipe: "r", Outcome: OK, Applied: api.RecipeApply{Version: api.RecipeVersion{ID: "rv9"}, Created: true}},
		{Client: 1, Index: 1, Kind: ApplyRecipe, Recipe: "r", Outcome: OK, Applied: api.RecipeApply{Version: api.RecipeVersion{ID: "rv9"}}},
		{Client: 2, Kind: StartRun, Recipe: "rv1", Outcome: OK, Run: run},
		{Client: 2, Index: 1, Kind: StartRun, Recipe: "rv1", Outcome: OK, Run: reused},
		{Client: 3, Kind: Promote, Model: "m", Alias: "champion", Target: "v2", Tag: "p1", Outcome: OK, Move: &m2},
		{Client: 3, Index: 1, Kind: Rollback, Model: "m", Alias: "champion", Tag: "rb1", Outcome: OK, Move: &m3},
		{Client: 3, Index: 2, Kind: Promote, Model: "m", Alias: "champion", Target: "v1", Tag: "p2", Outcome: Fail, Status: 409},
		{Client: 3, Index: 3, Kind: Promote, Model: "m", Alias: "champion", Target: "v2", Tag: "p3", Outcome: Unknown},
		{Client: 4, Kind: Feedback, Model: "m", Request: "q1", Label: "ham", Outcome: OK},
		{Client: 4, Index: 1, Kind: Accumulate, Model: "m", Outcome: OK, Accumulated: &fv1},
		{Client: 4, Index: 2, Kind: Feedback, Model: "m", Request: "q2", Label: "spam", Outcome: OK},
		{Client: 4, Index: 3, Kind: Feedback, Model: "m", Request: "q3", Label: "spam", Outcome: Fail, Status: 404},
		{Client: 4, Index: 4, Kind: Feedback, Model: "m", Request: "q4", Label: "ham", Outcome: Unknown},
	}
	f := Final{
		Datasets: map[string]DatasetState{"d": {
			Versions:      []api.DatasetVersion{v1, v2, v3},
			Latest:        "v3",
			LatestRecords: []string{"a1", "b1", "c1", "c2"},
			ReadBack:      map[string]int{"v1": 1, "v2": 2, "v3": 4},
		}},
		Recipes:       map[string][]api.RecipeVersion{"r": {{ID: "rv9", Name: "r"}}},
		Runs:          []api.Run{run},
		Aliases:       map[string][]api.AliasMove{"m@champion": {move(1, "", "m1", "setup"), m2, m3}},
		SetupTags:     []string{"setup"},
		FeedbackModel: "m",
		Feedback: DatasetState{
			Versions:      []api.DatasetVersion{fv1, fv2},
			Latest:        "fv2",
			LatestRecords: []string{"q1", "q2"},
			ReadBack:      map[string]int{"fv1": 1, "fv2": 2},
		},
		FeedbackLabels: map[string]string{"q1": "ham", "q2": "spam"},
		Fsck:           api.FsckReport{Blobs: 10},
	}
	return h, f
}

func TestCheckFlagsBadHistories(t *testing.T) {
	tests := []struct {
		name   string
		breaks func(h []Op, f *Final) []Op
		want   string // "" for a consistent history
	}{
		{"consistent", func(h []Op, f *Final) []Op { return h }, ""},
		{"lost record", func(h []Op, f *Final) []Op {
			setDataset(f, func(d *DatasetState) { d.LatestRecords = []string{"a1", "c1", "c2"} })
			return h
		}, "lost acknowledged record b1"},
		{"record twice", func(h []Op, f *Final) []Op {
			setDataset(f, func(d *DatasetState) { d.LatestRecords = append(d.LatestRecords, "c1") })
			return h
		}, "record c1 is in latest 2 times"},
		{"indeterminate record twice", func(h []Op, f *Final) []Op {
			setDataset(f, func(d *DatasetState) { d.LatestRecords = append(d.LatestRecords, "u1", "u1") })
			return h
		}, "record u1 is in latest 2 times"},
		{"refused record applied", func(h []Op, f *Final) []Op {
			setDataset(f, func(d *DatasetState) { d.LatestRecords = append(d.LatestRecords, "x1") })
			return h
		}, "record x1 of a refused op is in latest"},
		{"phantom record", func(h []Op, f *Final) []Op {
			setDataset(f, func(d *DatasetState) { d.LatestRecords = append(d.LatestRecords, "z9") })
			return h
		}, "record z9 is in latest but no op sent it"},
		{"forked parent", func(h []Op, f *Final) []Op {
			// Two concurrent appends both read v1: the second version's
			// parent is v1 too, and b1 is lost.
			v3 := api.DatasetVersion{ID: "v3", Name: "d", Parent: "v1", Records: 3}
			h[2].Imported.Version, h[2].ExpectParent = v3, ""
			setDataset(f, func(d *DatasetState) {
				d.Versions[2] = v3
				d.LatestRecords = []string{"a1", "c1", "c2"}
				d.ReadBack["v3"] = 3
			})
			return h
		}, "fork: version v1 has 2 children"},
		{"acknowledged version off the chain", func(h []Op, f *Final) []Op {
			v3 := api.DatasetVersion{ID: "v3", Name: "d", Parent: "v1", Records: 3}
			h[2].Imported.Version, h[2].ExpectParent = v3, ""
			setDataset(f, func(d *DatasetState) {
				d.Versions[2] = v3
				d.Latest = "v3"
				d.LatestRecords = []string{"a1", "c1", "c2"}
			})
			return h
		}, "acknowledged version v2 is not on latest's parent chain"},
		{"empty parent twice", func(h []Op, f *Final) []Op {
			v2 := api.DatasetVersion{ID: "v2", Name: "d", Records: 1}
			h[1].Imported.Version = v2
			setDataset(f, func(d *DatasetState) { d.Versions[1] = v2 })
			return h
		}, "2 versions with no parent"},
		{"precondition ignored", func(h []Op, f *Final) []Op {
			h[2].ExpectParent = "v1"
			return h
		}, "import expecting parent v1 got parent v2"},
		{"version missing its parent's records", func(h []Op, f *Final) []Op {
			setDataset(f, func(d *DatasetState) { d.Versions[2].Records = 2 })
			h[2].Imported.Version.Records = 2
			return h
		}, "version v3 has 2 records; its parent v2 has 2 and the op added 2, so want 4"},
		{"partial version", func(h []Op, f *Final) []Op {
			setDataset(f, func(d *DatasetState) { d.ReadBack["v2"] = 0 })
			return h
		}, "version v2 claims 2 records but its records endpoint streamed 0"},
		{"reimport created a version", func(h []Op, f *Final) []Op {
			h[5].Imported.Created = true
			return h
		}, "re-importing the records of v3"},
		{"lost alias move", func(h []Op, f *Final) []Op {
			a := f.Aliases["m@champion"]
			f.Aliases["m@champion"] = []api.AliasMove{a[0], a[2]}
			return h
		}, "lost acknowledged move seq 2"},
		{"alias history does not chain", func(h []Op, f *Final) []Op {
			f.Aliases["m@champion"][2].From = "m3"
			return h
		}, "history does not chain"},
		{"refused alias move applied", func(h []Op, f *Final) []Op {
			f.Aliases["m@champion"] = append(f.Aliases["m@champion"], api.AliasMove{Seq: 4, From: "m1", To: "m1", Reason: "p2"})
			return h
		}, "refused move is in the history"},
		{"indeterminate alias move twice", func(h []Op, f *Final) []Op {
			f.Aliases["m@champion"] = append(f.Aliases["m@champion"],
				api.AliasMove{Seq: 4, From: "m1", To: "m2", Reason: "p3"}, api.AliasMove{Seq: 5, From: "m2", To: "m2", Reason: "p3"})
			return h
		}, "one move recorded 2 times"},
		{"duplicated run", func(h []Op, f *Final) []Op {
			f.Runs = append(f.Runs, api.Run{ID: "run2", Key: "k1", RecipeID: "rv1", State: "queued"})
			return h
		}, "2 runs exist"},
		{"starts answered two runs", func(h []Op, f *Final) []Op {
			h[9].Run.ID, h[9].Run.Reused = "run2", false
			return h
		}, "answered 2 different runs"},
		{"recipe text made two versions", func(h []Op, f *Final) []Op {
			h[7].Applied.Version.ID = "rv10"
			f.Recipes["r"] = append(f.Recipes["r"], api.RecipeVersion{ID: "rv10", Name: "r"})
			return h
		}, "answered 2 versions"},
		{"lost label", func(h []Op, f *Final) []Op {
			f.Feedback.LatestRecords = []string{"q2"}
			return h
		}, "acknowledged label is 0 times in latest"},
		{"label twice", func(h []Op, f *Final) []Op {
			f.Feedback.LatestRecords = append(f.Feedback.LatestRecords, "q1")
			return h
		}, "acknowledged label is 2 times in latest"},
		{"label changed", func(h []Op, f *Final) []Op {
			f.FeedbackLabels["q2"] = "ham"
			return h
		}, `latest holds label "ham"`},
		{"refused label accumulated", func(h []Op, f *Final) []Op {
			f.Feedback.LatestRecords = append(f.Feedback.LatestRecords, "q3")
			return h
		}, "refused label is in latest"},
		{"phantom label", func(h []Op, f *Final) []Op {
			f.Feedback.LatestRecords = append(f.Feedback.LatestRecords, "q9")
			return h
		}, "latest holds record q9, which no op labelled"},
		{"accumulation lost its version", func(h []Op, f *Final) []Op {
			f.Feedback.Versions = f.Feedback.Versions[1:]
			return h
		}, "answered version fv1, which is not listed"},
		{"accumulation shrank the dataset", func(h []Op, f *Final) []Op {
			f.Feedback.Versions[1].Records = 1
			return h
		}, "an accumulation added nothing or removed some"},
		{"fsck unclean", func(h []Op, f *Final) []Op {
			f.Fsck.Missing = []api.FsckIssue{{Digest: "sha256:00", Problem: "missing", Ref: "dataset d@v2"}}
			return h
		}, "fsck: missing blob sha256:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, f := fixture()
			h = tc.breaks(h, &f)
			r := Check(h, f)
			if tc.want == "" {
				if len(r.Anomalies) != 0 {
					t.Fatalf("consistent history flagged:\n%s", strings.Join(r.Anomalies, "\n"))
				}
				if r.Operations != 19 || r.Acknowledged != 13 || r.Conflicts != 2 || r.Rejected != 1 || r.Indeterminate != 3 {
					t.Fatalf("counts: %s", r)
				}
				return
			}
			for _, a := range r.Anomalies {
				if strings.Contains(a, tc.want) {
					return
				}
			}
			t.Fatalf("want an anomaly containing %q; got:\n%s", tc.want, strings.Join(r.Anomalies, "\n"))
		})
	}
}

// setDataset edits dataset d of f in place.
func setDataset(f *Final, edit func(*DatasetState)) {
	d := f.Datasets["d"]
	edit(&d)
	f.Datasets["d"] = d
}
