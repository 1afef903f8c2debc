package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The audit log is an append-only, hash-chained record of every state
// change: a store writes one AuditEntry per event it appends, in the same
// transaction as the change and its event (so no change commits without
// its entry, and no entry exists without its change). docs/security.md
// ("Audit log") says what is hashed and what verifying proves.

// SystemActor is the actor of a change whose context names none: work the
// server does on its own that no narrower system actor was set for.
const SystemActor = "system"

// AuditHashVersion is the first field of every entry's hashed
// serialization; a new serialization gets a new version.
const AuditHashVersion = "tailor-audit-v1"

// AuditEntry is one record of the audit log.
type AuditEntry struct {
	Seq        int64     `json:"seq"`  // 1, 2, 3… without gaps, assigned by the store
	Time       time.Time `json:"time"` // the event's time, UTC
	Actor      string    `json:"actor"`
	Project    string    `json:"project"`
	Action     string    `json:"action"`      // the event type, e.g. "model.alias.moved"
	ObjectKind string    `json:"object_kind"` // the event type's first part: "model", "run"…
	ObjectID   string    `json:"object_id"`   // the event's subject
	EventSeq   int64     `json:"event_seq"`   // the event this entry records
	// Before is the After of the previous entry for the same object
	// (Project, ObjectKind, ObjectID); "" when this is its first entry.
	// Two projects' objects of one name are two objects.
	Before string `json:"before"`
	// After is AuditAfter of the event: sha256 hex over its type, subject
	// and data, so the payload itself (which may name a secret) is not kept.
	After    string `json:"after"`
	PrevHash string `json:"prev_hash"` // Hash of entry Seq-1; "" for Seq 1
	Hash     string `json:"hash"`      // AuditHash of every field above
}

// AuditAfter is the after digest of an event: sha256 hex over the
// netstrings (see AuditHash) of its type, subject and data bytes.
func AuditAfter(ev Event) string {
	return digestFields(ev.Type, ev.Subject, string(ev.Data))
}

// AuditObject is the object an event changes: the first dot-separated
// part of its type, and its subject.
func AuditObject(ev Event) (kind, id string) {
	kind, _, _ = strings.Cut(ev.Type, ".")
	return kind, ev.Subject
}

// auditTimeLayout is the fixed-width time in the hashed serialization.
const auditTimeLayout = "2006-01-02T15:04:05.000000000Z"

// AuditHash is the hash of e: sha256 hex over the concatenated netstrings
// ("<byte length>:<bytes>,") of AuditHashVersion, Seq, Time (UTC, layout
// 2006-01-02T15:04:05.000000000Z), Actor, Project, Action, ObjectKind,
// ObjectID, EventSeq, Before, After and PrevHash, in that order (numbers in
// decimal). e.Hash itself is not hashed.
func AuditHash(e AuditEntry) string {
	return digestFields(AuditHashVersion, strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(auditTimeLayout),
		e.Actor, e.Project, e.Action, e.ObjectKind, e.ObjectID, strconv.FormatInt(e.EventSeq, 10),
		e.Before, e.After, e.PrevHash)
}

func digestFields(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		// #nosec G104 -- a hash never fails to write
		fmt.Fprintf(h, "%d:%s,", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AuditCheck names the check a broken entry failed.
type AuditCheck string

const (
	// AuditSeqGap: the entry's Seq is not the previous entry's plus one
	// (1 for the first): an entry was deleted or inserted.
	AuditSeqGap AuditCheck = "seq_gap"
	// AuditPrevHashMismatch: PrevHash is not the previous entry's Hash.
	AuditPrevHashMismatch AuditCheck = "prev_hash_mismatch"
	// AuditHashMismatch: Hash is not AuditHash of the entry's fields: a
	// field was edited.
	AuditHashMismatch AuditCheck = "hash_mismatch"
	// AuditBeforeMismatch: Before is not the After of the object's
	// previous entry.
	AuditBeforeMismatch AuditCheck = "before_mismatch"
	// AuditEventMismatch: After is not AuditAfter of the stored event
	// EventSeq (the event was edited or deleted).
	AuditEventMismatch AuditCheck = "event_mismatch"
)

// AuditBreak is the first entry that fails verification.
type AuditBreak struct {
	Seq   int64      `json:"seq"`
	Check AuditCheck `json:"check"`
	Want  string     `json:"want"`
	Got   string     `json:"got"`
}

func (b AuditBreak) Error() string {
	return fmt.Sprintf("audit entry %d: %s: want %q, stored %q", b.Seq, b.Check, b.Want, b.Got)
}

// AuditVerification is the result of walking the chain.
type AuditVerification struct {
	Entries  int64       `json:"entries"`   // entries checked (up to and including a break)
	HeadSeq  int64       `json:"head_seq"`  // Seq of the last entry checked
	HeadHash string      `json:"head_hash"` // its Hash: export it to detect a rewritten chain
	Broken   *AuditBreak `json:"broken,omitempty"`
}

// OK reports whether no entry is broken.
func (v AuditVerification) OK() bool { return v.Broken == nil }

// AuditVerifier walks the chain one entry at a time, oldest first.
type AuditVerifier struct {
	res   AuditVerification
	after map[[3]string]string // (project, kind, id) → After of its last entry
	// shared: (kind, id) → After of its last entry before projectFrom,
	// when Before chained across projects.
	shared      map[[2]string]string
	projectFrom int64
}

// NewAuditVerifier returns a verifier at the start of a chain whose every
// entry's Before is the same object's last After in the same project.
func NewAuditVerifier() *AuditVerifier { return NewAuditVerifierFrom(1) }

// NewAuditVerifierFrom returns a verifier for a chain whose entries before
// seq projectFrom were written when Before chained across projects (the
// object's last After in any project: schema versions 6 to 10) and whose
// later entries chain within their project.
func NewAuditVerifierFrom(projectFrom int64) *AuditVerifier {
	return &AuditVerifier{after: map[[3]string]string{}, shared: map[[2]string]string{}, projectFrom: projectFrom}
}

// Add checks e against the entries before it. It returns false at the
// first broken entry; the verifier then stays broken.
func (v *AuditVerifier) Add(e AuditEntry) bool {
	if v.res.Broken != nil {
		return false
	}
	v.res.Entries++
	fail := func(c AuditCheck, want, got string) bool {
		v.res.Broken = &AuditBreak{Seq: e.Seq, Check: c, Want: want, Got: got}
		return false
	}
	if want := v.res.HeadSeq + 1; e.Seq != want {
		return fail(AuditSeqGap, strconv.FormatInt(want, 10), strconv.FormatInt(e.Seq, 10))
	}
	v.res.HeadSeq = e.Seq
	if e.PrevHash != v.res.HeadHash {
		return fail(AuditPrevHashMismatch, v.res.HeadHash, e.PrevHash)
	}
	if h := AuditHash(e); e.Hash != h {
		return fail(AuditHashMismatch, h, e.Hash)
	}
	v.res.HeadHash = e.Hash
	key, old := [3]string{e.Project, e.ObjectKind, e.ObjectID}, [2]string{e.ObjectKind, e.ObjectID}
	want := v.after[key]
	if e.Seq < v.projectFrom {
		want = v.shared[old]
		v.shared[old] = e.After
	}
	if e.Before != want {
		return fail(AuditBeforeMismatch, want, e.Before)
	}
	v.after[key] = e.After
	return true
}

// CheckEvent checks an entry that Add accepted against the event it
// records, as stored now (found false: there is none). It returns false,
// and the verifier stays broken, when they differ.
func (v *AuditVerifier) CheckEvent(e AuditEntry, ev Event, found bool) bool {
	if v.res.Broken != nil {
		return false
	}
	got := "(no event)"
	if found {
		got = AuditAfter(ev)
	}
	if got != e.After {
		v.res.Broken = &AuditBreak{Seq: e.Seq, Check: AuditEventMismatch, Want: e.After, Got: got}
		return false
	}
	return true
}

// Result is what was verified so far.
func (v *AuditVerifier) Result() AuditVerification { return v.res }

// Auditor reads the audit log. The log has no update or delete paths:
// entries are written only by the mutating methods, with their events.
type Auditor interface {
	// AuditEntries returns ctx's project's entries (every project's under
	// AllProjects) with Seq > after, oldest first, at most limit (0: all).
	AuditEntries(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
	// AuditEntriesBefore returns ctx's project's entries (every project's
	// under AllProjects) with Seq < before (before <= 0: from the newest),
	// newest first, at most limit (0: all).
	AuditEntriesBefore(ctx context.Context, before int64, limit int) ([]AuditEntry, error)
	// AuditCount is the number of ctx's project's entries (every
	// project's under AllProjects). Seqs are one sequence for the whole
	// server, so a project's entries have gaps and its count is not its
	// newest seq.
	AuditCount(ctx context.Context) (int64, error)
	// VerifyAudit walks the whole chain and reports the first broken
	// entry, checking each entry against the stored event it records too.
	VerifyAudit(ctx context.Context) (AuditVerification, error)
}
