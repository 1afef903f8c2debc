// Package api holds Tailor's public wire types and the Go client that the
// CLI (and any other program) uses to talk to a Tailor server.
//
// It imports nothing from internal/: these types are the contract, and the
// server converts its own types into them.
package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Error is the body of every non-2xx response.
type Error struct {
	Kind    string `json:"kind"` // not_found, invalid, conflict, forbidden, unavailable, internal
	Message string `json:"message"`
}

// ErrorBody wraps Error as {"error": {...}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// DatasetVersion describes one immutable dataset version.
type DatasetVersion struct {
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	Task      string           `json:"task"`
	Records   int64            `json:"records"`
	Bytes     int64            `json:"bytes"`
	Region    string           `json:"region"`
	Owner     string           `json:"owner"`
	Parent    string           `json:"parent,omitempty"`
	Manifest  string           `json:"manifest"`
	Chunks    []string         `json:"chunks,omitempty"`
	Splits    map[string]int64 `json:"splits,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	// CopiedFrom is its source when it is a cross-region copy (shown
	// with one version, not in lists).
	CopiedFrom *CopySource `json:"copied_from,omitempty"`
}

// SplitSummary says the split sizes in words, in split order: "train
// 4849, validation 573, test 624".
func (v DatasetVersion) SplitSummary() string {
	var parts []string
	for _, s := range []string{"train", "validation", "test"} {
		if n, ok := v.Splits[s]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// DatasetImport is the answer to a dataset import.
type DatasetImport struct {
	Version DatasetVersion `json:"version"`
	// Created is false when the same version already existed.
	Created bool `json:"created"`
	// ChunksReused counts chunks already present in the artifact store.
	ChunksReused int `json:"chunks_reused"`
	ChunksTotal  int `json:"chunks_total"`
}

// DatasetDetail is a version with its manifest (profile, splits, chunks).
type DatasetDetail struct {
	Version  DatasetVersion  `json:"version"`
	Manifest json.RawMessage `json:"manifest"`
}

// BaseVersion describes one imported base model.
type BaseVersion struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Version   int        `json:"version"`
	Arch      string     `json:"arch"`
	Params    int64      `json:"params"`
	Region    string     `json:"region"`
	Manifest  string     `json:"manifest"`
	Files     []BaseFile `json:"files,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	// CopiedFrom is its source when it is a cross-region copy (shown
	// with one version, not in lists).
	CopiedFrom *CopySource `json:"copied_from,omitempty"`
}

// BaseFile is one file of a base model folder.
type BaseFile struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// BaseImport is the answer to a base-model import.
type BaseImport struct {
	Version BaseVersion `json:"version"`
	Created bool        `json:"created"`
}

// RecipeVersion describes one normalized recipe.
type RecipeVersion struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	Normalized string    `json:"normalized"`
	CreatedAt  time.Time `json:"created_at"`
}

// RecipeApply is the answer to applying a recipe.
type RecipeApply struct {
	Version RecipeVersion `json:"version"`
	// Created is false when the normalized content matched an existing version.
	Created bool `json:"created"`
}

// RunStart asks for a run of a stored recipe.
type RunStart struct {
	// Recipe is a recipe selector: "name", "name@v2" or a version id.
	Recipe string `json:"recipe"`
	// Base, when set, replaces the recipe's base selector for this run: a
	// base address, "name" or "name@ref" (a version, alias or id). A rebase
	// re-applies a recipe to a new base version this way. The recipe must
	// name a base, and an incremental recipe can only run on the base its
	// starting adapter was trained on.
	Base string `json:"base,omitempty"`
	// Force starts a new run even if one with the same key succeeded.
	Force bool `json:"force,omitempty"`
}

// EvalStart asks for an eval run: a registered model version on one split
// of a dataset version.
type EvalStart struct {
	// Model is "name", "name@v3", "name@champion" or "name@<id>".
	Model string `json:"model"`
	// Dataset is "name" (latest) or "name@<version id>".
	Dataset string `json:"dataset"`
	// Split is train, validation or test (default test).
	Split string `json:"split,omitempty"`
	// Force evaluates again even if an equal eval run succeeded.
	Force bool `json:"force,omitempty"`
}

// Run is one execution of recipe × dataset version × base version.
type Run struct {
	ID            string          `json:"id"`
	Key           string          `json:"key"`
	State         string          `json:"state"`
	RecipeID      string          `json:"recipe_id"`
	DatasetID     string          `json:"dataset_id"`
	BaseID        string          `json:"base_id,omitempty"`
	EngineVersion string          `json:"engine_version"`
	Inputs        json.RawMessage `json:"inputs,omitempty"`
	Attempt       int             `json:"attempt"`
	Step          int64           `json:"step"`
	TotalSteps    int64           `json:"total_steps"`
	Checkpoint    string          `json:"checkpoint,omitempty"`
	Result        string          `json:"result,omitempty"`
	Metrics       json.RawMessage `json:"metrics,omitempty"`
	Error         string          `json:"error,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	StartedAt     time.Time       `json:"started_at,omitzero"`
	FinishedAt    time.Time       `json:"finished_at,omitzero"`
	// Reused is true when start returned an earlier queued, running or
	// succeeded run with the same key instead of creating one.
	Reused bool `json:"reused,omitempty"`
}

// RunLog is one progress line of a run.
type RunLog struct {
	Seq  int64           `json:"seq"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// Progress is the typed content of most run log lines.
type Progress struct {
	Step        int64   `json:"step,omitempty"`
	TotalSteps  int64   `json:"total_steps,omitempty"`
	Loss        float64 `json:"loss,omitempty"`
	LR          float64 `json:"lr,omitempty"`
	TokensPerS  float64 `json:"tokens_per_s,omitempty"`
	ETASeconds  float64 `json:"eta_s,omitempty"`
	Message     string  `json:"message,omitempty"`
	State       string  `json:"state,omitempty"`
	Checkpoint  string  `json:"checkpoint,omitempty"`
	ElapsedSecs float64 `json:"elapsed_s,omitempty"`
}

// Event is a committed state change.
type Event struct {
	Seq     int64           `json:"seq"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data,omitempty"`
	Project string          `json:"project"` // the project the change was made in
}

// LineageNode is one node of a lineage graph: a run, an input version, an
// artifact. Children are its inputs (for a run) or its parts.
type LineageNode struct {
	Kind     string         `json:"kind"` // run, recipe, dataset, base, engine, adapter, checkpoint, chunk, file
	ID       string         `json:"id"`
	Name     string         `json:"name,omitempty"`
	Hash     string         `json:"hash,omitempty"`
	Detail   string         `json:"detail,omitempty"`
	Children []*LineageNode `json:"children,omitempty"`
}

// FsckReport lists what fsck checked and what it found wrong.
type FsckReport struct {
	Blobs   int         `json:"blobs"`
	Bytes   int64       `json:"bytes"`
	Refs    int         `json:"refs"`
	Bad     []FsckIssue `json:"bad"`
	Missing []FsckIssue `json:"missing"`
}

// GCOptions tune a garbage collection (POST /v1/gc).
type GCOptions struct {
	// DryRun reports what would be removed and removes nothing.
	DryRun bool `json:"dry_run"`
	// Grace keeps unreferenced blobs written within it: a worker may be
	// about to report one (default 1h).
	Grace time.Duration `json:"grace"`
	// KeepCheckpoints keeps the last checkpoint of runs that finished
	// within it (default 168h); older ones are released and removed.
	KeepCheckpoints time.Duration `json:"keep_checkpoints"`
}

// DefaultGCOptions are a collection's defaults: a grace of 1h, and the
// checkpoints of runs finished within 7 days kept.
func DefaultGCOptions() GCOptions {
	return GCOptions{Grace: time.Hour, KeepCheckpoints: 7 * 24 * time.Hour}
}

// GCReport says what a garbage collection found and removed.
type GCReport struct {
	DryRun       bool     `json:"dry_run"`
	Blobs        int      `json:"blobs"`         // blobs scanned
	Bytes        int64    `json:"bytes"`         // their bytes
	Referenced   int      `json:"referenced"`    // distinct digests the metadata refers to
	Removed      int      `json:"removed"`       // blobs removed (or, dry, that would be)
	RemovedBytes int64    `json:"removed_bytes"` // their bytes
	Young        int      `json:"young"`         // unreferenced but within the grace period: kept
	Checkpoints  int      `json:"checkpoints"`   // finished runs' checkpoints released
	Stages       int      `json:"stages"`        // staging folders of dead imports removed
	Examples     []string `json:"examples,omitempty"`
}

// FsckIssue is one corrupt or missing blob.
type FsckIssue struct {
	Digest  string `json:"digest"`
	Problem string `json:"problem"`
	Ref     string `json:"ref,omitempty"` // what refers to it
}

// Feedback is the true label (classify) or completion (sft) of one served
// request, named by the X-Tailor-Request-Id it was answered with (input
// i > 0 of a multi-input request: "<id>#<i>").
type Feedback struct {
	RequestID  string `json:"request_id"`
	Label      string `json:"label,omitempty"`
	Completion string `json:"completion,omitempty"`
	// Actor is ignored: the server attributes the change to the
	// request token's principal; the field only keeps old bodies valid.
	Actor string `json:"actor,omitempty"`
}

// FeedbackResult is what POST /v1/feedback answers. Created is false when
// the same feedback was recorded before. Accumulated names the feedback
// dataset version this label made, when it completed the policy's batch.
type FeedbackResult struct {
	RequestID   string          `json:"request_id"`
	Model       string          `json:"model"`
	Label       string          `json:"label,omitempty"`
	Completion  string          `json:"completion,omitempty"`
	Created     bool            `json:"created"`
	Accumulated *DatasetVersion `json:"accumulated,omitempty"`
}

// MonitorApply is the result of applying a monitor spec.
type MonitorApply struct {
	Version SpecVersion `json:"version"`
	Created bool        `json:"created"`
}

// SpecVersion is one version of a monitor or trigger spec.
type SpecVersion struct {
	Kind       string    `json:"kind"`
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	Normalized string    `json:"normalized"`
	CreatedAt  time.Time `json:"created_at"`
}

// MonitorStatus is where one monitor stands.
type MonitorStatus struct {
	Spec       SpecVersion    `json:"spec"`
	Model      string         `json:"model"`
	Alias      string         `json:"alias"`
	VersionID  string         `json:"version_id,omitempty"` // the version it watches
	Profile    string         `json:"profile,omitempty"`    // reference profile blob; "" while it is built
	ProfileRun string         `json:"profile_run,omitempty"`
	Cursor     int64          `json:"cursor"`
	Windows    int            `json:"windows"`
	Drifted    int            `json:"drifted"`
	OpenCount  int            `json:"open_count"` // requests in the open window
	Feedback   FeedbackStats  `json:"feedback"`
	Last       *MonitorWindow `json:"last,omitempty"`
}

// FeedbackStats counts a model's feedback.
type FeedbackStats struct {
	Total   int64 `json:"total"`
	Pending int64 `json:"pending"`
	NoText  int64 `json:"no_text"`
}

// MonitorWindow is one evaluated window: the detectors' result, and the
// realised accuracy over the feedback received so far for its requests.
type MonitorWindow struct {
	Index            int64           `json:"index"`
	VersionID        string          `json:"version_id"`
	FirstSeq         int64           `json:"first_seq"`
	LastSeq          int64           `json:"last_seq"`
	Count            int             `json:"count"`
	Drifted          bool            `json:"drifted"`
	Time             time.Time       `json:"time"`
	Result           json.RawMessage `json:"result"`
	Labelled         int             `json:"labelled"`
	RealisedAccuracy *float64        `json:"realised_accuracy,omitempty"`
}
