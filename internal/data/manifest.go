package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Manifest describes one immutable dataset version. The caller stores it as
// a blob (its JSON encoding is deterministic) and records its digest in
// store.DatasetVersion.Manifest.
type Manifest struct {
	ID                string   `json:"id"` // hex sha256 over the canonical record stream
	Name              string   `json:"name"`
	Task              string   `json:"task"`
	Format            string   `json:"format"`           // format of the file last imported
	Source            string   `json:"source,omitempty"` // its file name
	Region            string   `json:"region,omitempty"`
	Owner             string   `json:"owner,omitempty"`
	Parent            string   `json:"parent,omitempty"` // ID of the version appended to
	Records           int64    `json:"records"`
	Bytes             int64    `json:"bytes"` // canonical bytes over all records
	DuplicatesDropped int64    `json:"duplicates_dropped"`
	Chunking          Chunking `json:"chunking"`
	Chunks            []Chunk  `json:"chunks"`
	Split             Split    `json:"split"`
	Schema            Schema   `json:"schema"`
	Profile           *Profile `json:"profile"`
}

// Chunk is one stored piece of the canonical record stream.
type Chunk struct {
	Digest  string `json:"digest"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
}

// SplitRatios are the target fractions of each split; they sum to 1.
type SplitRatios struct {
	Train      float64 `json:"train"`
	Validation float64 `json:"validation"`
	Test       float64 `json:"test"`
}

// DefaultSplit is used when ImportOptions.Split is zero.
var defaultSplit = SplitRatios{Train: 0.8, Validation: 0.1, Test: 0.1}

func (s SplitRatios) check() error {
	for _, v := range []float64{s.Train, s.Validation, s.Test} {
		if v < 0 || v > 1 || math.IsNaN(v) {
			return errs.Invalid("split ratios %v/%v/%v: each must lie in [0, 1]", s.Train, s.Validation, s.Test)
		}
	}
	if sum := s.Train + s.Validation + s.Test; math.Abs(sum-1) > 1e-9 {
		return errs.Invalid("split ratios %v/%v/%v: sum is %v, want 1", s.Train, s.Validation, s.Test, sum)
	}
	return nil
}

// SplitCounts counts the records assigned to each split.
type SplitCounts struct {
	Train      int64 `json:"train"`
	Validation int64 `json:"validation"`
	Test       int64 `json:"test"`
}

// Split holds the ratios a version was split with and the resulting counts.
type Split struct {
	Ratios SplitRatios `json:"ratios"`
	Counts SplitCounts `json:"counts"`
}

// splitOf assigns a record to a split by its id hash: the uniform draw
// u = bytes 16..24 of sha256(id) / 2^64 lands in train below Train, then
// validation below Train+Validation, else test. Same id, same ratios: same
// split, in every version.
// SplitOf returns the split (train, validation or test) a record with this
// id falls in under ratios r: a fixed function of the id, so a record never
// changes split as a dataset grows.
func SplitOf(id string, r SplitRatios) string { return splitOf(hashID(id), r) }

// DefaultSplit is the split ratios of an import that names none.
func DefaultSplit() SplitRatios { return defaultSplit }

func splitOf(h idHash, r SplitRatios) string {
	u := float64(binary.BigEndian.Uint64(h[16:24])>>11) / (1 << 53)
	switch {
	case u < r.Train:
		return SplitTrain
	case u < r.Train+r.Validation:
		return SplitValidation
	}
	return SplitTest
}

func (c *SplitCounts) add(split string) {
	switch split {
	case SplitTrain:
		c.Train++
	case SplitValidation:
		c.Validation++
	default:
		c.Test++
	}
}

// Schema lists the record fields and metadata keys seen, sorted.
type Schema struct {
	Fields            []string `json:"fields"`
	Metadata          []string `json:"metadata,omitempty"`
	MetadataTruncated bool     `json:"metadata_truncated,omitempty"`
}

// maxSchemaKeys bounds the metadata keys a Schema lists.
const maxSchemaKeys = 256

type schemaBuilder struct {
	fields, meta map[string]bool
	truncated    bool
}

func newSchemaBuilder() *schemaBuilder {
	return &schemaBuilder{fields: map[string]bool{}, meta: map[string]bool{}}
}

func (s *schemaBuilder) add(r *Record) {
	for name, set := range map[string]bool{
		"id": r.ID != "", "text": r.Text != "", "label": r.Label != "", "prompt": r.Prompt != "",
		"completion": r.Completion != "", "messages": len(r.Messages) > 0, "metadata": len(r.Metadata) > 0,
	} {
		if set {
			s.fields[name] = true
		}
	}
	for k := range r.Metadata {
		if !s.meta[k] && len(s.meta) >= maxSchemaKeys {
			s.truncated = true
			continue
		}
		s.meta[k] = true
	}
}

func (s *schemaBuilder) schema() Schema {
	return Schema{Fields: sortedKeys(s.fields), Metadata: sortedKeys(s.meta), MetadataTruncated: s.truncated}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DecodeManifest reads a manifest's JSON and checks that it is usable.
func DecodeManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, errs.Invalid("decode dataset manifest: %v", err)
	}
	if err := checkTask(m.Task); err != nil {
		return nil, fmt.Errorf("dataset manifest %s: %w", m.ID, err)
	}
	if len(m.ID) != 64 {
		return nil, errs.Invalid("dataset manifest: id %q is not a sha256 hex", m.ID)
	}
	return &m, nil
}

// ReadRecords streams the records of version m, chunk by chunk, to fn:
// all of them when split is "", else those of split (train, validation or
// test). Each chunk's bytes are checked against its sha256 digest.
func ReadRecords(ctx context.Context, src Source, m *Manifest, split string, fn func(Record) error) error {
	switch split {
	case "", SplitTrain, SplitValidation, SplitTest:
	default:
		return errs.Invalid("unknown split %q: want train, validation, test or empty for all", split)
	}
	for _, c := range m.Chunks {
		err := readChunk(ctx, src, c, m.Task, func(_ []byte, rec Record) error {
			if split != "" && splitOf(hashID(rec.ID), m.Split.Ratios) != split {
				return nil
			}
			return fn(rec)
		})
		if err != nil {
			return fmt.Errorf("dataset %s: %w", m.ID, err)
		}
	}
	return nil
}

// readChunk streams the canonical lines of one chunk with their decoded
// records (validated for task) and verifies the chunk's digest at the end.
func readChunk(ctx context.Context, src Source, c Chunk, task string, fn func(line []byte, rec Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := src.Open(ctx, c.Digest)
	if err != nil {
		return fmt.Errorf("open chunk %s: %w", c.Digest, err)
	}
	defer rc.Close()
	h := sha256.New()
	lr := newLineReader(io.TeeReader(rc, h), int(min(c.Bytes, math.MaxInt32)))
	fast := &fastJSONL{task: task}
	var n int64
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errs.Invalid("chunk %s line %d: %v", c.Digest, lr.line, err)
		}
		rec, ok := fast.decode(line)
		if !ok {
			// Nested metadata, or a damaged chunk (its digest check fails below).
			d := json.NewDecoder(bytes.NewReader(line))
			d.UseNumber()
			if err := d.Decode(&rec); err != nil || rec.ID == "" {
				return errs.Invalid("chunk %s line %d: not a canonical record: %v", c.Digest, lr.line, err)
			}
		}
		n++
		if err := fn(append(line, '\n'), rec); err != nil {
			return err
		}
	}
	if n != c.Records {
		return errs.Conflict("chunk %s: has %d records, manifest says %d", c.Digest, n, c.Records)
	}
	if hexd, ok := strings.CutPrefix(c.Digest, "sha256:"); ok && hexd != hex.EncodeToString(h.Sum(nil)) {
		return errs.Conflict("chunk %s: content has digest sha256:%x", c.Digest, h.Sum(nil))
	}
	return nil
}
