// Package store defines Tailor's metadata store: the versioned nouns
// (dataset, base model, recipe and model versions), runs and their logs,
// eval reports attached to model versions, aliases with their move history,
// promotion approvals, monitoring, trigger firings, the event outbox and
// the hash-chained audit log (audit.go).
//
// Implementations live in sub-packages (sqlite/ and postgres/, both thin
// over the shared SQL of sqlstore/; storeaddr/ opens the one an address
// names) and must pass the conformance suite in storetest/. Every mutating method takes the
// events that describe the change, appends them in the same transaction, and
// returns them with their sequence numbers filled in, so the caller publishes
// them on the bus only after the commit (DESIGN.md invariant 6). Each
// appended event also appends an AuditEntry in that transaction, naming
// ActorFrom(ctx) (SystemActor when empty) and ProjectFrom(ctx).
//
// Projects (tenants) isolate every noun: each method reads and writes the
// rows of ProjectFrom(ctx) only (DefaultProject when the context names
// none), so two projects may hold the same names and the same content ids,
// and an id known in one project is errs.ErrNotFound in another. Run and
// approval ids are random and unique across the server; event seqs are one
// sequence over all projects, and each Event carries its Project. A
// context with AllProjects (projects.go) reads every project's events and
// writes nothing. Exceptions, by design: projects and tokens (auth.go) are
// server-wide, the audit log is one hash chain for the whole server with
// each entry's project recorded in it, usage rows carry their project as
// data (UsageFilter), and the trigger cursor is one cursor over the one
// event sequence.
//
// Errors wrap internal/errs kinds: ErrNotFound for a missing row, ErrConflict
// for a duplicate key or a failed compare-and-set. This package imports only
// internal/errs.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// DatasetVersion is one immutable version of a named dataset.
type DatasetVersion struct {
	ID        string    `json:"id"`       // sha256 hex over canonical records
	Name      string    `json:"name"`     // dataset name; many versions per name
	Task      string    `json:"task"`     // "classify" or "sft"
	Manifest  string    `json:"manifest"` // blob digest of the data.Manifest JSON
	Records   int64     `json:"records"`
	Bytes     int64     `json:"bytes"` // canonical bytes over all records
	Region    string    `json:"region"`
	Owner     string    `json:"owner"`
	Parent    string    `json:"parent,omitempty"` // previous version of the same name at import time
	CreatedAt time.Time `json:"created_at"`
}

// StaleParentError is returned when a dataset version's expected parent is
// no longer the newest version of its name. It is an errs.ErrConflict.
type StaleParentError struct {
	Name     string
	Expected string // the parent the writer read ("" = no version)
	Latest   string // the newest version now ("" = none)
}

func (e *StaleParentError) Error() string {
	exp, cur := e.Expected, e.Latest
	if exp == "" {
		exp = "none"
	}
	if cur == "" {
		cur = "none"
	}
	return fmt.Sprintf("dataset %q changed meanwhile: its latest version is %s, not %s", e.Name, cur, exp)
}

// Unwrap makes the error an errs.ErrConflict.
func (e *StaleParentError) Unwrap() error { return errs.ErrConflict }

// BaseVersion is one imported base-model checkpoint.
type BaseVersion struct {
	ID        string    `json:"id"` // fingerprint: sha256 of config + weights + tokenizer
	Name      string    `json:"name"`
	Version   int       `json:"version"` // 1, 2, 3… per name, assigned by the store
	Arch      string    `json:"arch"`    // e.g. LlamaForCausalLM
	Params    int64     `json:"params"`
	Manifest  string    `json:"manifest"` // blob digest of the basemodel.Manifest JSON
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"created_at"`
}

// RecipeVersion is one normalized recipe text.
type RecipeVersion struct {
	ID         string    `json:"id"` // sha256 hex of Normalized
	Name       string    `json:"name"`
	Version    int       `json:"version"` // 1, 2, 3… per name, assigned by the store
	Normalized []byte    `json:"normalized"`
	CreatedAt  time.Time `json:"created_at"`
}

// RunState is a run's place in its state machine:
// queued → running → succeeded | failed | canceled | budget_exceeded
// (usage.go); a raised budget moves budget_exceeded back to queued.
type RunState string

const (
	RunQueued    RunState = "queued"
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCanceled  RunState = "canceled"
)

// Terminal reports whether the run has stopped: no further transition
// leaves s on its own (only a raised budget moves budget_exceeded on).
func (s RunState) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCanceled || s == RunBudgetExceeded
}

// Run is one execution of recipe × dataset version × base version.
type Run struct {
	ID            string          `json:"id"`
	Key           string          `json:"key"` // hash of every resolved input + engine version
	RecipeID      string          `json:"recipe_id"`
	DatasetID     string          `json:"dataset_id"`
	BaseID        string          `json:"base_id"`
	EngineVersion string          `json:"engine_version"`
	Inputs        json.RawMessage `json:"inputs"` // resolved selectors and hashes, for lineage
	State         RunState        `json:"state"`
	Attempt       int             `json:"attempt"` // worker starts so far
	Step          int64           `json:"step"`
	TotalSteps    int64           `json:"total_steps"`
	Checkpoint    string          `json:"checkpoint,omitempty"` // blob digest of the last checkpoint
	Result        string          `json:"result,omitempty"`     // blob digest of the adapter manifest
	Metrics       json.RawMessage `json:"metrics,omitempty"`
	Error         string          `json:"error,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	StartedAt     time.Time       `json:"started_at,omitzero"`
	FinishedAt    time.Time       `json:"finished_at,omitzero"`
}

// RunLog is one line of a run's progress log.
type RunLog struct {
	RunID string          `json:"run_id"`
	Seq   int64           `json:"seq"` // 1, 2, 3… per run, assigned by the store
	Time  time.Time       `json:"time"`
	Data  json.RawMessage `json:"data"` // a JSON object: step, loss, tokens_per_s, eta_s, message…
}

// Alias is a moving pointer: Kind ("base", "model"…), Name and Alias name it,
// Target is the version id it points at.
type Alias struct {
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Alias     string    `json:"alias"`
	Target    string    `json:"target"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Event is a typed, committed state change ("dataset.version.created",
// "run.state.changed", …). Seq is assigned by the store and strictly
// increasing over every project. Project is the project the change was
// made in, filled in by the store from the appending context
// (ProjectFrom); a value the caller sets is ignored.
type Event struct {
	Seq     int64           `json:"seq"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"` // id of the thing that changed
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data,omitempty"`
	Project string          `json:"project,omitempty"`
}

// ModelVersion is one immutable deployable of a named model: a base version
// plus an optional adapter (none: the base alone is served). Its Region is
// where its artifacts (adapter, eval reports) live: the compute region of
// the run that produced them, or the region it was copied to; "" (a version
// registered in code, not by a run) means it lives where its base does.
type ModelVersion struct {
	ID        string            `json:"id"` // content id: sha256 over (base id, adapter digest)
	Name      string            `json:"name"`
	Version   int               `json:"version"` // 1, 2, 3… per name, assigned by the store
	BaseID    string            `json:"base_id"`
	Adapter   string            `json:"adapter,omitempty"` // blob digest of the adapter; "" for the base alone
	RunID     string            `json:"run_id,omitempty"`  // the run that produced the adapter
	Task      string            `json:"task"`
	Labels    map[string]string `json:"labels,omitempty"`
	Lineage   json.RawMessage   `json:"lineage,omitempty"` // resolved inputs back to data, recipe and base
	Region    string            `json:"region"`            // where its adapter and reports live (see below)
	CreatedAt time.Time         `json:"created_at"`
}

// Verdict is an eval report's gate decision.
type Verdict string

const (
	VerdictPass Verdict = "pass"
	VerdictFail Verdict = "fail"
)

// EvalReport attaches a stored eval report to a model version. Reports are
// the one thing added to a model version after it is created; the version
// row itself never changes.
type EvalReport struct {
	ModelVersionID string    `json:"model_version_id"`
	Digest         string    `json:"digest"`     // blob digest of the report JSON
	DatasetID      string    `json:"dataset_id"` // eval dataset version id
	Split          string    `json:"split"`
	Verdict        Verdict   `json:"verdict"`
	Failed         []string  `json:"failed,omitempty"` // the gates that failed, in words
	CreatedAt      time.Time `json:"created_at"`
}

// AliasMove is one recorded move of an alias. From is the target before the
// move ("" when the move created the alias).
type AliasMove struct {
	Seq            int64     `json:"seq"` // assigned by the store, increasing over all moves
	Kind           string    `json:"kind"`
	Name           string    `json:"name"`
	Alias          string    `json:"alias"`
	From           string    `json:"from,omitempty"`
	To             string    `json:"to"`
	Action         string    `json:"action,omitempty"` // e.g. "promote", "rollback"
	Reason         string    `json:"reason"`
	Actor          string    `json:"actor"`
	Override       bool      `json:"override,omitempty"`
	OverrideReason string    `json:"override_reason,omitempty"`
	ApprovalID     string    `json:"approval_id,omitempty"` // the approval that allowed the move, if any
	Time           time.Time `json:"time"`
}

// ApprovalState is an approval's place in its state machine:
// pending → approved | rejected.
type ApprovalState string

const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalApproved ApprovalState = "approved"
	ApprovalRejected ApprovalState = "rejected"
)

// Approval is a requested alias move waiting for a second person.
type Approval struct {
	ID             string        `json:"id"`
	Kind           string        `json:"kind"` // alias kind, e.g. "model"
	Name           string        `json:"name"`
	Alias          string        `json:"alias"`
	Target         string        `json:"target"` // the version id the alias would move to
	Reason         string        `json:"reason"`
	Override       bool          `json:"override,omitempty"`
	OverrideReason string        `json:"override_reason,omitempty"`
	RequestedBy    string        `json:"requested_by"`
	RequestedAt    time.Time     `json:"requested_at"`
	State          ApprovalState `json:"state"`
	DecidedBy      string        `json:"decided_by,omitempty"`
	DecisionReason string        `json:"decision_reason,omitempty"`
	DecidedAt      time.Time     `json:"decided_at,omitzero"`
}

// ApprovalUpdate decides an approval. The update is a compare-and-set: it
// fails with errs.ErrConflict unless the approval is in state IfState. Move,
// when set, is applied in the same transaction with MoveAlias's semantics.
type ApprovalUpdate struct {
	ID             string
	IfState        ApprovalState
	State          ApprovalState
	DecidedBy      string
	DecisionReason string
	DecidedAt      time.Time // now when zero
	Move           *AliasMove
}

// RunFilter selects runs; zero fields match everything.
type RunFilter struct {
	States []RunState
	Key    string
}

// RunUpdate changes a run; nil fields are left alone. IfState, when set,
// makes the update a compare-and-set: it fails with errs.ErrConflict unless
// the run is currently in that state.
type RunUpdate struct {
	IfState    *RunState
	State      *RunState
	Attempt    *int
	Step       *int64
	TotalSteps *int64
	Checkpoint *string
	Result     *string
	Metrics    json.RawMessage
	Error      *string
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Store is the metadata store. Lists return rows oldest first.
type Store interface {
	AuthStore // projects and tokens (auth.go)

	// PutDatasetVersion inserts v as the newest version of v.Name.
	// v.Parent is a compare-and-set: unless it is the id of the newest
	// version of v.Name ("" = the name has no version yet), the insert fails
	// with a *StaleParentError. errs.ErrConflict if (Name, ID) exists.
	PutDatasetVersion(ctx context.Context, v DatasetVersion, events []Event) ([]Event, error)
	// DatasetVersion returns the version of name with id, or, when id is ""
	// or "latest", the newest version of name.
	DatasetVersion(ctx context.Context, name, id string) (DatasetVersion, error)
	// DatasetVersions lists versions of name, or of all datasets when name is "".
	DatasetVersions(ctx context.Context, name string) ([]DatasetVersion, error)

	// PutBaseVersion inserts v, assigning Version; errs.ErrConflict if
	// (Name, ID) exists. It returns the stored row.
	PutBaseVersion(ctx context.Context, v BaseVersion, events []Event) (BaseVersion, []Event, error)
	// BaseVersion finds a version of name by id, by "v<N>" / "<N>", or the
	// newest when ref is "" or "latest".
	BaseVersion(ctx context.Context, name, ref string) (BaseVersion, error)
	BaseVersions(ctx context.Context, name string) ([]BaseVersion, error)

	// PutRecipeVersion inserts v, assigning Version; errs.ErrConflict if
	// (Name, ID) exists.
	PutRecipeVersion(ctx context.Context, v RecipeVersion, events []Event) (RecipeVersion, []Event, error)
	// RecipeVersion finds a version of name by id, "v<N>"/"<N>", or newest.
	RecipeVersion(ctx context.Context, name, ref string) (RecipeVersion, error)
	// RecipeVersionByID finds a recipe version by id alone.
	RecipeVersionByID(ctx context.Context, id string) (RecipeVersion, error)
	RecipeVersions(ctx context.Context, name string) ([]RecipeVersion, error)

	// CreateRun inserts r; errs.ErrConflict if the id exists.
	CreateRun(ctx context.Context, r Run, events []Event) ([]Event, error)
	// CreateRunOnce inserts r unless a queued, running or succeeded run
	// already has r.Key; then it inserts nothing and returns that run (the
	// newest such) and false. The check and the insert are one transaction,
	// so concurrent callers with one key create one run.
	CreateRunOnce(ctx context.Context, r Run, events []Event) (Run, bool, []Event, error)
	Run(ctx context.Context, id string) (Run, error)
	Runs(ctx context.Context, f RunFilter) ([]Run, error)
	// UpdateRun applies u atomically and returns the run as stored after it.
	UpdateRun(ctx context.Context, id string, u RunUpdate, events []Event) (Run, []Event, error)
	// AppendRunLog stores one log line, assigning Seq.
	AppendRunLog(ctx context.Context, runID string, at time.Time, data json.RawMessage) (RunLog, error)
	// RunLogs returns the lines of runID with Seq > after, at most limit (0: all).
	RunLogs(ctx context.Context, runID string, after int64, limit int) ([]RunLog, error)

	// SetAlias creates or moves an alias.
	SetAlias(ctx context.Context, a Alias, events []Event) ([]Event, error)
	Alias(ctx context.Context, kind, name, alias string) (Alias, error)
	Aliases(ctx context.Context, kind, name string) ([]Alias, error)

	// PutModelVersion inserts v, assigning Version; errs.ErrConflict if
	// (Name, ID) exists. It returns the stored row.
	PutModelVersion(ctx context.Context, v ModelVersion, events []Event) (ModelVersion, []Event, error)
	// ModelVersion finds a version of name by id, "v<N>"/"<N>", or the
	// newest when ref is "" or "latest".
	ModelVersion(ctx context.Context, name, ref string) (ModelVersion, error)
	// ModelVersionByID finds a model version by id alone (the oldest row
	// when several names share the same content).
	ModelVersionByID(ctx context.Context, id string) (ModelVersion, error)
	// ModelVersions lists versions of name, or of all models when name is "".
	ModelVersions(ctx context.Context, name string) ([]ModelVersion, error)

	// PutEvalReport attaches r to its model version; errs.ErrNotFound if no
	// model version has r.ModelVersionID, errs.ErrConflict if the same
	// digest is already attached to it.
	PutEvalReport(ctx context.Context, r EvalReport, events []Event) (EvalReport, []Event, error)
	// EvalReports lists the reports of a model version, oldest first.
	EvalReports(ctx context.Context, modelVersionID string) ([]EvalReport, error)

	// MoveAlias points an alias at m.To and appends m to the alias history,
	// with events, in one transaction. m.From is a compare-and-set: the move
	// fails with errs.ErrConflict unless the alias currently points at
	// m.From ("" = the alias must not exist yet), or when m.To == m.From.
	// It returns the move as stored (Seq, Time filled in).
	MoveAlias(ctx context.Context, m AliasMove, events []Event) (AliasMove, []Event, error)
	// AliasHistory lists the moves of one alias (every alias of kind and
	// name when alias is ""), oldest first.
	AliasHistory(ctx context.Context, kind, name, alias string) ([]AliasMove, error)

	// PutApproval inserts a (normally pending) approval; errs.ErrConflict if
	// the id exists.
	PutApproval(ctx context.Context, a Approval, events []Event) (Approval, []Event, error)
	// UpdateApproval decides an approval (compare-and-set on state) and
	// applies u.Move, if set, in the same transaction.
	UpdateApproval(ctx context.Context, u ApprovalUpdate, events []Event) (Approval, []Event, error)
	Approval(ctx context.Context, id string) (Approval, error)
	// Approvals lists approvals of name ("" all) in state ("" any), oldest first.
	Approvals(ctx context.Context, name string, state ApprovalState) ([]Approval, error)

	// PutPredictions records answered requests, assigning Seq; a request id
	// and variant already recorded is skipped.
	PutPredictions(ctx context.Context, ps []Prediction) error
	Predictions(ctx context.Context, f PredictionFilter) ([]Prediction, error)
	// Prediction returns the non-shadow prediction of a request id.
	Prediction(ctx context.Context, requestID string) (Prediction, error)

	// PutFeedback records the label of a predicted request, once: the same
	// feedback again returns the stored row and false; a different label
	// for the same request is errs.ErrConflict; an unknown request id is
	// errs.ErrNotFound.
	PutFeedback(ctx context.Context, f Feedback, events []Event) (Feedback, bool, []Event, error)
	// PendingFeedback lists feedback on model not yet accumulated whose
	// input was kept, with its prediction, oldest first, at most limit.
	PendingFeedback(ctx context.Context, model string, limit int) ([]Labelled, error)
	FeedbackStats(ctx context.Context, model string) (FeedbackStats, error)
	// MarkFeedback records that the feedback of requestIDs is in dataset
	// version dataset; rows already marked are left alone.
	MarkFeedback(ctx context.Context, requestIDs []string, dataset string, events []Event) ([]Event, error)
	// Feedbacks returns the feedback for these request ids (missing ones
	// are left out).
	Feedbacks(ctx context.Context, requestIDs []string) ([]Feedback, error)

	// PutSpec inserts v, assigning Version within (Kind, Name);
	// errs.ErrConflict if (Kind, Name, ID) exists.
	PutSpec(ctx context.Context, v SpecVersion, events []Event) (SpecVersion, []Event, error)
	// Spec resolves ref ("", "latest", "v<N>", "<N>" or an id) within kind
	// and name.
	Spec(ctx context.Context, kind, name, ref string) (SpecVersion, error)
	// Specs lists the versions of kind (of name, or of every name for "").
	Specs(ctx context.Context, kind, name string) ([]SpecVersion, error)

	// MonitorState returns a monitor's state; errs.ErrNotFound before the
	// first save.
	MonitorState(ctx context.Context, name string) (MonitorState, error)
	// SaveMonitorState stores st, appends the closed windows and the
	// events, in one transaction. ifCursor is a compare-and-set: unless the
	// stored cursor equals it (-1: no state stored yet) the save fails with
	// errs.ErrConflict, so two processes never count a prediction twice.
	SaveMonitorState(ctx context.Context, st MonitorState, ifCursor int64, windows []MonitorWindow, events []Event) ([]Event, error)
	// MonitorWindows lists a monitor's windows with Index > after, oldest
	// first, at most limit (0: all).
	MonitorWindows(ctx context.Context, name string, after int64, limit int) ([]MonitorWindow, error)

	// ClaimFiring records f unless its key exists: (Trigger, EventSeq), or
	// (Trigger, Tick) when Tick is set. Then it inserts nothing, appends no
	// events and returns the stored firing and false. Otherwise it inserts
	// f with events in one transaction; with EventSeq 0 and a Tick, the
	// firing takes the seq of the first of events.
	ClaimFiring(ctx context.Context, f Firing, events []Event) (Firing, bool, []Event, error)
	// UpdateFiring stores f's State, Step, Results, Error and UpdatedAt,
	// with events, in one transaction. It is a compare-and-set: unless the
	// stored firing is in ifState at step ifStep it fails with
	// errs.ErrConflict (errs.ErrNotFound when there is none).
	UpdateFiring(ctx context.Context, f Firing, ifState FiringState, ifStep int, events []Event) (Firing, []Event, error)
	// Firing returns the firing of trigger for event seq.
	Firing(ctx context.Context, trigger string, eventSeq int64) (Firing, error)
	// Firings lists firings, oldest (lowest EventSeq) first.
	Firings(ctx context.Context, f FiringFilter) ([]Firing, error)
	// TriggerCursor is the seq of the last event the triggers handled;
	// errs.ErrNotFound before the first save.
	TriggerCursor(ctx context.Context) (int64, error)
	// SaveTriggerCursor moves the cursor forward to seq (never back).
	SaveTriggerCursor(ctx context.Context, seq int64) error

	// AppendEvents stores events that describe no other row change.
	AppendEvents(ctx context.Context, events []Event) ([]Event, error)
	// Events returns events with Seq > after, at most limit (0: all).
	Events(ctx context.Context, after int64, limit int) ([]Event, error)

	// Auditor reads the audit log each appended event adds an entry to.
	Auditor

	// Copies records cross-region copies (copies.go).
	Copies

	Close() error

	UsageStore // usage.go

	Leases // leader.go
}
