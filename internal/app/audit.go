package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// The system actors: who the audit log names for what the server does on
// its own (store.SystemActor covers anything else without an actor).
// triggerActor (triggerops.go) is the trigger loop's.
const (
	// serverActor: start-up reconciliation and following registry events.
	serverActor = "tailor-server"
	// schedulerActor: run state changes the scheduler makes (a worker
	// starting, finishing, failing, being retried).
	schedulerActor = "tailor-scheduler"
	// monitorActor: monitors closing windows and detecting drift.
	monitorActor = "tailor-monitor"
)

// auditPageMax bounds one page of AuditEntries; the export streams the
// whole log in pages of this size.
const auditPageMax = 1000

// AuditEntries returns up to limit audit entries of ctx's project after
// seq after (limit 0: 100; at most 1000). The log is one chain for the
// whole server; a project's admins read their project's entries, and
// Next is the last seq read, so paging goes on past other projects'.
func (a *App) AuditEntries(ctx context.Context, after int64, limit int) (api.AuditPage, error) {
	switch {
	case limit < 0 || limit > auditPageMax:
		return api.AuditPage{}, errs.Invalid("limit=%d: want 1 to %d", limit, auditPageMax)
	case limit == 0:
		limit = 100
	}
	project := store.ProjectFrom(ctx)
	page := api.AuditPage{Entries: []api.AuditEntry{}, Next: after}
	for len(page.Entries) < limit {
		es, err := a.store.AuditEntries(ctx, page.Next, auditPageMax)
		if err != nil {
			return api.AuditPage{}, err
		}
		for _, e := range es {
			if e.Project == project {
				page.Entries = append(page.Entries, apiAuditEntry(e))
			}
			page.Next = e.Seq
			if len(page.Entries) == limit {
				return page, nil
			}
		}
		if len(es) < auditPageMax {
			break
		}
	}
	return page, nil
}

// VerifyAudit walks the chain; a broken one is a result, not an error.
func (a *App) VerifyAudit(ctx context.Context) (api.AuditVerification, error) {
	v, err := a.store.VerifyAudit(ctx)
	if err != nil {
		return api.AuditVerification{}, err
	}
	out := api.AuditVerification{OK: v.OK(), Entries: v.Entries, HeadSeq: v.HeadSeq, HeadHash: v.HeadHash}
	if b := v.Broken; b != nil {
		out.Broken = &api.AuditBreak{Seq: b.Seq, Check: string(b.Check), Want: b.Want, Got: b.Got}
	}
	return out, nil
}

// ExportAudit writes every entry of ctx's project as one JSON line,
// oldest first, reading the store a page at a time.
func (a *App) ExportAudit(ctx context.Context, w io.Writer) error {
	enc := json.NewEncoder(w)
	project := store.ProjectFrom(ctx)
	var after int64
	for {
		es, err := a.store.AuditEntries(ctx, after, auditPageMax)
		if err != nil {
			return fmt.Errorf("export audit after entry %d: %w", after, err)
		}
		for _, e := range es {
			after = e.Seq
			if e.Project != project {
				continue
			}
			if err := enc.Encode(apiAuditEntry(e)); err != nil {
				return err
			}
		}
		if len(es) < auditPageMax {
			return nil
		}
	}
}

func apiAuditEntry(e store.AuditEntry) api.AuditEntry {
	return api.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Project: e.Project, Action: e.Action,
		ObjectKind: e.ObjectKind, ObjectID: e.ObjectID, EventSeq: e.EventSeq, Before: e.Before, After: e.After,
		PrevHash: e.PrevHash, Hash: e.Hash}
}
