package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// ImportOptions configure Import. Zero fields take the defaults documented
// on each; with Append, Task, Name, Region, Owner, Split and Chunking default
// to the parent's.
type ImportOptions struct {
	Name     string
	Task     string // TaskClassify, TaskSFT or TaskText
	Format   string // FormatJSONL or FormatCSV; "" infers from FileName's extension
	FileName string // names the input in error messages and the manifest
	Region   string
	Owner    string
	Split    SplitRatios // default 0.8/0.1/0.1; must sum to 1
	// MaxRecordBytes bounds one input record; default DefaultMaxRecordBytes.
	MaxRecordBytes int
	Chunking       Chunking
	// Append, when set, makes the new version the records of this version
	// followed by the records read; its chunks are reused as they are.
	Append *Manifest
	// Src reads the Append version's chunks; required with Append.
	Src Source
	// SkipExisting, with Append, drops an input record whose id is already
	// in the parent version instead of failing, so a retried append is
	// idempotent. Duplicates within the input still fail.
	SkipExisting bool
}

// resolve fills defaults and checks the options.
func (o *ImportOptions) resolve() error {
	if p := o.Append; p != nil {
		if o.Src == nil {
			return errs.Invalid("import: appending to version %s needs a Source for its chunks", p.ID)
		}
		if o.Task == "" {
			o.Task = p.Task
		}
		if o.Task != p.Task {
			return errs.Invalid("import: task %q differs from the parent version's task %q", o.Task, p.Task)
		}
		if o.Split == (SplitRatios{}) {
			o.Split = p.Split.Ratios
		}
		if o.Split != p.Split.Ratios {
			return errs.Invalid("import: split ratios %+v differ from the parent's %+v (records would change split)", o.Split, p.Split.Ratios)
		}
		o.Name, o.Region, o.Owner = firstOf(o.Name, p.Name), firstOf(o.Region, p.Region), firstOf(o.Owner, p.Owner)
		if o.Chunking == (Chunking{}) {
			o.Chunking = p.Chunking
		}
	}
	if err := checkTask(o.Task); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if o.Format == "" {
		o.Format = strings.TrimPrefix(strings.ToLower(filepath.Ext(o.FileName)), ".")
	}
	if o.Format != FormatJSONL && o.Format != FormatCSV {
		return errs.Invalid("import %s: unknown format %q: want jsonl or csv (or a file name ending in .jsonl or .csv)", o.FileName, o.Format)
	}
	if o.Split == (SplitRatios{}) {
		o.Split = defaultSplit
	}
	if err := o.Split.check(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	o.Chunking = o.Chunking.withDefaults()
	return o.Chunking.check()
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// importer holds the streaming state of one Import.
type importer struct {
	opts    ImportOptions
	enc     *canonicalEncoder
	stream  hash.Hash           // sha256 over the canonical record stream
	ids     map[[16]byte]uint32 // id hash -> line first seen (0: parent version)
	chunks  *chunker
	prof    *profilePipe
	schema  *schemaBuilder
	counts  SplitCounts
	records int64
	bytes   int64
	dups    int64
	read    int64 // records read from the input
}

// Import reads a dataset file, validates every record for the task, writes
// the canonical records to sink in content-defined chunks, and returns the
// manifest of the new version. Memory stays bounded by one chunk, the
// profile's sketches and 16 bytes (plus map overhead) per record id. On error
// no manifest is returned; chunks already written are unreferenced.
func Import(ctx context.Context, r io.Reader, opts ImportOptions, sink Sink) (*Manifest, error) {
	if err := opts.resolve(); err != nil {
		return nil, err
	}
	im := &importer{
		opts:   opts,
		enc:    newCanonicalEncoder(),
		stream: sha256.New(),
		ids:    map[[16]byte]uint32{},
		chunks: &chunker{params: opts.Chunking, sink: sink},
		prof:   newProfilePipe(newProfiler(opts.Task)),
		schema: newSchemaBuilder(),
	}
	defer im.prof.stop()
	if opts.Append != nil {
		if err := im.replayParent(ctx); err != nil {
			return nil, fmt.Errorf("import: read parent version %s: %w", opts.Append.ID, err)
		}
	}
	ro := ReadOptions{Task: opts.Task, FileName: opts.FileName, MaxRecordBytes: opts.MaxRecordBytes}
	read := ReadJSONL
	if opts.Format == FormatCSV {
		read = ReadCSV
	}
	if err := read(ctx, r, ro, func(rec Record, pos Pos) error { return im.add(ctx, rec, pos) }); err != nil {
		return nil, err
	}
	if im.read == 0 {
		return nil, Pos{File: opts.FileName}.invalidf("empty: no records")
	}
	if err := im.chunks.flush(ctx); err != nil {
		return nil, fmt.Errorf("import %s: %w", opts.FileName, err)
	}
	return im.manifest(), nil
}

// replayParent feeds the parent's records through the ids, stream hash,
// profile and split counts, and reuses its chunks as they are.
func (im *importer) replayParent(ctx context.Context) error {
	for _, c := range im.opts.Append.Chunks {
		err := readChunk(ctx, im.opts.Src, c, func(line []byte, rec Record) error {
			h := hashID(rec.ID)
			if _, dup := im.ids[h.key()]; dup {
				return errs.Invalid("chunk %s: duplicate id %q", c.Digest, rec.ID)
			}
			im.ids[h.key()] = 0
			im.account(&rec, line, h)
			return nil
		})
		if err != nil {
			return err
		}
		im.chunks.chunks = append(im.chunks.chunks, c)
	}
	return nil
}

// add takes one validated input record.
func (im *importer) add(ctx context.Context, rec Record, pos Pos) error {
	im.read++
	derived := rec.ID == ""
	if !derived && strings.HasPrefix(rec.ID, derivedIDPrefix) {
		return pos.fieldf("id", "%q: ids starting with %q are reserved for ids derived from content", rec.ID, derivedIDPrefix)
	}
	if err := im.enc.assignID(&rec); err != nil {
		return pos.invalidf("%v", err)
	}
	h := hashID(rec.ID)
	if first, dup := im.ids[h.key()]; dup {
		if derived || (first == 0 && im.opts.SkipExisting) { // keep the first
			im.dups++
			return nil
		}
		where := "the parent version"
		if first > 0 {
			where = fmt.Sprintf("line %d", first)
		}
		return pos.fieldf("id", "duplicate id %q (first at %s)", rec.ID, where)
	}
	im.ids[h.key()] = uint32(min(pos.Line, math.MaxUint32))
	line, err := im.enc.encode(&rec)
	if err != nil {
		return pos.invalidf("%v", err)
	}
	im.account(&rec, line, h)
	return im.chunks.add(ctx, line, h)
}

// account adds one canonical record to the version's hash and statistics.
func (im *importer) account(rec *Record, line []byte, h idHash) {
	im.stream.Write(line)
	im.records++
	im.bytes += int64(len(line))
	im.counts.add(splitOf(h, im.opts.Split))
	im.prof.add(rec, len(line))
	im.schema.add(rec)
}

func (im *importer) manifest() *Manifest {
	m := &Manifest{
		ID:                hex.EncodeToString(im.stream.Sum(nil)),
		Name:              im.opts.Name,
		Task:              im.opts.Task,
		Format:            im.opts.Format,
		Source:            filepath.Base(im.opts.FileName),
		Region:            im.opts.Region,
		Owner:             im.opts.Owner,
		Records:           im.records,
		Bytes:             im.bytes,
		DuplicatesDropped: im.dups,
		Chunking:          im.opts.Chunking,
		Chunks:            im.chunks.chunks,
		Split:             Split{Ratios: im.opts.Split, Counts: im.counts},
		Schema:            im.schema.schema(),
		Profile:           im.prof.finish(),
	}
	if im.opts.FileName == "" {
		m.Source = ""
	}
	if p := im.opts.Append; p != nil {
		m.Parent = p.ID
		m.DuplicatesDropped += p.DuplicatesDropped
	}
	return m
}
