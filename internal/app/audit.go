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
// seq after, oldest first (limit 0: 100; at most 1000), with the number
// of the project's entries. The log is one chain for the whole server, so
// a project's seqs have gaps; Next is the last seq returned (after when
// none), the following page's after.
func (a *App) AuditEntries(ctx context.Context, after int64, limit int) (api.AuditPage, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return api.AuditPage{}, err
	}
	es, err := a.store.AuditEntries(ctx, after, limit)
	if err != nil {
		return api.AuditPage{}, err
	}
	page, err := a.auditPage(ctx, es)
	page.Next = after
	if n := len(es); n > 0 {
		page.Next = es[n-1].Seq
	}
	return page, err
}

// AuditNewest returns up to limit audit entries of ctx's project before
// seq before (0: from the newest), newest first, with the number of the
// project's entries. Next is the following, older page's before: the
// oldest seq returned, or 0 when no older entry is left.
func (a *App) AuditNewest(ctx context.Context, before int64, limit int) (api.AuditPage, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return api.AuditPage{}, err
	}
	// One more than asked tells whether an older page exists.
	es, err := a.store.AuditEntriesBefore(ctx, before, limit+1)
	if err != nil {
		return api.AuditPage{}, err
	}
	more := len(es) > limit
	if more {
		es = es[:limit]
	}
	page, err := a.auditPage(ctx, es)
	if more {
		page.Next = es[len(es)-1].Seq
	}
	return page, err
}

// auditLimit is limit checked, 0 taking the default page.
func auditLimit(limit int) (int, error) {
	switch {
	case limit < 0 || limit > auditPageMax:
		return 0, errs.Invalid("limit=%d: want 1 to %d", limit, auditPageMax)
	case limit == 0:
		return 100, nil
	}
	return limit, nil
}

// auditPage is es as the API's page, with the project's total.
func (a *App) auditPage(ctx context.Context, es []store.AuditEntry) (api.AuditPage, error) {
	page := api.AuditPage{Entries: make([]api.AuditEntry, 0, len(es))}
	for _, e := range es {
		page.Entries = append(page.Entries, apiAuditEntry(e))
	}
	var err error
	page.Total, err = a.store.AuditCount(ctx)
	return page, err
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
	var after int64
	for {
		es, err := a.store.AuditEntries(ctx, after, auditPageMax)
		if err != nil {
			return fmt.Errorf("export audit after entry %d: %w", after, err)
		}
		for _, e := range es {
			after = e.Seq
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
