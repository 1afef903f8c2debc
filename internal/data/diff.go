package data

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
)

// DiffExamples is how many example ids DiffResult lists per kind of change.
const DiffExamples = 10

// DiffResult is the change from version A to version B. Records are matched
// by id: Added are ids only in B, Removed only in A, Changed in both with
// different content. Examples are the first ids in stream order.
type DiffResult struct {
	A               string      `json:"a"`
	B               string      `json:"b"`
	SharedChunks    int         `json:"shared_chunks"` // chunks skipped because both versions hold them
	Added           int64       `json:"added"`
	Removed         int64       `json:"removed"`
	Changed         int64       `json:"changed"`
	AddedExamples   []string    `json:"added_examples,omitempty"`
	RemovedExamples []string    `json:"removed_examples,omitempty"`
	ChangedExamples []string    `json:"changed_examples,omitempty"`
	Profile         ProfileDiff `json:"profile"`
}

// errEnough stops a chunk scan early.
var errEnough = errors.New("enough examples")

// Diff compares two versions. Chunks both manifests list are skipped (they
// hold the same records); memory is 32 bytes (plus map overhead) per record
// of A outside the shared chunks.
func Diff(ctx context.Context, src Source, a, b *Manifest) (*DiffResult, error) {
	res := &DiffResult{A: a.ID, B: b.ID}
	inB := map[string]bool{}
	for _, c := range b.Chunks {
		inB[c.Digest] = true
	}
	shared := map[string]bool{}
	var onlyA []Chunk
	for _, c := range a.Chunks {
		if inB[c.Digest] {
			shared[c.Digest] = true
		} else {
			onlyA = append(onlyA, c)
		}
	}
	res.SharedChunks = len(shared)
	// id hash -> content hash for the records of A outside shared chunks.
	seen := map[[16]byte][16]byte{}
	for _, c := range onlyA {
		err := readChunk(ctx, src, c, a.Task, func(line []byte, rec Record) error {
			seen[hashID(rec.ID).key()] = contentKey(line)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", a.ID, err)
		}
	}
	for _, c := range b.Chunks {
		if shared[c.Digest] {
			continue
		}
		err := readChunk(ctx, src, c, b.Task, func(line []byte, rec Record) error {
			k := hashID(rec.ID).key()
			old, ok := seen[k]
			switch {
			case !ok:
				res.Added++
				res.AddedExamples = appendExample(res.AddedExamples, rec.ID)
			case old != contentKey(line):
				res.Changed++
				res.ChangedExamples = appendExample(res.ChangedExamples, rec.ID)
			}
			delete(seen, k)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", b.ID, err)
		}
	}
	res.Removed = int64(len(seen))
	if err := removedExamples(ctx, src, a.Task, onlyA, seen, res); err != nil {
		return nil, fmt.Errorf("diff %s: %w", a.ID, err)
	}
	if a.Profile != nil && b.Profile != nil {
		res.Profile = a.Profile.Compare(b.Profile)
	}
	return res, nil
}

// removedExamples rescans A's own chunks for the first removed ids.
func removedExamples(ctx context.Context, src Source, task string, onlyA []Chunk, left map[[16]byte][16]byte, res *DiffResult) error {
	if len(left) == 0 {
		return nil
	}
	for _, c := range onlyA {
		err := readChunk(ctx, src, c, task, func(_ []byte, rec Record) error {
			if _, ok := left[hashID(rec.ID).key()]; ok {
				res.RemovedExamples = append(res.RemovedExamples, rec.ID)
			}
			if len(res.RemovedExamples) >= DiffExamples || int64(len(res.RemovedExamples)) == res.Removed {
				return errEnough
			}
			return nil
		})
		if errors.Is(err, errEnough) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func contentKey(line []byte) [16]byte {
	s := sha256.Sum256(line)
	return [16]byte(s[:16])
}

func appendExample(list []string, id string) []string {
	if len(list) < DiffExamples {
		return append(list, id)
	}
	return list
}
