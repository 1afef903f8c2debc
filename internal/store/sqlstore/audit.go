package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/tailor-ml/tailor/internal/store"
)

// auditPage is how many entries VerifyAudit reads at a time.
const auditPage = 1000

// appendAudit writes the audit entry of ev (as stored, Seq and Time set)
// inside tx: the next seq, chained to the last entry's hash, Before the
// object's last After. Only appendEvents calls it, so every event has its
// entry in the transaction that commits both.
func (s *Store) appendAudit(ctx context.Context, tx *Tx, ev store.Event) error {
	e := store.AuditEntry{Time: ev.Time.UTC(), Actor: store.ActorFrom(ctx), Project: store.ProjectFrom(ctx),
		Action: ev.Type, EventSeq: ev.Seq, After: store.AuditAfter(ev)}
	if e.Actor == "" {
		e.Actor = store.SystemActor
	}
	e.ObjectKind, e.ObjectID = store.AuditObject(ev)
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&e.Seq, &e.PrevHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit: read the chain's head: %w", err)
	}
	e.Seq++
	err = tx.QueryRowContext(ctx, `SELECT after FROM audit_log WHERE project = ? AND object_kind = ? AND object_id = ? ORDER BY seq DESC LIMIT 1`,
		e.Project, e.ObjectKind, e.ObjectID).Scan(&e.Before)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit: read %s %q's last entry: %w", e.ObjectKind, e.ObjectID, err)
	}
	e.Hash = store.AuditHash(e)
	ts, err := formatTime(fmt.Sprintf("audit entry %d time", e.Seq), e.Time)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (`+AuditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, ts, e.Actor, e.Project, e.Action, e.ObjectKind, e.ObjectID, e.EventSeq, e.Before, e.After, e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("audit entry %d: %w", e.Seq, err)
	}
	return nil
}

// AuditCols are the audit_log columns in the order the store reads and
// writes them.
const AuditCols = `seq, time, actor, project, action, object_kind, object_id, event_seq, before, after, prev_hash, hash`

func scanAudit(sc scanner) (store.AuditEntry, error) { return scanAuditEntry(sc, false) }

// scanAuditEntry reads one row. lenient leaves a time that does not parse
// zero instead of failing, so that verifying reports the edited entry as a
// hash mismatch.
func scanAuditEntry(sc scanner, lenient bool) (store.AuditEntry, error) {
	var e store.AuditEntry
	var ts string
	if err := sc.Scan(&e.Seq, &ts, &e.Actor, &e.Project, &e.Action, &e.ObjectKind, &e.ObjectID, &e.EventSeq,
		&e.Before, &e.After, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	var err error
	e.Time, err = parseTime(fmt.Sprintf("audit entry %d time", e.Seq), ts)
	if err != nil && lenient {
		return e, nil
	}
	return e, err
}

// auditScope is the WHERE clause and argument that keep a query to ctx's
// project, or to none under store.AllProjects.
func auditScope(ctx context.Context) (string, []any) {
	if store.IsAllProjects(ctx) {
		return "1 = 1", nil
	}
	return "project = ?", []any{store.ProjectFrom(ctx)}
}

// AuditEntries returns ctx's project's entries with Seq > after, oldest
// first, at most limit (0: all).
func (s *Store) AuditEntries(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error) {
	where, args := auditScope(ctx)
	rows, err := s.r.QueryContext(ctx, `SELECT `+AuditCols+` FROM audit_log WHERE `+where+` AND seq > ? ORDER BY seq LIMIT ?`,
		append(args, after, limitArg(limit))...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return out, nil
}

// AuditEntriesBefore returns ctx's project's entries with Seq < before
// (before <= 0: from the newest), newest first, at most limit (0: all).
func (s *Store) AuditEntriesBefore(ctx context.Context, before int64, limit int) ([]store.AuditEntry, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	where, args := auditScope(ctx)
	rows, err := s.r.QueryContext(ctx, `SELECT `+AuditCols+` FROM audit_log WHERE `+where+` AND seq < ? ORDER BY seq DESC LIMIT ?`,
		append(args, before, limitArg(limit))...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries before %d: %w", before, err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit entries before %d: %w", before, err)
	}
	return out, nil
}

// AuditCount is the number of ctx's project's entries.
func (s *Store) AuditCount(ctx context.Context) (int64, error) {
	where, args := auditScope(ctx)
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count audit entries: %w", err)
	}
	return n, nil
}

// VerifyAudit walks the chain a page at a time and stops at the first
// broken entry; each entry that chains is checked against its event, read
// in the same query.
func (s *Store) VerifyAudit(ctx context.Context) (store.AuditVerification, error) {
	// Entries before audit_scope's seq chained Before across projects.
	var from int64
	if err := s.r.QueryRowContext(ctx, `SELECT project_from FROM audit_scope`).Scan(&from); err != nil {
		return store.AuditVerification{}, fmt.Errorf("verify audit: read audit_scope: %w", err)
	}
	v := store.NewAuditVerifierFrom(from)
	// From the lowest possible seq, so that a row renumbered to 0 or
	// below is read (and fails as a gap) instead of skipped.
	after := int64(math.MinInt64)
	for {
		n, err := s.verifyPage(ctx, v, after)
		if err != nil {
			return v.Result(), fmt.Errorf("verify audit: %w", err)
		}
		if n < auditPage || !v.Result().OK() {
			return v.Result(), nil
		}
		after = v.Result().HeadSeq
	}
}

// verifyPage feeds the entries after seq after, with their events, to v
// and returns how many it read.
func (s *Store) verifyPage(ctx context.Context, v *store.AuditVerifier, after int64) (int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.seq, a.time, a.actor, a.project, a.action, a.object_kind, a.object_id,
		a.event_seq, a.before, a.after, a.prev_hash, a.hash, e.seq IS NOT NULL, e.type, e.subject, e.data
		FROM audit_log a LEFT JOIN events e ON e.seq = a.event_seq WHERE a.seq > ? ORDER BY a.seq LIMIT ?`, after, auditPage)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var found bool
		var typ, subject, data sql.NullString
		e, err := scanAuditEntry(rowScanner(func(dest ...any) error {
			return rows.Scan(append(dest, &found, &typ, &subject, &data)...)
		}), true)
		if err != nil {
			return n, err
		}
		ev := store.Event{Type: typ.String, Subject: subject.String, Data: rawJSON(data)}
		if !v.Add(e) || !v.CheckEvent(e, ev, found) {
			return n, nil
		}
	}
	return n, rows.Err()
}

// rowScanner adapts a function to scanner.
type rowScanner func(dest ...any) error

func (f rowScanner) Scan(dest ...any) error { return f(dest...) }
