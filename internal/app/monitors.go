package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/monitor"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/specyaml"
	"github.com/tailor-ml/tailor/internal/store"
)

// specMonitor is the kind of monitor specs in the store.
const specMonitor = "monitor"

// monitorPoll is how often the monitors read new predictions.
const monitorPoll = 250 * time.Millisecond

// monitorBatch bounds the predictions one monitor step reads.
const monitorBatch = 2000

// profileRetry is how long a failed profile run waits before another.
const profileRetry = 10 * time.Minute

// ApplyMonitor parses, validates and stores a monitor spec; the same text
// again is the same version.
func (a *App) ApplyMonitor(ctx context.Context, fileName string, src []byte) (api.MonitorApply, error) {
	if fileName == "" {
		fileName = "monitor.yaml"
	}
	s, err := monitor.ParseSpec(fileName, src)
	if err != nil {
		return api.MonitorApply{}, err
	}
	if _, err := a.store.ModelVersions(ctx, s.Model); err != nil {
		return api.MonitorApply{}, err
	}
	norm, err := s.Normalize()
	if err != nil {
		return api.MonitorApply{}, err
	}
	v, created, err := a.putSpec(ctx, specMonitor, s.Name, norm, eventMonitorCreated, map[string]any{"model": s.Model, "alias": s.Alias})
	if created {
		a.monitors.wake()
	}
	return api.MonitorApply{Version: v, Created: created}, err
}

// putSpec stores a spec version of kind from its normalized form (its id
// is the form's sha256), with eventType carrying name, id and data, or
// returns the version already stored with that id (created false).
func (a *App) putSpec(ctx context.Context, kind, name string, norm []byte, eventType string, data map[string]any) (api.SpecVersion, bool, error) {
	id := specyaml.ID(norm)
	if v, err := a.store.Spec(ctx, kind, name, id); err == nil {
		return toAPISpec(v), false, nil
	}
	data["name"], data["id"] = name, id
	ev := a.event(eventType, id, data)
	v, evs, err := a.store.PutSpec(ctx, store.SpecVersion{Kind: kind, ID: id, Name: name, Normalized: norm, CreatedAt: a.opts.Now().UTC()},
		[]store.Event{ev})
	if errors.Is(err, errs.ErrConflict) { // stored concurrently
		if v, err := a.store.Spec(ctx, kind, name, id); err == nil {
			return toAPISpec(v), false, nil
		}
	}
	if err != nil {
		return api.SpecVersion{}, false, err
	}
	a.publish(evs)
	return toAPISpec(v), true, nil
}

func toAPISpec(v store.SpecVersion) api.SpecVersion {
	return api.SpecVersion{Kind: v.Kind, ID: v.ID, Name: v.Name, Version: v.Version, Normalized: string(v.Normalized), CreatedAt: v.CreatedAt}
}

// storedSpec is the newest stored version of one spec, parsed, and when
// its name's first version was stored.
type storedSpec[S any] struct {
	version store.SpecVersion
	spec    S
	since   time.Time
}

// activeSpec is the newest version of one monitor spec.
type activeSpec = storedSpec[*monitor.Spec]

// newestSpecs returns the newest version of every spec of kind, one per
// name in the order the names first appeared, parsed again by parse.
func newestSpecs[S any](ctx context.Context, st store.Store, kind string, parse func(file string, src []byte) (S, error)) ([]storedSpec[S], error) {
	all, err := st.Specs(ctx, kind, "")
	if err != nil {
		return nil, err
	}
	latest := map[string]int{}
	var out []storedSpec[S]
	for _, v := range all { // oldest first: a later version replaces
		s, err := parse(v.Name, specYAML(v.Normalized))
		if err != nil {
			return nil, fmt.Errorf("stored %s %s v%d no longer parses: %w", kind, v.Name, v.Version, err)
		}
		if i, ok := latest[v.Name]; ok {
			out[i].version, out[i].spec = v, s
			continue
		}
		latest[v.Name] = len(out)
		out = append(out, storedSpec[S]{version: v, spec: s, since: v.CreatedAt})
	}
	return out, nil
}

// monitorSpecs returns the newest version of every monitor, by name.
func (a *App) monitorSpecs(ctx context.Context) ([]activeSpec, error) {
	return newestSpecs(ctx, a.store, specMonitor, monitor.ParseSpec)
}

// specYAML: a normalized spec is JSON, which is YAML.
func specYAML(norm []byte) []byte { return norm }

// Monitors lists every monitor's status.
func (a *App) Monitors(ctx context.Context) ([]api.MonitorStatus, error) {
	specs, err := a.monitorSpecs(ctx)
	if err != nil {
		return nil, err
	}
	out := []api.MonitorStatus{}
	for _, s := range specs {
		st, err := a.monitorStatus(ctx, s)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Monitor returns one monitor's status.
func (a *App) Monitor(ctx context.Context, name string) (api.MonitorStatus, error) {
	v, err := a.store.Spec(ctx, specMonitor, name, "latest")
	if err != nil {
		return api.MonitorStatus{}, err
	}
	s, err := monitor.ParseSpec(v.Name, specYAML(v.Normalized))
	if err != nil {
		return api.MonitorStatus{}, err
	}
	return a.monitorStatus(ctx, activeSpec{version: v, spec: s})
}

func (a *App) monitorStatus(ctx context.Context, s activeSpec) (api.MonitorStatus, error) {
	out := api.MonitorStatus{Spec: toAPISpec(s.version), Model: s.spec.Model, Alias: s.spec.Alias}
	st, err := a.store.MonitorState(ctx, s.version.Name)
	switch {
	case err == nil:
		out.VersionID, out.Profile, out.Cursor = st.VersionID, st.Profile, st.Cursor
		if w, err := decodeWatch(st.State); err == nil && w.Window != nil && w.Window.Open != nil {
			out.OpenCount = w.Window.Open.Count
		}
	case !errors.Is(err, errs.ErrNotFound):
		return out, err
	}
	ws, err := a.MonitorWindows(ctx, s.version.Name, -1)
	if err != nil {
		return out, err
	}
	out.Windows = len(ws)
	for _, w := range ws {
		if w.Drifted {
			out.Drifted++
		}
	}
	if len(ws) > 0 {
		out.Last = &ws[len(ws)-1]
	}
	fs, err := a.store.FeedbackStats(ctx, s.spec.Model)
	if err != nil {
		return out, err
	}
	out.Feedback = api.FeedbackStats{Total: fs.Total, Pending: fs.Pending, NoText: fs.NoText}
	return out, nil
}

// MonitorProfile returns the reference profile (monitor.Profile's JSON) a
// monitor compares windows with.
func (a *App) MonitorProfile(ctx context.Context, name string) (json.RawMessage, error) {
	if _, err := a.store.Spec(ctx, specMonitor, name, "latest"); err != nil {
		return nil, err
	}
	st, err := a.store.MonitorState(ctx, name)
	if errors.Is(err, errs.ErrNotFound) || err == nil && st.Profile == "" {
		return nil, errs.NotFound("monitor %s has no reference profile yet: its profile run builds it (see `tailor monitor show %s`)", name, name)
	}
	if err != nil {
		return nil, err
	}
	rc, err := a.blobs.Open(ctx, st.Profile)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(rc).Decode(&raw); err != nil {
		return nil, fmt.Errorf("profile %s: %w", st.Profile, err)
	}
	return raw, nil
}

// MonitorWindows lists a monitor's evaluated windows after index after,
// with the realised accuracy of the feedback received so far.
func (a *App) MonitorWindows(ctx context.Context, name string, after int64) ([]api.MonitorWindow, error) {
	ws, err := a.store.MonitorWindows(ctx, name, after, 0)
	if err != nil {
		return nil, err
	}
	out := make([]api.MonitorWindow, len(ws))
	for i, w := range ws {
		out[i] = api.MonitorWindow{Index: w.Index, VersionID: w.VersionID, FirstSeq: w.FirstSeq, LastSeq: w.LastSeq, Count: w.Count,
			Drifted: w.Drifted, Time: w.Time, Result: w.Result}
		if err := a.realise(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// realise joins a window's predictions with their feedback.
func (a *App) realise(ctx context.Context, w *api.MonitorWindow) error {
	ps, err := a.store.Predictions(ctx, store.PredictionFilter{After: w.FirstSeq - 1, Limit: int(w.LastSeq - w.FirstSeq + 1)})
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(ps))
	pred := map[string]string{}
	for _, p := range ps {
		// Seqs run over every project: the limit may reach past the
		// window's last prediction in this one.
		if p.VersionID == w.VersionID && p.Seq <= w.LastSeq {
			ids = append(ids, p.RequestID)
			pred[p.RequestID] = p.Label
		}
	}
	fs, err := a.store.Feedbacks(ctx, ids)
	if err != nil {
		return err
	}
	right := 0
	for _, f := range fs {
		if f.Label == pred[f.RequestID] {
			right++
		}
	}
	if w.Labelled = len(fs); len(fs) > 0 {
		acc := float64(right) / float64(len(fs))
		w.RealisedAccuracy = &acc
	}
	return nil
}

// watch is what a monitor keeps in its stored state: the open window and
// the first prediction in it.
type watch struct {
	Window   *monitor.State `json:"window"`
	FirstSeq int64          `json:"first_seq"`
}

func decodeWatch(raw json.RawMessage) (*watch, error) {
	var w struct {
		Window   json.RawMessage `json:"window"`
		FirstSeq int64           `json:"first_seq"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, err
	}
	st, err := monitor.DecodeState(w.Window)
	if err != nil {
		return nil, err
	}
	return &watch{Window: st, FirstSeq: w.FirstSeq}, nil
}

// monitors runs the monitors: it follows predictions into windows,
// evaluates closed windows and records drift, in the store, exactly once.
type monitors struct {
	a        *App
	wakeCh   chan struct{}
	mu       sync.Mutex
	profiles map[string]*monitor.Profile // by blob digest
}

func newMonitors(a *App) *monitors {
	return &monitors{a: a, wakeCh: make(chan struct{}, 1), profiles: map[string]*monitor.Profile{}}
}

func (m *monitors) wake() {
	select {
	case m.wakeCh <- struct{}{}:
	default:
	}
}

// run steps every monitor of every project, in its project, until ctx
// ends.
func (m *monitors) run(ctx context.Context) {
	t := time.NewTicker(monitorPoll)
	defer t.Stop()
	for {
		if err := m.stepAll(ctx); err != nil && ctx.Err() == nil {
			m.a.logger.Error("monitors", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.wakeCh:
		}
	}
}

func (m *monitors) stepAll(ctx context.Context) error {
	return store.InProjects(ctx, m.a.store, func(ctx context.Context, _ string) error { return m.stepProject(ctx) })
}

// stepProject steps the monitors of ctx's project.
func (m *monitors) stepProject(ctx context.Context) error {
	specs, err := m.a.monitorSpecs(ctx)
	if err != nil {
		return err
	}
	for _, s := range specs {
		for {
			more, err := m.step(ctx, s)
			if err != nil {
				m.a.logger.Warn("monitor step", "project", store.ProjectFrom(ctx), "monitor", s.version.Name, "err", err)
				break
			}
			if !more {
				break
			}
		}
	}
	return nil
}

// step advances one monitor by at most monitorBatch predictions and says
// whether more are waiting.
func (m *monitors) step(ctx context.Context, s activeSpec) (bool, error) {
	a := m.a
	name := s.version.Name
	st, err := a.store.MonitorState(ctx, name)
	ifCursor := st.Cursor
	if errors.Is(err, errs.ErrNotFound) {
		st, ifCursor = store.MonitorState{Name: name}, -1
	} else if err != nil {
		return false, err
	}
	mv, err := a.registry.Version(ctx, s.spec.Model, s.spec.Alias)
	if errors.Is(err, errs.ErrNotFound) {
		return false, nil // nothing served under the alias yet
	}
	if err != nil {
		return false, err
	}
	if st.VersionID != mv.ID || st.SpecID != s.version.ID || st.Profile == "" {
		return false, m.rebase(ctx, s, st, ifCursor, mv.ID)
	}
	p, err := m.profile(ctx, st.Profile)
	if err != nil {
		return false, err
	}
	a.recorder.watch(store.ProjectFrom(ctx), mv.Name, st.VersionID, p)
	w, err := decodeWatch(st.State)
	if err != nil {
		return false, fmt.Errorf("monitor %s state: %w", name, err)
	}
	ps, err := a.store.Predictions(ctx, store.PredictionFilter{Model: s.spec.Model, After: st.Cursor, Limit: monitorBatch})
	if err != nil {
		return false, err
	}
	if len(ps) == 0 {
		return false, nil
	}
	opts := s.spec.Options()
	var windows []store.MonitorWindow
	var events []store.Event
	closeWindows := func(closed []*monitor.Window, last int64) error {
		for _, cw := range closed {
			res, err := monitor.Evaluate(p, cw, opts)
			if err != nil {
				return err
			}
			raw, err := json.Marshal(res)
			if err != nil {
				return err
			}
			windows = append(windows, store.MonitorWindow{VersionID: st.VersionID, FirstSeq: w.FirstSeq, LastSeq: last, Count: cw.Count,
				Drifted: res.Drifted, Result: raw, Time: a.opts.Now().UTC()})
			if res.Drifted {
				events = append(events, a.event("monitor.drift.detected", name, driftEvidence(s.spec, mv.Name, mv.Version, st.VersionID, w.FirstSeq, last, res)))
			}
			w.FirstSeq = 0
		}
		return nil
	}
	for _, pr := range ps {
		st.Cursor = pr.Seq
		if pr.VersionID != st.VersionID || len(pr.Features) == 0 {
			continue // another version (canary, the previous champion), or answered before this monitor had its profile
		}
		var f monitor.Features
		if err := json.Unmarshal(pr.Features, &f); err != nil {
			return false, fmt.Errorf("prediction %s features: %w", pr.RequestID, err)
		}
		if w.FirstSeq == 0 {
			w.FirstSeq = pr.Seq
		}
		if err := closeWindows(w.Window.Add(f, pr.Time), pr.Seq); err != nil {
			return false, err
		}
	}
	if err := closeWindows(w.Window.Tick(a.opts.Now()), st.Cursor); err != nil {
		return false, err
	}
	if st.State, err = json.Marshal(w); err != nil {
		return false, err
	}
	st.UpdatedAt = a.opts.Now().UTC()
	evs, err := a.store.SaveMonitorState(ctx, st, ifCursor, windows, events)
	if err != nil {
		return false, err
	}
	a.publish(evs)
	return len(ps) == monitorBatch, nil
}

// driftEvidence is the data of monitor.drift.detected: the window, the
// drifted detectors with their statistics, p-values and thresholds, the
// top drifted features, and a severity in [0, 1] (the share of detectors
// that drifted).
func driftEvidence(spec *monitor.Spec, model string, version int, versionID string, first, last int64, res *monitor.Result) map[string]any {
	var drifted []monitor.DetectorResult
	ran := 0
	for _, d := range res.Detectors {
		if d.Skipped == "" {
			ran++
		}
		if d.Drifted {
			drifted = append(drifted, d)
		}
	}
	severity := 0.0
	if ran > 0 {
		severity = float64(len(drifted)) / float64(ran)
	}
	return map[string]any{"monitor": spec.Name, "model": model, "alias": spec.Alias, "version": version, "version_id": versionID,
		"window": res.Window, "first_seq": first, "last_seq": last, "count": res.Count, "severity": severity,
		"correction": res.Correction, "level": res.Level, "detectors": drifted, "performance": res.Performance}
}

// rebase points the monitor at version vid: with the profile of vid ready
// it starts a fresh window (keeping the cursor); otherwise it makes sure a
// profile run is under way.
func (m *monitors) rebase(ctx context.Context, s activeSpec, st store.MonitorState, ifCursor int64, vid string) error {
	a := m.a
	mv, err := a.registry.Version(ctx, s.spec.Model, vid)
	if err != nil {
		return err
	}
	r, err := a.profileRun(ctx, mv.Name, mv.Version)
	if err != nil || r.State != string(store.RunSucceeded) {
		return err // queued or running: the next step looks again
	}
	p, err := m.profile(ctx, r.Result)
	if err != nil {
		return err
	}
	ws, err := monitor.NewState(s.spec.WindowSpec(p))
	if err != nil {
		return err
	}
	raw, err := json.Marshal(watch{Window: ws})
	if err != nil {
		return err
	}
	next := store.MonitorState{Name: st.Name, SpecID: s.version.ID, VersionID: vid, Profile: r.Result, Cursor: max(st.Cursor, 0),
		State: raw, UpdatedAt: a.opts.Now().UTC()}
	ev := a.event("monitor.reference.changed", st.Name, map[string]any{"monitor": st.Name, "model": mv.Name, "version": mv.Version,
		"version_id": vid, "profile": r.Result, "profile_run": r.ID})
	evs, err := a.store.SaveMonitorState(ctx, next, ifCursor, nil, []store.Event{ev})
	if err != nil {
		return err
	}
	a.publish(evs)
	m.a.recorder.watch(store.ProjectFrom(ctx), mv.Name, vid, p)
	return nil
}

// profile loads (and caches) a reference profile blob.
func (m *monitors) profile(ctx context.Context, digest string) (*monitor.Profile, error) {
	m.mu.Lock()
	p := m.profiles[digest]
	m.mu.Unlock()
	if p != nil {
		return p, nil
	}
	rc, err := m.a.blobs.Open(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(rc).Decode(&raw); err != nil {
		return nil, fmt.Errorf("profile %s: %w", digest, err)
	}
	if p, err = monitor.DecodeProfile(raw); err != nil {
		return nil, fmt.Errorf("profile %s: %w", digest, err)
	}
	m.mu.Lock()
	m.profiles[digest] = p
	m.mu.Unlock()
	return p, nil
}

// profileRun returns the profile run of model version name@vN, queuing it
// when none is queued, running or succeeded.
func (a *App) profileRun(ctx context.Context, name string, version int) (api.Run, error) {
	mv, err := a.registry.Version(ctx, name, fmt.Sprint(version))
	if err != nil {
		return api.Run{}, err
	}
	src, err := a.trainedBy(ctx, mv)
	if err != nil {
		return api.Run{}, fmt.Errorf("profile %s v%d: %w", name, version, err)
	}
	in := run.Inputs{Kind: run.KindProfile, Recipe: src.inputs.Recipe, Dataset: src.inputs.Dataset, Base: src.baseRef(),
		Model: src.modelRef(""), Engine: a.opts.EngineVersion}
	inputs, _ := json.Marshal(in)
	sr := store.Run{ID: newRunID(), Key: run.Key(in), RecipeID: src.recipeVersion.ID, DatasetID: in.Dataset.ID, BaseID: in.Base.ID,
		EngineVersion: a.opts.EngineVersion, Inputs: inputs}
	// A profile run that failed is not retried on every poll: only after
	// profileRetry, so a broken input costs one failed run per interval.
	failed, err := a.store.Runs(ctx, store.RunFilter{Key: sr.Key, States: []store.RunState{store.RunFailed}})
	if err != nil {
		return api.Run{}, err
	}
	if n := len(failed); n > 0 && a.opts.Now().Sub(failed[n-1].FinishedAt) < profileRetry {
		return toAPIRun(failed[n-1]), nil
	}
	return a.submit(ctx, sr, false)
}
