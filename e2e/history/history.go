// Package history is a Jepsen-style checker for Tailor's HTTP API. Clients
// record every operation they invoke and what came back (acknowledged, a
// definite failure, or an indeterminate outcome such as a connection cut
// by kill -9); Check then compares that history with the server's final
// state and lists every anomaly: lost or duplicated records, forked or
// broken version chains, lost or phantom alias moves, duplicated runs, an
// unclean fsck.
//
// The package owns the history model and the checker. Its tests own the
// driver that builds the real binary and drives it. It imports only the
// public api package, never internal/: it judges the server from outside.
package history

import (
	"fmt"

	"github.com/tailor-ml/tailor/api"
)

// Outcome is what a client knows about one operation after it returned.
type Outcome int

const (
	// OK: the server acknowledged the operation (2xx).
	OK Outcome = iota
	// Fail: the server refused it (4xx); it must have had no effect.
	Fail
	// Unknown: no answer, or a 5xx; it may or may not have taken effect.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Fail:
		return "fail"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Kind names an operation.
type Kind string

const (
	// Append adds Records to the latest version of Dataset.
	Append Kind = "append"
	// Import uploads a full dataset: the records of ExpectParent (read just
	// before) plus Records. Without a version yet, ExpectParent is "none".
	Import Kind = "import"
	// Reimport uploads exactly the records of version Read again; it must
	// answer that version and create nothing.
	Reimport Kind = "reimport"
	// ApplyRecipe stores a recipe's fixed text under Recipe (a name).
	ApplyRecipe Kind = "recipe"
	// StartRun starts a run of Recipe (a recipe version id), never forced.
	StartRun Kind = "start"
	// Promote points Model's Alias at Target (a version ref such as "v2").
	Promote Kind = "promote"
	// Rollback moves Model's Alias back to its previous target.
	Rollback Kind = "rollback"
	// Feedback posts the true Label of Request, a classification of Model
	// served just before; only an answered classification is labelled.
	Feedback Kind = "feedback"
	// Accumulate appends Model's pending labels to its feedback dataset.
	Accumulate Kind = "accumulate"
)

// NoParent is the ExpectParent value meaning "the dataset has no version
// yet" (If-None-Match: *).
const NoParent = api.ExpectNone

// Op is one invocation and its result.
type Op struct {
	Client int
	Index  int // per client, from 0
	Kind   Kind

	// Datasets.
	Dataset      string
	Records      []string // ids of the records this op adds
	ExpectParent string   // optimistic-concurrency precondition; "" for none
	Read         string   // Reimport: the version whose records were sent

	// Recipes and runs.
	Recipe string

	// Registry.
	Model  string
	Alias  string
	Target string
	Tag    string // unique reason of a Promote or Rollback, to find it in history

	// Feedback.
	Request string // the X-Tailor-Request-Id of the labelled answer
	Label   string

	// Result.
	Outcome Outcome
	Status  int    // HTTP status of a refusal or 5xx; 0 when there was none
	Err     string // error text of a Fail or Unknown

	Imported api.DatasetImport  // Append, Import, Reimport
	Applied  api.RecipeApply    // ApplyRecipe
	Run      api.Run            // StartRun
	Move     *api.AliasMove     // Promote, Rollback
	Labelled api.FeedbackResult // Feedback
	// Accumulated is the feedback dataset version an Accumulate made, or
	// nil when nothing was pending.
	Accumulated *api.DatasetVersion
}

func (op Op) String() string {
	s := fmt.Sprintf("client %d op %d %s", op.Client, op.Index, op.Kind)
	switch op.Kind {
	case Append, Import, Reimport:
		s += " " + op.Dataset
		if op.ExpectParent != "" {
			s += " expect-parent=" + short(op.ExpectParent)
		}
		if len(op.Records) > 0 {
			s += fmt.Sprintf(" records=%v", op.Records)
		}
	case ApplyRecipe, StartRun:
		s += " " + short(op.Recipe)
	case Promote:
		s += fmt.Sprintf(" %s@%s -> %s (%s)", op.Model, op.Alias, op.Target, op.Tag)
	case Rollback:
		s += fmt.Sprintf(" %s@%s (%s)", op.Model, op.Alias, op.Tag)
	case Feedback:
		s += fmt.Sprintf(" %s %s=%s", op.Model, op.Request, op.Label)
	case Accumulate:
		s += " " + op.Model
	}
	s += ": " + op.Outcome.String()
	if op.Status != 0 {
		s += fmt.Sprintf(" HTTP %d", op.Status)
	}
	return s
}

// DatasetState is what the server holds for one dataset name at the end.
type DatasetState struct {
	// Versions as listed, oldest first.
	Versions []api.DatasetVersion
	// Latest is the id that GET .../versions/latest answered.
	Latest string
	// LatestRecords are the record ids of Latest, in the order streamed.
	LatestRecords []string
	// ReadBack maps a version id to the number of records its records
	// endpoint streamed, or -1 when reading it failed. Only the versions
	// read back are present.
	ReadBack map[string]int
	// ReadErrors describes versions that could not be read back.
	ReadErrors []string
}

// Final is the server's state after the last operation.
type Final struct {
	Datasets map[string]DatasetState
	// Recipes lists the versions of every recipe name the history applied.
	Recipes map[string][]api.RecipeVersion
	// Runs are all runs.
	Runs []api.Run
	// Aliases maps "model@alias" to that alias's move history, oldest first.
	Aliases map[string][]api.AliasMove
	// SetupTags are reasons of alias moves made before the history started.
	SetupTags []string
	// SetupRecords are record ids imported before the history started.
	SetupRecords []string
	// FeedbackModel is the model whose answers were labelled, and
	// Feedback its feedback dataset after a last accumulation, with
	// FeedbackLabels the label of each record of its latest version.
	FeedbackModel  string
	Feedback       DatasetState
	FeedbackLabels map[string]string
	Fsck           api.FsckReport
}

// Result sums up a history and lists its anomalies.
type Result struct {
	Operations    int
	Acknowledged  int
	Conflicts     int // 409 answers
	Rejected      int // other definite failures (4xx but 409)
	Indeterminate int
	// Per kind and outcome, for the log: "append/ok" → 412.
	ByKind map[string]int
	// Checked counts what the checker verified, for the log.
	Checked map[string]int
	// Anomalies are violations of the consistency model; empty means the
	// history is consistent with the final state.
	Anomalies []string
}

func (r Result) String() string {
	return fmt.Sprintf("%d operations: %d acknowledged, %d conflicts, %d other refusals, %d indeterminate; %d anomalies; by kind %v; checked %v",
		r.Operations, r.Acknowledged, r.Conflicts, r.Rejected, r.Indeterminate, len(r.Anomalies), r.ByKind, r.Checked)
}

func short(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}
