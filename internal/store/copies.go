package store

import (
	"context"
	"time"
)

// The kinds of version a Copy records.
const (
	CopyDataset = "dataset"
	CopyBase    = "base"
	CopyModel   = "model"
)

// Copy records that a version was copied into another region: the copy
// (Kind, Name, ID, Region) and its source. A copy has the same content as
// its source (the same id) under its own name, since (name, id) is unique
// per kind.
type Copy struct {
	Seq          int64     `json:"seq"` // assigned by the store
	Kind         string    `json:"kind"`
	Name         string    `json:"name"`
	ID           string    `json:"id"`
	Region       string    `json:"region"`
	SourceName   string    `json:"source_name"`
	SourceID     string    `json:"source_id"`
	SourceRegion string    `json:"source_region"`
	CreatedAt    time.Time `json:"created_at"`
}

// Copies stores cross-region copies: each Put inserts the copy's version
// row and its Copy record, with events, in one transaction, so a copy never
// exists without its lineage. The version rows follow the rules of
// PutDatasetVersion, PutBaseVersion and PutModelVersion; c's Kind, Name,
// ID and Region must match the row (errs.ErrInvalid otherwise).
type Copies interface {
	PutDatasetCopy(ctx context.Context, v DatasetVersion, c Copy, events []Event) ([]Event, error)
	PutBaseCopy(ctx context.Context, v BaseVersion, c Copy, events []Event) (BaseVersion, []Event, error)
	PutModelCopy(ctx context.Context, v ModelVersion, c Copy, events []Event) (ModelVersion, []Event, error)
	// CopySource returns the record of the version id of kind and name
	// when it is a copy; errs.ErrNotFound when it is not.
	CopySource(ctx context.Context, kind, name, id string) (Copy, error)
	// CopiesOf lists the copies made of the version id of kind and name,
	// oldest first.
	CopiesOf(ctx context.Context, kind, name, id string) ([]Copy, error)
}
