package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// gcExamples is how many removed digests a report lists.
const gcExamples = 20

// GC removes what nothing refers to. First it releases the last checkpoint
// of every run of ctx's project that finished more than o.KeepCheckpoints
// ago (the run keeps
// its result; only resuming needed the checkpoint). Then it deletes every
// blob outside references — except blobs written or found already stored
// within o.Grace, since a worker may be about to report one — and the
// staging folders of imports that died before committing. References are
// counted across every project, since blobs are shared. Dataset and base
// imports, which write blobs and then the metadata that refers to them,
// wait while it runs. Each released checkpoint is a run.checkpoint.released
// event, and the removals one blobs.collected event, so both are audited.
// With o.DryRun it reports what it would do and changes nothing.
func (a *App) GC(ctx context.Context, o api.GCOptions) (api.GCReport, error) {
	if o.Grace < 0 || o.KeepCheckpoints < 0 {
		return api.GCReport{}, errs.Invalid("gc: grace %s and keep_checkpoints %s must not be negative", o.Grace, o.KeepCheckpoints)
	}
	ages, ok := a.blobs.(blob.Toucher)
	if !ok {
		return api.GCReport{}, errs.Unavailable("gc: the artifact store %s cannot tell when a blob was written, so gc cannot spare new ones; nothing was removed", a.opts.Blob)
	}
	a.gcMu.Lock()
	defer a.gcMu.Unlock()
	rep := api.GCReport{DryRun: o.DryRun}
	// Runs finish on the app's clock; blobs age on the file system's.
	now, wall := a.opts.Now(), time.Now()
	released, err := a.releaseCheckpoints(ctx, now.Add(-o.KeepCheckpoints), o.DryRun)
	if err != nil {
		return rep, err
	}
	rep.Checkpoints = len(released)
	// Blobs are one content-addressed store under every project: a blob
	// is garbage only when no project refers to it.
	var refs []reference
	err = store.InProjects(ctx, a.store, func(ctx context.Context, _ string) error {
		rs, err := a.references(ctx)
		refs = append(refs, rs...)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	keep := map[string]bool{}
	for _, r := range refs {
		if !released[r.from] { // a dry run's runs still name theirs
			keep[r.digest] = true
		}
	}
	rep.Referenced = len(keep)
	type candidate struct {
		d    blob.Digest
		size int64
	}
	var garbage []candidate
	err = a.blobs.List(ctx, func(d blob.Digest, size int64) error {
		rep.Blobs++
		rep.Bytes += size
		if !keep[d] {
			garbage = append(garbage, candidate{d, size})
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("gc: list blobs: %w", err)
	}
	for _, g := range garbage {
		// The time is read just before the delete: a Put of the same bytes
		// meanwhile touched it.
		mt, err := ages.ModTime(ctx, g.d)
		if errs.Kind(err) == "not_found" {
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("gc: %w", err)
		}
		if wall.Sub(mt) < o.Grace {
			rep.Young++
			continue
		}
		if !o.DryRun {
			if err := a.blobs.Delete(ctx, g.d); err != nil {
				return rep, fmt.Errorf("gc: %w", err)
			}
		}
		rep.Removed++
		rep.RemovedBytes += g.size
		if len(rep.Examples) < gcExamples {
			rep.Examples = append(rep.Examples, g.d)
		}
	}
	// An import streams into its staging folder before it takes gcMu, so
	// folders are left alone for an hour at least, whatever the grace.
	stale, err := a.staleStages(wall.Add(-max(o.Grace, time.Hour)), o.DryRun)
	if err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	rep.Stages = stale
	if !o.DryRun && (rep.Removed > 0 || rep.Stages > 0) {
		// Blobs live outside the metadata store, so this event (and its
		// audit entry) follows the deletes instead of sharing their
		// transaction.
		evs, err := a.store.AppendEvents(ctx, []store.Event{a.event("blobs.collected", "gc", map[string]any{
			"removed": rep.Removed, "removed_bytes": rep.RemovedBytes, "stages": rep.Stages, "examples": rep.Examples})})
		if err != nil {
			return rep, fmt.Errorf("gc: record what was removed: %w", err)
		}
		a.publish(evs)
	}
	a.logger.Info("gc", "dry_run", o.DryRun, "blobs", rep.Blobs, "removed", rep.Removed, "removed_bytes", rep.RemovedBytes,
		"young", rep.Young, "checkpoints", rep.Checkpoints, "stages", rep.Stages)
	return rep, nil
}

// releaseCheckpoints clears the checkpoint of every run that finished
// before cutoff, and returns the references it released ("run ID
// checkpoint", as references names them); a dry run only lists them.
func (a *App) releaseCheckpoints(ctx context.Context, cutoff time.Time, dry bool) (map[string]bool, error) {
	runs, err := a.store.Runs(ctx, store.RunFilter{States: []store.RunState{store.RunSucceeded, store.RunFailed, store.RunCanceled}})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range runs {
		if r.Checkpoint == "" || r.FinishedAt.IsZero() || !r.FinishedAt.Before(cutoff) {
			continue
		}
		if !dry {
			empty, state := "", r.State
			ev := a.event("run.checkpoint.released", r.ID, map[string]any{"run": r.ID, "checkpoint": r.Checkpoint})
			_, evs, err := a.store.UpdateRun(ctx, r.ID, store.RunUpdate{IfState: &state, Checkpoint: &empty}, []store.Event{ev})
			if err != nil {
				return nil, fmt.Errorf("gc: release the checkpoint of run %s: %w", r.ID, err)
			}
			a.publish(evs)
		}
		out[checkpointRef(r.ID)] = true
	}
	return out, nil
}

// checkpointRef is how references names a run's checkpoint.
func checkpointRef(runID string) string { return "run " + runID + " checkpoint" }

// staleStages removes the staging folders of imports last written before
// cutoff (imports that died before committing) and counts them.
func (a *App) staleStages(cutoff time.Time, dry bool) (int, error) {
	dir := filepath.Join(a.opts.DataDir, "staging")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !e.IsDir() || !fi.ModTime().Before(cutoff) {
			continue
		}
		if !dry {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return n, err
			}
		}
		n++
	}
	return n, nil
}
