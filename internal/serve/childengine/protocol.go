package childengine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
)

// The protocol, in one place. See the package comment for its summary.

// Frame types. Requests go parent → child; every request but release and
// cancel gets exactly one result or error frame with its id.
const (
	frameHello    byte = 'H' // parent: Spec; child: helloReply (id 0)
	frameLoad     byte = 'L' // meta: serve.Target
	frameClassify byte = 'C' // meta: callMeta; data: int32 tokens, rows end to end
	frameLogits   byte = 'G' // meta: callMeta; data: int32 tokens
	frameRelease  byte = 'X' // meta: releaseMeta (no answer)
	frameStats    byte = 'S' // no meta
	frameCancel   byte = 'K' // id: the request to cancel (no answer)
	frameResult   byte = 'R' // meta: loadedMeta, rowsMeta or serve.EngineStats; data: float32 rows
	frameError    byte = 'E' // meta: errorMeta
)

const (
	frameMagic = 0xA7
	// headerBytes: magic (1), type (1), id (8, big-endian), meta length
	// (4), data length (4).
	headerBytes = 18
	// MaxMetaBytes bounds a frame's JSON part, MaxDataBytes its binary
	// part. A call whose rows do not fit fails as invalid before it is sent.
	MaxMetaBytes = 4 << 20
	MaxDataBytes = 64 << 20
	// readChunk is how much a reader allocates ahead of the bytes that
	// actually arrived, so a lying length costs no more than the data.
	readChunk = 64 << 10
)

// frame is one message of the protocol.
type frame struct {
	typ  byte
	id   uint64
	meta []byte // JSON
	data []byte // 4-byte little-endian words
}

// Spec is what the parent sends in its hello frame: where the blobs are and
// how to size the engine. Blob is the artifact store's address
// ("file:///abs/dir" or "s3://bucket/prefix", see internal/blob/blobstore).
type Spec struct {
	Blob             string `json:"blob"`
	WorkDir          string `json:"work_dir"`
	BudgetBytes      int64  `json:"budget_bytes,omitempty"`
	BaseBudgetBytes  int64  `json:"base_budget_bytes,omitempty"`
	CacheBudgetBytes int64  `json:"cache_budget_bytes,omitempty"`
	Threads          int    `json:"threads,omitempty"`
}

type helloReply struct {
	PID int `json:"pid"`
}

// callMeta describes the rows of a classify or logits call. Each distinct
// model is sent once; rows point at it by index. A row's tokens are Len
// int32 words of the data, rows end to end.
type callMeta struct {
	Models []serve.Target `json:"models"`
	Rows   []rowMeta      `json:"rows"`
}

type rowMeta struct {
	Model int    `json:"model"`
	Seq   uint64 `json:"seq,omitempty"`
	Len   int    `json:"len"`
}

// rowsMeta gives the lengths of float32 rows that follow end to end.
type rowsMeta struct {
	Lens []int `json:"lens"`
}

type releaseMeta struct {
	Seq uint64 `json:"seq"`
}

// loadedMeta is what a load answers: a serve.Loaded less its tokenizer,
// which the parent loads itself.
type loadedMeta struct {
	Labels         []string `json:"labels,omitempty"`
	MaxPositions   int      `json:"max_positions"`
	MaxInputTokens int      `json:"max_input_tokens"`
	VocabSize      int      `json:"vocab_size"`
	EOS            []int32  `json:"eos,omitempty"`
}

// errorMeta carries an error's kind (errs.Kind) and message.
type errorMeta struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// writeFrame writes f in one Write call (so concurrent writers serialized
// by a mutex never interleave partial frames).
func writeFrame(w io.Writer, f frame) error {
	if len(f.meta) > MaxMetaBytes || len(f.data) > MaxDataBytes || len(f.data)%4 != 0 {
		return errs.Invalid("frame %q: %d meta and %d data bytes; the limits are %d and %d (data in 4-byte words)",
			f.typ, len(f.meta), len(f.data), MaxMetaBytes, MaxDataBytes)
	}
	buf := make([]byte, headerBytes, headerBytes+len(f.meta)+len(f.data))
	buf[0], buf[1] = frameMagic, f.typ
	binary.BigEndian.PutUint64(buf[2:], f.id)
	// #nosec G115 -- len(f.meta) <= MaxMetaBytes, checked above
	binary.BigEndian.PutUint32(buf[10:], uint32(len(f.meta)))
	// #nosec G115 -- len(f.data) <= MaxDataBytes, checked above
	binary.BigEndian.PutUint32(buf[14:], uint32(len(f.data)))
	buf = append(append(buf, f.meta...), f.data...)
	_, err := w.Write(buf)
	return err
}

// errProtocol marks a stream that is not this protocol; the reader stops.
var errProtocol = errors.New("serving protocol")

// readFrame reads one frame. It returns io.EOF at a clean end between
// frames, and an error wrapping errProtocol for bytes that are not a frame.
// It never allocates much more than the bytes that arrived.
func readFrame(r io.Reader) (frame, error) {
	var h [headerBytes]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, fmt.Errorf("%w: stream ends inside a frame header", errProtocol)
		}
		return frame{}, err
	}
	if h[0] != frameMagic {
		return frame{}, fmt.Errorf("%w: byte 0x%02x where a frame starts (something else wrote to the stream?)", errProtocol, h[0])
	}
	f := frame{typ: h[1], id: binary.BigEndian.Uint64(h[2:])}
	nm, nd := binary.BigEndian.Uint32(h[10:]), binary.BigEndian.Uint32(h[14:])
	switch {
	case nm > MaxMetaBytes:
		return frame{}, fmt.Errorf("%w: frame %q says %d meta bytes; the limit is %d", errProtocol, f.typ, nm, MaxMetaBytes)
	case nd > MaxDataBytes:
		return frame{}, fmt.Errorf("%w: frame %q says %d data bytes; the limit is %d", errProtocol, f.typ, nd, MaxDataBytes)
	case nd%4 != 0:
		return frame{}, fmt.Errorf("%w: frame %q has %d data bytes, not whole 4-byte words", errProtocol, f.typ, nd)
	}
	body, err := readN(r, int(nm)+int(nd))
	if err != nil {
		return frame{}, fmt.Errorf("%w: frame %q: %v", errProtocol, f.typ, err)
	}
	f.meta, f.data = body[:nm:nm], body[nm:]
	return f, nil
}

// readN reads exactly n bytes, growing its buffer as they arrive.
func readN(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, readChunk))
	for len(buf) < n {
		k := min(n-len(buf), max(readChunk, len(buf)))
		buf = append(buf, make([]byte, k)...)
		if _, err := io.ReadFull(r, buf[len(buf)-k:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// decodeMeta decodes a frame's JSON part, rejecting unknown fields.
func decodeMeta(f frame, v any) error {
	dec := json.NewDecoder(bytes.NewReader(f.meta))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: frame %q meta: %v", errProtocol, f.typ, err)
	}
	return nil
}

// jsonFrame builds a frame with v as its meta.
func jsonFrame(typ byte, id uint64, v any, data []byte) (frame, error) {
	meta, err := json.Marshal(v)
	if err != nil {
		return frame{}, err
	}
	return frame{typ: typ, id: id, meta: meta, data: data}, nil
}

// checkLens checks that lens split n words into rows.
func checkLens(lens []int, n int) error {
	total := 0
	for i, l := range lens {
		if l < 0 || l > n-total {
			return fmt.Errorf("%w: row %d claims %d words; %d are left", errProtocol, i, l, n-total)
		}
		total += l
	}
	if total != n {
		return fmt.Errorf("%w: rows hold %d words, the frame %d", errProtocol, total, n)
	}
	return nil
}

// appendInt32s and appendFloat32s write words little-endian.
func appendInt32s(b []byte, v []int32) []byte {
	for _, x := range v {
		// #nosec G115 -- two's-complement bit pattern of a token id, decoded with int32 on the other side
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func appendFloat32s(b []byte, v []float32) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// encodeCall builds the meta and data of a classify or logits call.
func encodeCall(models []*serve.Loaded, seqs []uint64, tokens [][]int32) (callMeta, []byte, error) {
	var m callMeta
	index := map[*serve.Loaded]int{}
	n := 0
	for _, t := range tokens {
		n += len(t)
	}
	if 4*n > MaxDataBytes {
		return m, nil, errs.Invalid("the call has %d tokens; at most %d fit one frame", n, MaxDataBytes/4)
	}
	data := make([]byte, 0, 4*n)
	for i, l := range models {
		if l == nil {
			return m, nil, errs.Invalid("row %d names no model", i)
		}
		k, ok := index[l]
		if !ok {
			k = len(m.Models)
			index[l] = k
			m.Models = append(m.Models, l.Target)
		}
		r := rowMeta{Model: k, Len: len(tokens[i])}
		if seqs != nil {
			r.Seq = seqs[i]
		}
		m.Rows = append(m.Rows, r)
		data = appendInt32s(data, tokens[i])
	}
	return m, data, nil
}

// decodeCall reads a call's rows back: per row its model index, sequence
// and tokens.
func decodeCall(f frame) (callMeta, [][]int32, error) {
	var m callMeta
	if err := decodeMeta(f, &m); err != nil {
		return m, nil, err
	}
	lens := make([]int, len(m.Rows))
	for i, r := range m.Rows {
		if r.Model < 0 || r.Model >= len(m.Models) {
			return m, nil, fmt.Errorf("%w: row %d names model %d of %d", errProtocol, i, r.Model, len(m.Models))
		}
		lens[i] = r.Len
	}
	words := len(f.data) / 4
	if err := checkLens(lens, words); err != nil {
		return m, nil, err
	}
	toks := make([][]int32, len(lens))
	off := 0
	for i, l := range lens {
		row := make([]int32, l)
		for j := range row {
			// #nosec G115 -- two's-complement bit pattern of a token id, encoded from int32
			row[j] = int32(binary.LittleEndian.Uint32(f.data[4*(off+j):]))
		}
		toks[i], off = row, off+l
	}
	return m, toks, nil
}

// encodeRows builds a result frame of float32 rows.
func encodeRows(id uint64, rows [][]float32) (frame, error) {
	m := rowsMeta{Lens: make([]int, len(rows))}
	n := 0
	for i, r := range rows {
		m.Lens[i] = len(r)
		n += len(r)
	}
	data := make([]byte, 0, 4*n)
	for _, r := range rows {
		data = appendFloat32s(data, r)
	}
	return jsonFrame(frameResult, id, m, data)
}

// decodeRows reads float32 rows back, checking there are want of them.
func decodeRows(f frame, want int) ([][]float32, error) {
	var m rowsMeta
	if err := decodeMeta(f, &m); err != nil {
		return nil, err
	}
	if len(m.Lens) != want {
		return nil, fmt.Errorf("%w: %d rows in the answer, %d asked", errProtocol, len(m.Lens), want)
	}
	if err := checkLens(m.Lens, len(f.data)/4); err != nil {
		return nil, err
	}
	out := make([][]float32, len(m.Lens))
	off := 0
	for i, l := range m.Lens {
		row := make([]float32, l)
		for j := range row {
			row[j] = math.Float32frombits(binary.LittleEndian.Uint32(f.data[4*(off+j):]))
		}
		out[i], off = row, off+l
	}
	return out, nil
}

// errorFrame encodes err for the parent.
func errorFrame(id uint64, err error) frame {
	f, _ := jsonFrame(frameError, id, errorMeta{Kind: errs.Kind(err), Message: err.Error()}, nil)
	return f
}

// decodeError rebuilds the child's error with its kind, so the parent's
// one error → status mapping sees what the child saw.
func decodeError(f frame) error {
	var m errorMeta
	if err := decodeMeta(f, &m); err != nil {
		return err
	}
	return errs.WithKind(m.Kind, "serving process: "+m.Message)
}
