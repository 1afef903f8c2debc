// Package registry owns model versions, their eval reports, aliases and
// promotion: the step between a finished run and serving.
//
// A model version is a deployable (a base version plus an optional adapter)
// identified by a content id, sha256 over (base id, adapter digest), and a
// number per model name. Versions never change; eval reports are attached
// beside them. Aliases (champion, challenger, …) are the only moving
// pointers: every move is a compare-and-set in the store that appends an
// alias-history row and a model.alias.moved event in the same transaction,
// and events reach the Publisher only after the store has committed them
// (DESIGN.md invariants 1, 4 and 6).
//
// Promotion is a gate decision: a version whose latest eval report failed,
// or that has none, is refused with errs.ErrForbidden unless the request
// overrides the gates with a recorded reason. Aliases named in
// Options.RequireApproval move only after a second person approves.
//
// This package imports internal/store and internal/errs only; it must not
// import app, httpapi, cli or any store implementation.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/store"
)

// Kind is the store alias kind of model aliases.
const Kind = "model"

// Event types the registry appends.
const (
	EventVersionRegistered = "model.version.registered"
	EventReportAttached    = "model.report.attached"
	EventAliasMoved        = "model.alias.moved"
	EventApprovalRequested = "model.approval.requested"
	EventApprovalApproved  = "model.approval.approved"
	EventApprovalRejected  = "model.approval.rejected"
)

// Publisher receives events after they are committed (internal/bus.Bus).
type Publisher interface {
	Publish(events ...store.Event)
}

// Options configure a Registry. Zero fields take the documented defaults.
type Options struct {
	Store store.Store
	// Publisher receives committed events. Default: none (events are still
	// stored in the outbox).
	Publisher Publisher
	// RequireApproval names the aliases whose moves need a second person,
	// e.g. {"champion": true}. Rollbacks never wait for approval.
	RequireApproval map[string]bool
	// Now stamps versions, reports, moves and events. Default time.Now.
	Now func() time.Time
	// Logger receives one line per registration, move and decision.
	// Default: discard.
	Logger *slog.Logger
	// NewID names approvals. Default "ap-" + 12 random hex characters.
	NewID func() string
	// Admit, when set, is asked before an alias moves to a version (a
	// promotion, a rollback, an approval) and before an approval is
	// requested for one; its error refuses the move. The app passes the
	// residency check: an alias may point only at what its server may
	// read.
	Admit func(ctx context.Context, v store.ModelVersion) error
}

// admit asks Options.Admit about v.
func (r *Registry) admit(ctx context.Context, v store.ModelVersion, what string) error {
	if r.opts.Admit == nil {
		return nil
	}
	if err := r.opts.Admit(ctx, v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Registry is the model registry. It is safe for concurrent use: every
// change is a compare-and-set in the store.
type Registry struct {
	opts Options
}

// New returns a registry over opts.Store.
func New(opts Options) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NewID == nil {
		opts.NewID = newApprovalID
	}
	return &Registry{opts: opts}
}

func newApprovalID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ap-" + hex.EncodeToString(b[:])
}

// Version is a model version with what has been attached to it since.
type Version struct {
	store.ModelVersion
	Reports []store.EvalReport `json:"reports"`
	// Verdict is the latest report's verdict; "" when there is none.
	Verdict store.Verdict `json:"verdict,omitempty"`
	// Aliases now pointing at this version.
	Aliases []string `json:"aliases,omitempty"`
}

// ContentID returns the content id of a model version: the sha256 hex of
// "<base id>\n<adapter digest>\n" (the adapter digest is empty for a base
// served alone).
func ContentID(baseID, adapter string) string {
	h := sha256.Sum256([]byte(baseID + "\n" + adapter + "\n"))
	return hex.EncodeToString(h[:])
}

func (r *Registry) now() time.Time { return r.opts.Now().UTC() }

func (r *Registry) publish(evs []store.Event) {
	if r.opts.Publisher != nil && len(evs) > 0 {
		r.opts.Publisher.Publish(evs...)
	}
}

func (r *Registry) event(typ, subject string, data any) store.Event {
	raw, err := json.Marshal(data)
	if err != nil { // data is always a plain struct; keep the event without it
		r.opts.Logger.Error("marshal event data", "type", typ, "err", err)
		raw = nil
	}
	return store.Event{Type: typ, Subject: subject, Time: r.now(), Data: raw}
}

// label names a version for messages: `model "sentiment" v3`.
func label(v store.ModelVersion) string {
	return fmt.Sprintf("model %q v%d", v.Name, v.Version)
}

// resolve finds the version of name that ref names (ident.ParseRef's
// grammar; the store resolves aliases too).
func (r *Registry) resolve(ctx context.Context, name, refStr string) (store.ModelVersion, error) {
	if err := CheckName(name); err != nil {
		return store.ModelVersion{}, err
	}
	v, err := r.opts.Store.ModelVersion(ctx, name, refStr)
	if errs.Kind(err) == "not_found" {
		return v, errs.NotFound("model %s@%s: no such version or alias; see `tailor model list %s`", name, refStr, name)
	}
	return v, err
}

// view adds reports, verdict and aliases to v.
func (r *Registry) view(ctx context.Context, v store.ModelVersion, aliases []store.Alias) (Version, error) {
	reps, err := r.opts.Store.EvalReports(ctx, v.ID)
	if err != nil {
		return Version{}, err
	}
	out := Version{ModelVersion: v, Reports: reps}
	if out.Reports == nil {
		out.Reports = []store.EvalReport{}
	}
	if n := len(reps); n > 0 {
		out.Verdict = reps[n-1].Verdict
	}
	for _, a := range aliases {
		if a.Target == v.ID {
			out.Aliases = append(out.Aliases, a.Alias)
		}
	}
	return out, nil
}

// Versions lists the versions of name, oldest first.
//
// An empty name lists the versions of every model (and no model is not an
// error then).
func (r *Registry) Versions(ctx context.Context, name string) ([]Version, error) {
	if name != "" {
		if err := CheckName(name); err != nil {
			return nil, err
		}
	}
	vs, err := r.opts.Store.ModelVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 && name != "" {
		return nil, errs.NotFound("model %q: not found; register a version first", name)
	}
	out := make([]Version, 0, len(vs))
	byName := map[string][]store.Alias{}
	for _, v := range vs {
		aliases, ok := byName[v.Name]
		if !ok {
			if aliases, err = r.opts.Store.Aliases(ctx, Kind, v.Name); err != nil {
				return nil, err
			}
			byName[v.Name] = aliases
		}
		x, err := r.view(ctx, v, aliases)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// Version returns the version of name that ref names: "latest", "v<N>",
// "<N>", a content id, or an alias name.
func (r *Registry) Version(ctx context.Context, name, ref string) (Version, error) {
	v, err := r.resolve(ctx, name, ref)
	if err != nil {
		return Version{}, err
	}
	aliases, err := r.opts.Store.Aliases(ctx, Kind, name)
	if err != nil {
		return Version{}, err
	}
	return r.view(ctx, v, aliases)
}

// Aliases lists the aliases of model name, oldest first.
func (r *Registry) Aliases(ctx context.Context, name string) ([]store.Alias, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return r.opts.Store.Aliases(ctx, Kind, name)
}

// History lists the moves of one alias of name (every alias when alias is
// ""), oldest first.
func (r *Registry) History(ctx context.Context, name, alias string) ([]store.AliasMove, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if alias != "" {
		if err := ident.CheckAliasName(alias); err != nil {
			return nil, err
		}
	}
	return r.opts.Store.AliasHistory(ctx, Kind, name, alias)
}

// Approvals lists the approvals of name ("" every model) in state ("" any),
// oldest first.
func (r *Registry) Approvals(ctx context.Context, name string, state store.ApprovalState) ([]store.Approval, error) {
	if name != "" {
		if err := CheckName(name); err != nil {
			return nil, err
		}
	}
	switch state {
	case "", store.ApprovalPending, store.ApprovalApproved, store.ApprovalRejected:
	default:
		return nil, errs.Invalid("approval state %q: want pending, approved or rejected", state)
	}
	return r.opts.Store.Approvals(ctx, name, state)
}

// Approval returns one approval.
func (r *Registry) Approval(ctx context.Context, id string) (store.Approval, error) {
	return r.opts.Store.Approval(ctx, id)
}
