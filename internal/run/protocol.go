// Package run owns the run state machine (queued → running → succeeded |
// failed | canceled | budget_exceeded), the scheduler that starts queued runs within a
// concurrency limit, and the supervision of the worker processes that do the
// training.
//
// A worker is a child process (`tailor worker train`) that receives a Spec as
// one JSON line on stdin and writes Messages as JSON lines on stdout. The
// supervisor records progress, checkpoints and results in the store and
// publishes events only after each change is committed. When the server dies,
// its workers die with it (parent-death signal and stdin EOF); on restart the
// scheduler re-queues runs that were running and the worker resumes from the
// last recorded checkpoint.
//
// Executors are the seam (executor.go): LocalExecutor runs the child
// process; internal/run/kube runs a Kubernetes Job per attempt, whose
// worker (`tailor worker train --api`) fetches its Spec and posts its
// Messages through the API, guarded by a run-scoped credential (Remote,
// remote.go). A worker lost mid-run (ErrWorkerLost, lost.go) re-queues its
// run, and the next attempt resumes from the last recorded checkpoint.
//
// The scheduler meters every attempt (internal/meter: CPU-seconds, wall
// time, FLOPs the worker reports, peak RSS, energy, cost), stores the run's
// usage, and stops a run that reaches a limit of its budget in state
// budget_exceeded, keeping its last checkpoint (budget.go).
//
// This package imports internal/store, internal/bus, internal/meter and
// internal/errs; it knows nothing about the engine.
package run

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Inputs are a run's resolved inputs, stored with the run for lineage and
// used to build the worker's Spec.
type Inputs struct {
	Recipe  InputRef `json:"recipe"`
	Dataset InputRef `json:"dataset"`
	Base    InputRef `json:"base,omitzero"`
	Engine  string   `json:"engine"`
	// Champion is the model version the candidate is compared with (its
	// adapter manifest in Manifest) and ChampionBase that version's base.
	// They shape the eval report only, so they are not part of the key.
	Champion     InputRef `json:"champion,omitzero"`
	ChampionBase InputRef `json:"champion_base,omitzero"`
	// Kind is KindTrain (""), KindEval or KindProfile. An eval run evaluates Model (a
	// registered model version: ID, Name, Version, and its adapter
	// manifest in Manifest) over Base, trained by Recipe, on Split of
	// Dataset.
	Kind  string   `json:"kind,omitempty"`
	Model InputRef `json:"model,omitzero"`
	Split string   `json:"split,omitempty"`
	// Init, Replay and Forgetting are set for an incremental run (a recipe
	// with incremental:). Init is the model version whose adapter and head
	// training starts from (its adapter manifest in Manifest; it was
	// trained on Base), Replay the dataset version whose records are
	// replayed, Forgetting the dataset version the forgetting gate compares
	// on. They change the adapter and its verdict, so they are part of the
	// key. An eval run of a model trained incrementally carries its Init
	// and Forgetting, so its report has the forgetting gate too.
	Init       InputRef `json:"init,omitzero"`
	Replay     InputRef `json:"replay,omitzero"`
	Forgetting InputRef `json:"forgetting,omitzero"`
}

// Run kinds.
const (
	KindTrain = ""
	KindEval  = "eval"
	// KindProfile builds the drift monitor's reference profile of Model
	// from its training Dataset (train texts, outputs on validation).
	KindProfile = "profile"
)

// InputRef names one resolved input.
type InputRef struct {
	Name     string `json:"name"`
	ID       string `json:"id"`
	Version  int    `json:"version,omitempty"`
	Manifest string `json:"manifest,omitempty"` // blob digest
	Selector string `json:"selector,omitempty"` // what the recipe asked for
}

// Key is the run key: sha256 over the resolved input ids and the engine
// version. The same key on the same engine gives the same adapter bytes.
func Key(in Inputs) string {
	parts := []string{"tailor-run-key/1", in.Recipe.ID, in.Dataset.ID, in.Base.ID, in.Engine}
	switch in.Kind {
	case KindEval:
		// The champion shapes an eval run's report, so it is an input.
		parts = []string{"tailor-eval-key/1", in.Model.ID, in.Dataset.ID, in.Split, in.Recipe.ID, in.Base.ID, in.Champion.ID, in.Engine}
	case KindProfile:
		parts = []string{"tailor-profile-key/1", in.Model.ID, in.Dataset.ID, in.Recipe.ID, in.Base.ID, in.Engine}
	}
	if in.Init.ID != "" {
		// An incremental run, or an eval run of its model (forgetting gate).
		parts = append(parts, "incremental", in.Init.ID, in.Init.Manifest, in.Replay.ID, in.Forgetting.ID)
	}
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Spec is what a worker gets on stdin.
type Spec struct {
	RunID  string `json:"run_id"`
	Key    string `json:"key"`
	Inputs Inputs `json:"inputs"`
	Recipe []byte `json:"recipe"` // normalized recipe text
	Resume string `json:"resume,omitempty"`
	// Blob is the address of the artifact store holding every input and
	// receiving every output, all named by digest: "file:///abs/dir" or
	// "s3://bucket/prefix" (see internal/blob/blobstore). It never carries
	// credentials; an S3 worker reads them from its environment.
	Blob string `json:"blob"`
	// WorkDir is the worker's own scratch directory on its machine.
	WorkDir string `json:"work_dir"`
	// Attempt numbers this execution of the run (1, 2, … as the scheduler
	// starts it again after a restart or a lost worker). A remote
	// executor names its Job and the worker's credential by it.
	Attempt int `json:"attempt,omitempty"`
}

// Message types a worker writes.
const (
	MsgProgress   = "progress"
	MsgCheckpoint = "checkpoint"
	MsgResult     = "result"
	MsgLog        = "log"
	// MsgError is a remote worker's own failure (Message says why), posted
	// before it exits non-zero: the server cannot read a remote worker's
	// stderr, and a worker that reported a failure is not retried as a
	// lost one. The executor consumes it; the scheduler never sees it.
	MsgError = "error"
)

// Message is one line of worker output.
type Message struct {
	Type       string  `json:"type"`
	Step       int64   `json:"step,omitempty"`
	TotalSteps int64   `json:"total_steps,omitempty"`
	Loss       float64 `json:"loss,omitempty"`
	LR         float64 `json:"lr,omitempty"`
	TokensPerS float64 `json:"tokens_per_s,omitempty"`
	ETASeconds float64 `json:"eta_s,omitempty"`
	Digest     string  `json:"digest,omitempty"` // checkpoint or result blob
	// FLOPs is what the worker's engine has counted in this attempt so
	// far (progress, checkpoint and result): meter.TrainFLOPs per step.
	FLOPs   float64         `json:"flops,omitempty"`
	Metrics json.RawMessage `json:"metrics,omitempty"`
	Message string          `json:"message,omitempty"`
}
