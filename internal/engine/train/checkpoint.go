package train

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Checkpoint format (version 1) is a valid safetensors file:
//
//	8 bytes   little-endian uint64 N, the header length
//	N bytes   JSON header, keys sorted, padded with spaces to a multiple of 8
//	data      raw little-endian float32 tensors, back to back, no gaps
//
// The header maps each tensor name to {"dtype":"F32","shape":[...],
// "data_offsets":[begin,end]} (offsets relative to the data section) and
// "__metadata__" to string pairs:
//
//	format          "tailor.train.checkpoint/1"
//	step            optimizer steps completed
//	epoch, batch    the data cursor (next micro-batch)
//	rng             the trainer RNG state, four 16-digit hex words joined by ","
//	optimizer       "adamw" or "sgd"
//	options         canonical JSON of the trajectory-shaping Options
//	options_sha256  sha256 of options
//	data_sha256     sha256 of the data section
//
// Tensors are "param/<name>" for every trainable parameter in Params()
// order, then "optim/<slot>/<name>" for the optimizer state in Slots()
// order; the data section follows that order. Gradients are not saved:
// checkpoints are only taken at optimizer-step boundaries, never inside a
// gradient-accumulation cycle, so gradients are always zero there.
const checkpointFormat = "tailor.train.checkpoint/1"

// maxHeaderLen bounds the JSON header a checkpoint may declare.
const maxHeaderLen = 64 << 20

type tensorEntry struct {
	name string
	data []float32
	dims []int
}

type tensorHeader struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// entries lists the tensors a checkpoint of this trainer holds, in order.
func (t *Trainer) entries() []tensorEntry {
	var out []tensorEntry
	for _, p := range t.params {
		out = append(out, tensorEntry{"param/" + p.Name, p.Data, p.Shape})
	}
	for _, s := range t.opt.Slots() {
		p := t.params[s.Param]
		out = append(out, tensorEntry{"optim/" + s.Name + "/" + p.Name, s.Data, p.Shape})
	}
	return out
}

// WriteCheckpoint writes the trainer's full state in the format above.
// The bytes depend only on the state, so equal states give equal bytes.
func (t *Trainer) WriteCheckpoint(w io.Writer) error {
	ents := t.entries()
	h := sha256.New()
	header := map[string]any{}
	var off int64
	for _, e := range ents {
		writeFloats(h, e.data)
		end := off + 4*int64(len(e.data))
		header[e.name] = tensorHeader{Dtype: "F32", Shape: nonNil(e.dims), DataOffsets: [2]int64{off, end}}
		off = end
	}
	header["__metadata__"] = t.metadata(hex.EncodeToString(h.Sum(nil)))
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if pad := len(js) % 8; pad != 0 {
		js = append(js, bytes.Repeat([]byte{' '}, 8-pad)...)
	}
	bw := bufio.NewWriter(w)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(js)))
	// #nosec G104 -- bufio.Writer errors are sticky and returned by the checked Flush below
	bw.Write(n[:])
	// #nosec G104 -- bufio.Writer errors are sticky and returned by the checked Flush below
	bw.Write(js)
	for _, e := range ents {
		writeFloats(bw, e.data)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

func nonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

// metadata returns the checkpoint's string metadata.
func (t *Trainer) metadata(dataSHA string) map[string]string {
	words := make([]string, len(t.rng.S))
	for i, s := range t.rng.S {
		words[i] = fmt.Sprintf("%016x", s)
	}
	return map[string]string{
		"format":         checkpointFormat,
		"step":           strconv.Itoa(t.step),
		"epoch":          strconv.Itoa(t.cursor.Epoch),
		"batch":          strconv.Itoa(t.cursor.Batch),
		"rng":            strings.Join(words, ","),
		"optimizer":      t.opt.Name(),
		"options":        string(t.opts.canonical()),
		"options_sha256": t.opts.Hash(),
		"data_sha256":    dataSHA,
	}
}

// writeFloats writes v as little-endian float32 in 4 KiB chunks.
func writeFloats(w io.Writer, v []float32) {
	var buf [4096]byte
	for len(v) > 0 {
		n := min(len(v), len(buf)/4)
		for i, f := range v[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
		}
		// #nosec G104 -- w is a hash or the checkpoint's bufio.Writer, whose Flush is checked
		w.Write(buf[:4*n])
		v = v[n:]
	}
}

// Resume restores the state a checkpoint holds. It refuses a checkpoint made
// with different options, optimizer or parameter names and shapes, naming
// what differs; on any error the trainer is left unchanged.
func (t *Trainer) Resume(r io.Reader) error {
	if err := t.resume(r); err != nil {
		return fmt.Errorf("resume checkpoint: %w", err)
	}
	return nil
}

func (t *Trainer) resume(r io.Reader) error {
	var n [8]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return errs.Invalid("header length: %v", err)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if hlen < 2 || hlen > maxHeaderLen {
		return errs.Invalid("header length %d out of range [2, %d]", hlen, maxHeaderLen)
	}
	// Read through a limit so a bogus length cannot force a large allocation.
	js, err := io.ReadAll(io.LimitReader(r, int64(hlen)))
	if err != nil || uint64(len(js)) != hlen {
		return errs.Invalid("header (%d bytes): got %d bytes: %v", hlen, len(js), cmp.Or(err, io.ErrUnexpectedEOF))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		return errs.Invalid("header JSON: %v", err)
	}
	var meta map[string]string
	if err := json.Unmarshal(raw["__metadata__"], &meta); err != nil || meta == nil {
		return errs.Invalid("header field __metadata__: missing or not a string map")
	}
	delete(raw, "__metadata__")
	st, err := t.parseMeta(meta)
	if err != nil {
		return err
	}
	ents := t.entries()
	if err := checkTensors(raw, ents); err != nil {
		return err
	}
	var total int64
	for _, e := range ents {
		total += 4 * int64(len(e.data))
	}
	data := make([]byte, total)
	if _, err := io.ReadFull(r, data); err != nil {
		return errs.Invalid("data section (%d bytes expected): %v", total, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != meta["data_sha256"] {
		return errs.Invalid("data section: sha256 does not match metadata data_sha256 (corrupt checkpoint)")
	}
	if k, _ := r.Read(make([]byte, 1)); k != 0 {
		return errs.Invalid("trailing bytes after the data section")
	}
	for _, e := range ents {
		for i := range e.data {
			e.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		data = data[4*len(e.data):]
	}
	t.step, t.cursor, t.rng.S, t.cur = st.step, st.cursor, st.rng, nil
	return nil
}

// resumeState is the scalar state parsed from metadata.
type resumeState struct {
	step   int
	cursor Cursor
	rng    [4]uint64
}

// parseMeta validates the metadata against this trainer.
func (t *Trainer) parseMeta(meta map[string]string) (resumeState, error) {
	var st resumeState
	if f := meta["format"]; f != checkpointFormat {
		return st, errs.Invalid("metadata format: %q, want %q", f, checkpointFormat)
	}
	if err := t.compareOptions(meta["options"], meta["options_sha256"]); err != nil {
		return st, err
	}
	if o := meta["optimizer"]; o != t.opt.Name() {
		return st, errs.Invalid("metadata optimizer: checkpoint has %q, trainer uses %q", o, t.opt.Name())
	}
	ints := []struct {
		key string
		dst *int
		max int
	}{{"step", &st.step, t.total}, {"epoch", &st.cursor.Epoch, math.MaxInt32}, {"batch", &st.cursor.Batch, math.MaxInt32}}
	for _, f := range ints {
		v, err := strconv.Atoi(meta[f.key])
		if err != nil || v < 0 || v > f.max {
			return st, errs.Invalid("metadata %s: %q is not an integer in [0, %d]", f.key, meta[f.key], f.max)
		}
		*f.dst = v
	}
	if nb := len(t.planner.plan(st.cursor.Epoch).batches); st.cursor.Batch > nb {
		return st, errs.Invalid("metadata batch: %d is past the %d batches of epoch %d", st.cursor.Batch, nb, st.cursor.Epoch)
	}
	words := strings.Split(meta["rng"], ",")
	if len(words) != 4 {
		return st, errs.Invalid("metadata rng: want 4 hex words, got %q", meta["rng"])
	}
	for i, w := range words {
		v, err := strconv.ParseUint(w, 16, 64)
		if err != nil {
			return st, errs.Invalid("metadata rng word %d: %q is not hex", i, w)
		}
		st.rng[i] = v
	}
	if st.rng == [4]uint64{} {
		return st, errs.Invalid("metadata rng: all-zero state")
	}
	return st, nil
}

// compareOptions names the options that differ from the checkpoint's.
func (t *Trainer) compareOptions(stored, storedHash string) error {
	mine := t.opts.canonical()
	if stored == string(mine) && storedHash == t.opts.Hash() {
		return nil
	}
	var theirs, ours map[string]any
	if err := json.Unmarshal([]byte(stored), &theirs); err != nil {
		return errs.Invalid("metadata options: not a JSON object: %v", err)
	}
	// #nosec G104 -- mine was produced by json.Marshal of our own options, so it parses
	json.Unmarshal(mine, &ours)
	var diffs []string
	for _, k := range sortedKeys(ours, theirs) {
		a, b := theirs[k], ours[k]
		if fmt.Sprint(a) != fmt.Sprint(b) {
			diffs = append(diffs, fmt.Sprintf("%s (checkpoint %v, now %v)", k, a, b))
		}
	}
	if len(diffs) == 0 {
		return errs.Invalid("metadata options_sha256: %q does not match the options", storedHash)
	}
	return errs.Conflict("options differ from the checkpoint's: %s; resume with the original options", strings.Join(diffs, ", "))
}

func sortedKeys(ms ...map[string]any) []string {
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// checkTensors checks the header's tensors against the expected entries:
// same names, F32, same shapes, and offsets laid out back to back in order.
func checkTensors(raw map[string]json.RawMessage, ents []tensorEntry) error {
	var off int64
	for _, e := range ents {
		msg, ok := raw[e.name]
		if !ok {
			return errs.Conflict("tensor %q: missing from the checkpoint (model or optimizer differs)", e.name)
		}
		delete(raw, e.name)
		var h tensorHeader
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			return errs.Invalid("tensor %q header: %v", e.name, err)
		}
		if h.Dtype != "F32" {
			return errs.Invalid("tensor %q: dtype %q, want F32", e.name, h.Dtype)
		}
		if !slices.Equal(h.Shape, nonNil(e.dims)) {
			return errs.Conflict("tensor %q: shape %v in the checkpoint, %v in the model", e.name, h.Shape, e.dims)
		}
		end := off + 4*int64(len(e.data))
		if h.DataOffsets != [2]int64{off, end} {
			return errs.Invalid("tensor %q: data_offsets %v, want %v", e.name, h.DataOffsets, [2]int64{off, end})
		}
		off = end
	}
	if len(raw) > 0 {
		extra := make([]string, 0, len(raw))
		for k := range raw {
			extra = append(extra, k)
		}
		sort.Strings(extra)
		return errs.Conflict("tensor %q: in the checkpoint but not in the model or optimizer", extra[0])
	}
	return nil
}
