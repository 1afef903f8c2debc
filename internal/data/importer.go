package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"path/filepath"
	"slices"
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
	// Cache, when set, keeps the state this import ends in, and an append
	// whose parent's state it holds reads none of the parent's records.
	// The manifest is the same either way.
	Cache *Cache
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
	opts   ImportOptions
	enc    *canonicalEncoder
	stream hash.Hash             // sha256 over the canonical record stream
	parent map[[16]byte]struct{} // id hashes of the parent's records
	ids    map[[16]byte]uint32   // id hash -> line of the input it was read at
	chunks *chunker
	// profiler is the profile's state; prof runs it once resume has
	// decided where it starts.
	profiler *profiler
	prof     *profilePipe
	// replay lists the parent's chunks to read when its state was not
	// cached.
	replay  []Chunk
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
// no manifest is returned; chunks already written are unreferenced. With
// opts.Cache, the state it ends in is kept there for the next append.
func Import(ctx context.Context, r io.Reader, opts ImportOptions, sink Sink) (*Manifest, error) {
	if err := opts.resolve(); err != nil {
		return nil, err
	}
	im := &importer{
		opts:   opts,
		enc:    newCanonicalEncoder(),
		stream: sha256.New(),
		parent: map[[16]byte]struct{}{},
		ids:    map[[16]byte]uint32{},
		chunks: &chunker{params: opts.Chunking, sink: sink},
		schema: newSchemaBuilder(),
	}
	if opts.Append != nil {
		im.resume()
	}
	if im.profiler == nil {
		im.profiler = newProfiler(opts.Task)
	}
	im.prof = newProfilePipe(im.profiler)
	defer im.prof.stop()
	if im.replay != nil {
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
	var tail []byte
	tailRecords := im.chunks.records
	if opts.Cache != nil {
		tail = bytes.Clone(im.chunks.buf.Bytes())
	}
	if err := im.chunks.flush(ctx); err != nil {
		return nil, fmt.Errorf("import %s: %w", opts.FileName, err)
	}
	m := im.manifest()
	if opts.Cache != nil {
		opts.Cache.put(im.state(m, tail, tailRecords))
	}
	return m, nil
}

// cacheKey names the state of version id, whose chunks are chunks, under
// these options.
func (im *importer) cacheKey(id string, chunks []Chunk) cacheKey {
	k := cacheKey{id: id, task: im.opts.Task, split: im.opts.Split, chunking: im.opts.Chunking}
	if len(chunks) > 0 {
		k.last = chunks[len(chunks)-1].Digest
	}
	return k
}

// resume starts from the parent's cached state, or else arranges for
// replayParent to read the parent's records.
func (im *importer) resume() {
	p := im.opts.Append
	st := im.opts.Cache.take(im.cacheKey(p.ID, p.Chunks))
	if st == nil {
		im.replay = p.Chunks
		return
	}
	im.stream, im.profiler, im.schema, im.parent = st.stream, st.prof, st.schema, st.ids
	im.counts, im.records, im.bytes = st.counts, st.records, st.bytes
	im.chunks.chunks = slices.Clone(p.Chunks)
	if st.tailRecords > 0 {
		im.chunks.chunks = im.chunks.chunks[:len(p.Chunks)-1]
		im.chunks.reopen(st.tail, st.tailRecords)
	}
}

// replayParent feeds the parent's records through the ids, stream hash,
// profile and split counts. It reuses the parent's chunks as they are but
// for an open last chunk, whose records start the next chunk.
func (im *importer) replayParent(ctx context.Context) error {
	for i, c := range im.replay {
		var tail []byte
		last := i == len(im.replay)-1
		var lastHash idHash
		err := readChunk(ctx, im.opts.Src, c, im.opts.Task, func(line []byte, rec Record) error {
			h := hashID(rec.ID)
			if _, dup := im.parent[h.key()]; dup {
				return errs.Invalid("chunk %s: duplicate id %q", c.Digest, rec.ID)
			}
			im.parent[h.key()] = struct{}{}
			im.account(&rec, line, h)
			if last {
				tail, lastHash = append(tail, line...), h
			}
			return nil
		})
		if err != nil {
			return err
		}
		if last && !im.opts.Chunking.cuts(c.Records, c.Bytes, lastHash) {
			im.chunks.reopen(tail, c.Records)
			continue
		}
		im.chunks.chunks = append(im.chunks.chunks, c)
	}
	return nil
}

// state is the importer's state after the last record of version m, for
// the cache; tail and tailRecords are the records the chunker held at the
// end (none when the rule ended the last chunk).
func (im *importer) state(m *Manifest, tail []byte, tailRecords int64) *importState {
	for k := range im.ids {
		im.parent[k] = struct{}{}
	}
	return &importState{key: im.cacheKey(m.ID, m.Chunks), stream: im.stream, prof: im.profiler, schema: im.schema, ids: im.parent,
		counts: im.counts, records: im.records, bytes: im.bytes, tail: tail, tailRecords: tailRecords}
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
	first, dup := im.ids[h.key()]
	_, inParent := im.parent[h.key()]
	if dup || inParent {
		if derived || (inParent && im.opts.SkipExisting) { // keep the first
			im.dups++
			return nil
		}
		where := "the parent version"
		if dup {
			where = fmt.Sprintf("line %d", first)
		}
		return pos.fieldf("id", "duplicate id %q (first at %s)", rec.ID, where)
	}
	// #nosec G115 -- clamped to MaxUint32 by min on the same line
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
