package data

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Chunking sets the content-defined chunk boundaries: a chunk ends after a
// record whose id hash has its low Bits bits zero, once it holds MinRecords,
// and at the latest at MaxRecords records or MaxBytes bytes. A boundary
// depends only on the records since the previous boundary, so the same
// record stream always gives the same chunks. An append reopens the
// parent's last chunk when the input, not the rule, ended it, so appending
// records changes only the last chunk and gives the chunks a single import
// of all the records would.
type Chunking struct {
	Bits       int   `json:"bits"`        // default 10: about 1024 records per chunk
	MinRecords int   `json:"min_records"` // default 64
	MaxRecords int   `json:"max_records"` // default 8192
	MaxBytes   int64 `json:"max_bytes"`   // default 16 MiB
}

// withDefaults fills zero fields.
func (c Chunking) withDefaults() Chunking {
	if c.Bits == 0 {
		c.Bits = 10
	}
	if c.MinRecords == 0 {
		c.MinRecords = 64
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = 8192
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 16 << 20
	}
	return c
}

func (c Chunking) check() error {
	if c.Bits < 0 || c.Bits > 30 || c.MinRecords < 1 || c.MaxRecords < c.MinRecords || c.MaxBytes < 1 {
		return errs.Invalid("chunking %+v: want 0 <= bits <= 30 and 1 <= min_records <= max_records, max_bytes > 0", c)
	}
	return nil
}

// chunker accumulates canonical lines and writes a chunk to the sink at each
// boundary.
type chunker struct {
	params  Chunking
	sink    Sink
	buf     bytes.Buffer
	records int64
	chunks  []Chunk
}

// add appends one canonical line with its record's id hash and cuts a chunk
// when the boundary rule says so.
func (c *chunker) add(ctx context.Context, line []byte, h idHash) error {
	c.buf.Write(line)
	c.records++
	if c.params.cuts(c.records, int64(c.buf.Len()), h) {
		return c.flush(ctx)
	}
	return nil
}

// cuts is the boundary rule: a chunk of records records and size bytes
// whose last record has id hash h ends there.
func (c Chunking) cuts(records, size int64, h idHash) bool {
	if records < int64(c.MinRecords) {
		return false
	}
	mask := uint64(1)<<c.Bits - 1
	low := binary.BigEndian.Uint64(h[24:32])
	return low&mask == 0 || records >= int64(c.MaxRecords) || size >= c.MaxBytes
}

// reopen makes the records of an open last chunk (one the boundary rule
// did not end: the input ended there) the start of the next chunk, as if
// they had just been added.
func (c *chunker) reopen(tail []byte, records int64) {
	c.buf.Reset()
	c.buf.Write(tail)
	c.records = records
}

// flush writes the pending records, if any, as one chunk.
func (c *chunker) flush(ctx context.Context) error {
	if c.records == 0 {
		return nil
	}
	size := int64(c.buf.Len())
	digest, n, err := c.sink.Put(ctx, bytes.NewReader(c.buf.Bytes()))
	if err != nil {
		return fmt.Errorf("store chunk %d: %w", len(c.chunks), err)
	}
	if n != size {
		return fmt.Errorf("store chunk %d: sink stored %d bytes, want %d", len(c.chunks), n, size)
	}
	c.chunks = append(c.chunks, Chunk{Digest: digest, Records: c.records, Bytes: size})
	c.buf.Reset()
	c.records = 0
	return nil
}
