package history

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tailor-ml/tailor/api"
)

// Check compares history h with the final state f. It proves, or lists as
// anomalies where it cannot:
//
//   - datasets: every acknowledged record is in latest exactly once, and the
//     version that acknowledged it is on latest's parent chain; a record of
//     an indeterminate op is there at most once, of a refused op never; no
//     record is in latest that no op sent; each name's versions form one
//     linear chain (one root, each parent the previous version, no parent
//     with two children); an op with an expected parent got exactly that
//     parent; each acknowledged version holds its parent's records plus the
//     op's; every version read back streams as many records as it claims;
//   - recipes: applying one text always answers one version;
//   - runs: starts of one recipe version (one run key) made one run, and
//     every acknowledged start answered it;
//   - aliases: every acknowledged move is in the history once, with the
//     from/to it answered; refused moves are absent, indeterminate ones at
//     most once, nothing else is there; the history chains
//     (move[i].From == move[i-1].To);
//   - feedback: every acknowledged label is in the latest version of the
//     model's feedback dataset exactly once, with the label sent; a refused
//     one never, an indeterminate one at most once; nothing is there that
//     no op labelled; the feedback dataset's versions form one linear,
//     append-only chain that holds every version an accumulation answered;
//   - fsck found nothing bad or missing.
func Check(h []Op, f Final) Result {
	r := Result{ByKind: map[string]int{}, Checked: map[string]int{}}
	for _, op := range h {
		r.Operations++
		r.ByKind[string(op.Kind)+"/"+op.Outcome.String()]++
		switch {
		case op.Outcome == OK:
			r.Acknowledged++
		case op.Outcome == Fail && op.Status == 409:
			r.Conflicts++
		case op.Outcome == Fail:
			r.Rejected++
		default:
			r.Indeterminate++
		}
	}
	c := &checker{r: &r}
	c.datasets(h, f)
	c.recipes(h, f)
	c.runs(h, f)
	c.aliases(h, f)
	c.feedback(h, f)
	for _, is := range f.Fsck.Bad {
		c.flag("fsck: bad blob %s: %s", is.Digest, is.Problem)
	}
	for _, is := range f.Fsck.Missing {
		c.flag("fsck: missing blob %s (referenced by %s): %s", is.Digest, is.Ref, is.Problem)
	}
	r.Checked["fsck_blobs"] = f.Fsck.Blobs
	return r
}

type checker struct{ r *Result }

func (c *checker) flag(format string, args ...any) {
	c.r.Anomalies = append(c.r.Anomalies, fmt.Sprintf(format, args...))
}

func (c *checker) datasets(h []Op, f Final) {
	ops := map[string][]Op{}
	for _, op := range h {
		switch op.Kind {
		case Append, Import, Reimport:
			ops[op.Dataset] = append(ops[op.Dataset], op)
		}
	}
	names := map[string]bool{}
	for n := range f.Datasets {
		names[n] = true
	}
	for n := range ops {
		names[n] = true
	}
	setup := map[string]bool{}
	for _, id := range f.SetupRecords {
		setup[id] = true
	}
	for _, name := range sortedKeys(names) {
		c.dataset(name, ops[name], f.Datasets[name], setup)
	}
}

// dataset checks one name's version chain and records against its ops.
func (c *checker) dataset(name string, ops []Op, st DatasetState, setup map[string]bool) {
	vs := st.Versions
	byID := map[string]api.DatasetVersion{}
	children := map[string][]string{}
	var roots []string
	for i, v := range vs {
		if _, dup := byID[v.ID]; dup {
			c.flag("dataset %s: version %s listed twice", name, short(v.ID))
		}
		byID[v.ID] = v
		if v.Parent == "" {
			roots = append(roots, short(v.ID))
		} else {
			children[v.Parent] = append(children[v.Parent], v.ID)
		}
		if i > 0 && v.Parent != vs[i-1].ID {
			c.flag("dataset %s: version %d (%s) has parent %q, but the version before it is %s: the chain is not linear",
				name, i, short(v.ID), short(v.Parent), short(vs[i-1].ID))
		}
	}
	c.r.Checked["dataset_versions"] += len(vs)
	if len(vs) > 0 && len(roots) != 1 {
		c.flag("dataset %s: %d versions with no parent (%s); want exactly one", name, len(roots), strings.Join(roots, ", "))
	}
	for _, p := range sortedKeys(children) {
		if kids := children[p]; len(kids) > 1 {
			ks := make([]string, len(kids))
			for i, k := range kids {
				ks[i] = short(k)
			}
			c.flag("dataset %s: fork: version %s has %d children (%s)", name, short(p), len(kids), strings.Join(ks, ", "))
		}
	}
	if len(vs) > 0 && st.Latest != vs[len(vs)-1].ID {
		c.flag("dataset %s: latest is %s but the newest listed version is %s", name, short(st.Latest), short(vs[len(vs)-1].ID))
	}
	// The chain from latest back to its root.
	onChain := map[string]bool{}
	for id := st.Latest; id != "" && !onChain[id]; id = byID[id].Parent {
		onChain[id] = true
		if _, ok := byID[id]; !ok {
			c.flag("dataset %s: version %s on latest's chain is not listed", name, short(id))
			break
		}
	}
	// Records in latest.
	seen := map[string]int{}
	for _, id := range st.LatestRecords {
		seen[id]++
	}
	for _, id := range sortedKeys(seen) {
		if seen[id] > 1 {
			c.flag("dataset %s: record %s is in latest %d times", name, id, seen[id])
		}
	}
	if lv, ok := byID[st.Latest]; ok && int64(len(st.LatestRecords)) != lv.Records {
		c.flag("dataset %s: latest %s claims %d records but streamed %d", name, short(st.Latest), lv.Records, len(st.LatestRecords))
	}
	c.r.Checked["latest_records"] += len(st.LatestRecords)
	sent := map[string]bool{}
	for _, op := range ops {
		for _, id := range op.Records {
			sent[id] = true
			n := seen[id]
			switch {
			case op.Outcome == OK && n == 0:
				c.flag("dataset %s: lost acknowledged record %s (%s, version %s)", name, id, op, short(op.Imported.Version.ID))
			case op.Outcome == Fail && n > 0:
				c.flag("dataset %s: record %s of a refused op is in latest (%s)", name, id, op)
			}
			if op.Outcome == OK {
				c.r.Checked["acknowledged_records"]++
			}
		}
		if op.Outcome == OK {
			c.acknowledgedImport(name, op, byID, onChain)
		}
	}
	for _, id := range sortedKeys(seen) {
		if !sent[id] && !setup[id] {
			c.flag("dataset %s: record %s is in latest but no op sent it", name, id)
		}
	}
	for _, id := range sortedKeys(st.ReadBack) {
		n := st.ReadBack[id]
		if v, ok := byID[id]; ok && int64(n) != v.Records {
			c.flag("dataset %s: version %s claims %d records but its records endpoint streamed %d", name, short(id), v.Records, n)
		}
	}
	c.r.Checked["versions_read_back"] += len(st.ReadBack)
	for _, e := range st.ReadErrors {
		c.flag("dataset %s: %s", name, e)
	}
}

// acknowledgedImport checks what one acknowledged import answered against
// the final version list.
func (c *checker) acknowledgedImport(name string, op Op, byID map[string]api.DatasetVersion, onChain map[string]bool) {
	got := op.Imported.Version
	if op.Kind == Reimport {
		if got.ID != op.Read || op.Imported.Created {
			c.flag("dataset %s: re-importing the records of %s answered %s (created %v); want the same version, not created (%s)",
				name, short(op.Read), short(got.ID), op.Imported.Created, op)
		}
		return
	}
	if !op.Imported.Created {
		c.flag("dataset %s: %s answered an existing version %s for new records", name, op, short(got.ID))
	}
	listed, ok := byID[got.ID]
	if !ok {
		c.flag("dataset %s: acknowledged version %s is not listed (%s)", name, short(got.ID), op)
		return
	}
	if !onChain[got.ID] {
		c.flag("dataset %s: acknowledged version %s is not on latest's parent chain (%s)", name, short(got.ID), op)
	}
	if listed.Parent != got.Parent || listed.Records != got.Records {
		c.flag("dataset %s: version %s answered parent %s and %d records, but is listed with parent %s and %d records",
			name, short(got.ID), short(got.Parent), got.Records, short(listed.Parent), listed.Records)
	}
	switch op.ExpectParent {
	case "":
	case NoParent:
		if got.Parent != "" {
			c.flag("dataset %s: import expecting no version got parent %s (%s)", name, short(got.Parent), op)
		}
	default:
		if got.Parent != op.ExpectParent {
			c.flag("dataset %s: import expecting parent %s got parent %s: the precondition was ignored (%s)",
				name, short(op.ExpectParent), short(got.Parent), op)
		}
	}
	var before int64
	if got.Parent != "" {
		p, ok := byID[got.Parent]
		if !ok {
			return // flagged as a chain break
		}
		before = p.Records
	}
	if want := before + int64(len(op.Records)); listed.Records != want {
		c.flag("dataset %s: version %s has %d records; its parent %s has %d and the op added %d, so want %d (%s)",
			name, short(got.ID), listed.Records, short(got.Parent), before, len(op.Records), want, op)
	}
}

func (c *checker) recipes(h []Op, f Final) {
	ops := map[string][]Op{}
	for _, op := range h {
		if op.Kind == ApplyRecipe {
			ops[op.Recipe] = append(ops[op.Recipe], op)
		}
	}
	for _, name := range sortedKeys(ops) {
		ids := map[string]int{}
		created := 0
		acked := false
		for _, op := range ops[name] {
			if op.Outcome != OK {
				continue
			}
			acked = true
			ids[op.Applied.Version.ID]++
			if op.Applied.Created {
				created++
			}
		}
		if len(ids) > 1 {
			c.flag("recipe %s: one text applied answered %d versions %v", name, len(ids), sortedKeys(ids))
		}
		if created > 1 {
			c.flag("recipe %s: one text applied created a version %d times", name, created)
		}
		listed := f.Recipes[name]
		if len(listed) > 1 || (acked && len(listed) != 1) {
			c.flag("recipe %s: %d versions listed; want one", name, len(listed))
		}
		for _, v := range listed {
			if acked && ids[v.ID] == 0 {
				c.flag("recipe %s: listed version %s was never answered", name, short(v.ID))
			}
		}
		c.r.Checked["recipe_names"]++
	}
}

func (c *checker) runs(h []Op, f Final) {
	ops := map[string][]Op{}
	for _, op := range h {
		if op.Kind == StartRun {
			ops[op.Recipe] = append(ops[op.Recipe], op)
		}
	}
	for _, recipe := range sortedKeys(ops) {
		answered := map[string]int{}
		keys := map[string]bool{}
		fresh := 0
		for _, op := range ops[recipe] {
			if op.Outcome != OK {
				continue
			}
			answered[op.Run.ID]++
			keys[op.Run.Key] = true
			if !op.Run.Reused {
				fresh++
			}
		}
		if len(answered) > 1 {
			c.flag("runs of recipe %s: acknowledged starts answered %d different runs %v; want one", short(recipe), len(answered), sortedKeys(answered))
		}
		if len(keys) > 1 {
			c.flag("runs of recipe %s: acknowledged starts answered %d run keys; the inputs were meant to be stable", short(recipe), len(keys))
		}
		if fresh > 1 {
			c.flag("runs of recipe %s: %d acknowledged starts say they created a run (reused=false); want at most one", short(recipe), fresh)
		}
		var made []api.Run
		for _, run := range f.Runs {
			if run.RecipeID == recipe {
				made = append(made, run)
			}
		}
		if len(made) > 1 || (len(answered) > 0 && len(made) == 0) {
			var ids []string
			for _, run := range made {
				ids = append(ids, fmt.Sprintf("%s (%s)", run.ID, run.State))
			}
			c.flag("runs of recipe %s: %d runs exist %v; equal run keys must make exactly one", short(recipe), len(made), ids)
		}
		for _, run := range made {
			if len(answered) > 0 && answered[run.ID] == 0 {
				c.flag("runs of recipe %s: run %s exists but no acknowledged start answered it", short(recipe), run.ID)
			}
			if run.State == "failed" || run.State == "canceled" {
				c.flag("runs of recipe %s: run %s %s: %s", short(recipe), run.ID, run.State, run.Error)
			}
		}
		c.r.Checked["run_keys"]++
	}
}

func (c *checker) aliases(h []Op, f Final) {
	ops := map[string][]Op{}
	for _, op := range h {
		if op.Kind == Promote || op.Kind == Rollback {
			k := op.Model + "@" + op.Alias
			ops[k] = append(ops[k], op)
		}
	}
	setup := map[string]bool{}
	for _, t := range f.SetupTags {
		setup[t] = true
	}
	keys := map[string]bool{}
	for k := range ops {
		keys[k] = true
	}
	for k := range f.Aliases {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		hist := f.Aliases[k]
		byTag := map[string][]api.AliasMove{}
		for i, m := range hist {
			byTag[m.Reason] = append(byTag[m.Reason], m)
			if i == 0 && m.From != "" {
				c.flag("alias %s: first move (seq %d) comes from %q; want nothing", k, m.Seq, m.From)
			}
			if i > 0 {
				if m.Seq <= hist[i-1].Seq {
					c.flag("alias %s: history not in order: seq %d after %d", k, m.Seq, hist[i-1].Seq)
				}
				if m.From != hist[i-1].To {
					c.flag("alias %s: history does not chain: move seq %d comes from %s but move seq %d went to %s",
						k, m.Seq, short(m.From), hist[i-1].Seq, short(hist[i-1].To))
				}
			}
		}
		c.r.Checked["alias_moves"] += len(hist)
		tags := map[string]bool{}
		for _, op := range ops[k] {
			tags[op.Tag] = true
			found := byTag[op.Tag]
			switch op.Outcome {
			case OK:
				if len(found) == 0 {
					c.flag("alias %s: lost acknowledged move seq %d (%s)", k, moveSeq(op.Move), op)
					continue
				}
				if m := op.Move; m != nil && (found[0].Seq != m.Seq || found[0].From != m.From || found[0].To != m.To) {
					c.flag("alias %s: acknowledged move seq %d %s -> %s is recorded as seq %d %s -> %s (%s)",
						k, m.Seq, short(m.From), short(m.To), found[0].Seq, short(found[0].From), short(found[0].To), op)
				}
			case Fail:
				if len(found) > 0 {
					c.flag("alias %s: refused move is in the history as seq %d (%s)", k, found[0].Seq, op)
				}
			}
			if len(found) > 1 {
				c.flag("alias %s: one move recorded %d times (%s)", k, len(found), op)
			}
		}
		for _, t := range sortedKeys(byTag) {
			if !tags[t] && !setup[t] {
				c.flag("alias %s: move seq %d (reason %q) was made by no op", k, byTag[t][0].Seq, t)
			}
		}
	}
}

func moveSeq(m *api.AliasMove) int64 {
	if m == nil {
		return 0
	}
	return m.Seq
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// feedback checks the feedback dataset against the labels posted.
func (c *checker) feedback(h []Op, f Final) {
	st := f.Feedback
	name := f.FeedbackModel + "-feedback"
	byID := map[string]api.DatasetVersion{}
	for i, v := range st.Versions {
		byID[v.ID] = v
		switch {
		case i == 0 && v.Parent != "":
			c.flag("dataset %s: first version %s has parent %s", name, short(v.ID), short(v.Parent))
		case i > 0 && v.Parent != st.Versions[i-1].ID:
			c.flag("dataset %s: version %d (%s) has parent %q, but the version before it is %s: the chain is not linear",
				name, i, short(v.ID), short(v.Parent), short(st.Versions[i-1].ID))
		case i > 0 && v.Records <= st.Versions[i-1].Records:
			c.flag("dataset %s: version %d (%s) holds %d records, its parent %d: an accumulation added nothing or removed some",
				name, i, short(v.ID), v.Records, st.Versions[i-1].Records)
		}
		if n, ok := st.ReadBack[v.ID]; ok && n >= 0 && int64(n) != v.Records {
			c.flag("dataset %s: version %s claims %d records and streams %d", name, short(v.ID), v.Records, n)
		}
	}
	for _, e := range st.ReadErrors {
		c.flag("dataset %s: %s", name, e)
	}
	if len(st.Versions) > 0 && st.Latest != st.Versions[len(st.Versions)-1].ID {
		c.flag("dataset %s: latest is %s but the newest listed version is %s", name, short(st.Latest), short(st.Versions[len(st.Versions)-1].ID))
	}
	c.r.Checked["feedback_versions"] += len(st.Versions)
	seen := map[string]int{}
	for _, id := range st.LatestRecords {
		seen[id]++
	}
	sent := map[string]Op{}
	for _, op := range h {
		switch {
		case op.Kind == Accumulate && op.Outcome == OK && op.Accumulated != nil:
			if _, ok := byID[op.Accumulated.ID]; !ok {
				c.flag("%s: answered version %s, which is not listed", op, short(op.Accumulated.ID))
			}
		case op.Kind == Feedback:
			sent[op.Request] = op
			n := seen[op.Request]
			switch op.Outcome {
			case OK:
				c.r.Checked["feedback_acknowledged"]++
				if n != 1 {
					c.flag("%s: acknowledged label is %d times in latest %s (want once)", op, n, short(st.Latest))
				} else if got := f.FeedbackLabels[op.Request]; got != op.Label {
					c.flag("%s: latest holds label %q", op, got)
				}
			case Fail:
				if n != 0 {
					c.flag("%s: refused label is in latest %d times", op, n)
				}
			default:
				if n > 1 {
					c.flag("%s: indeterminate label is in latest %d times", op, n)
				}
			}
		}
	}
	for _, id := range sortedKeys(seen) {
		if _, ok := sent[id]; !ok {
			c.flag("dataset %s: latest holds record %s, which no op labelled", name, id)
		}
	}
}
