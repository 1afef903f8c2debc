// Package reqlog is the serving request log that deployment comparisons read: an
// append-only JSON Lines log of sampled requests, each record with a
// strictly increasing sequence number, rotated into segment files by size
// and read back in order from any sequence number.
//
// On-disk format (docs/serving.md): a directory of segment files named
// "requests-<first seq, 20 digits>.jsonl"; each line is one Record as JSON.
// A segment is closed when it reaches MaxSegmentBytes; a torn last line
// (a crash mid-write) is cut off when the log is reopened. Retention
// (MaxBytes, MaxAge) deletes whole segments, oldest first.
//
// It imports nothing from Tailor but errs.
package reqlog

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Record is one logged request.
type Record struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	Endpoint  string    `json:"endpoint"` // "chat", "completion", "classify"
	Model     string    `json:"model"`    // the id the client asked for
	Version   string    `json:"version"`  // what answered: "name@vN"
	VersionID string    `json:"version_id,omitempty"`
	Variant   string    `json:"variant,omitempty"` // "primary", "canary", "shadow", or "" (no deployment)
	Input     string    `json:"input"`
	Output    string    `json:"output,omitempty"`
	Label     string    `json:"label,omitempty"`
	// Confidence is the predicted label's probability (classify).
	Confidence       float64 `json:"confidence,omitempty"`
	LatencyMS        float64 `json:"latency_ms"`
	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	Status           int     `json:"status"`
	Error            string  `json:"error,omitempty"`
	// Project is the request's scope (serve.Options.Scope: the project
	// Model was resolved in); "" in records from before projects, and
	// without a scope.
	Project string `json:"project,omitempty"`
}

// Options configure Open. Zero values take the documented defaults.
type Options struct {
	Dir string // required
	// SampleRate is the share of requests logged, in [0, 1] (default 0: log
	// nothing; set 1 to log every request). The choice is deterministic:
	// a request is logged when the first 8 bytes of sha256(request id),
	// read big-endian, divided by 2^64 are below SampleRate.
	SampleRate float64
	// Redact lists regular expressions; every match in inputs and outputs
	// is replaced by "[REDACTED]".
	Redact []string
	// MaxSegmentBytes rotates to a new segment past this size (default 64
	// MiB; at most MaxBytes/4 when MaxBytes is set).
	MaxSegmentBytes int64
	// MaxBytes bounds the bytes of all segment files together (default 0:
	// no bound). Past it the oldest segments are deleted; the log keeps at
	// least half of MaxBytes of the newest records. A single record larger
	// than a segment is the one thing that can pass it.
	MaxBytes int64
	// MaxAge deletes a segment once its newest record is older than this
	// (default 0: no bound). A segment is closed once its oldest record is
	// MaxAge/10 old, so no record outlives MaxAge by more than a tenth of it
	// plus the time until the next Prune.
	MaxAge time.Duration
	Now    func() time.Time
}

// Writer appends records. It is safe for concurrent use.
type Writer struct {
	opts   Options
	redact []*regexp.Regexp

	mu   sync.Mutex
	f    *os.File
	size int64
	next int64
	// cur describes the open segment (path "" before the first); closed
	// lists the others, oldest first, for retention.
	cur    segInfo
	closed []segInfo
}

const segPrefix, segSuffix = "requests-", ".jsonl"

// Open opens (creating if needed) the log in opts.Dir and continues after
// its last record.
func Open(opts Options) (*Writer, error) {
	if opts.Dir == "" {
		return nil, errs.Invalid("request log: a directory is required")
	}
	if opts.SampleRate < 0 || opts.SampleRate > 1 {
		return nil, errs.Invalid("request log: sample rate %g must be in [0, 1]", opts.SampleRate)
	}
	if opts.MaxBytes < 0 || opts.MaxAge < 0 {
		return nil, errs.Invalid("request log: retention bounds must not be negative (max bytes %d, max age %s); 0 means no bound", opts.MaxBytes, opts.MaxAge)
	}
	if opts.MaxSegmentBytes <= 0 {
		opts.MaxSegmentBytes = 64 << 20
	}
	if opts.MaxBytes > 0 {
		opts.MaxSegmentBytes = max(1, min(opts.MaxSegmentBytes, opts.MaxBytes/4))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Writer{opts: opts, next: 1}
	for i, r := range opts.Redact {
		re, err := regexp.Compile(r)
		if err != nil {
			return nil, errs.Invalid("request log: redact[%d] %q: %v", i, r, err)
		}
		w.redact = append(w.redact, re)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil { // sampled prompts and outputs: owner only
		return nil, fmt.Errorf("request log: %w", err)
	}
	segs, err := segments(opts.Dir)
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		for _, seg := range segs[:len(segs)-1] {
			info, err := closedInfo(seg)
			if err != nil {
				return nil, err
			}
			w.closed = append(w.closed, info)
		}
		if err := w.recover(segs[len(segs)-1]); err != nil {
			return nil, err
		}
	}
	if _, err := w.Prune(); err != nil {
		// #nosec G104 -- cleanup on an error path; the prune error is returned
		w.Close()
		return nil, err
	}
	return w, nil
}

// recover reopens the last segment, cuts a torn last line and finds the
// next sequence number.
func (w *Writer) recover(seg segment) error {
	raw, err := os.ReadFile(seg.path)
	if err != nil {
		return fmt.Errorf("request log: %w", err)
	}
	good := bytes.LastIndexByte(raw, '\n') + 1
	w.next = seg.first
	w.cur = segInfo{segment: seg}
	for line := range bytes.Lines(raw[:good]) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return errs.Invalid("request log %s: record after seq %d: %v", seg.path, w.next-1, err)
		}
		w.next = r.Seq + 1
		w.cur.saw(r.Time)
	}
	f, err := os.OpenFile(seg.path, os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("request log: %w", err)
	}
	if err := f.Truncate(int64(good)); err != nil {
		// #nosec G104 -- cleanup on an error path; the truncate error is returned
		f.Close()
		return fmt.Errorf("request log: %w", err)
	}
	if _, err := f.Seek(int64(good), 0); err != nil {
		// #nosec G104 -- cleanup on an error path; the seek error is returned
		f.Close()
		return err
	}
	w.f, w.size = f, int64(good)
	return nil
}

// Sampled reports whether the request with this id is logged.
func (w *Writer) Sampled(requestID string) bool {
	if w == nil || w.opts.SampleRate <= 0 {
		return false
	}
	if w.opts.SampleRate >= 1 {
		return true
	}
	h := sha256.Sum256([]byte(requestID))
	return float64(binary.BigEndian.Uint64(h[:8]))/(1<<64) < w.opts.SampleRate
}

// Redact applies the redaction rules to s.
func (w *Writer) Redact(s string) string {
	for _, re := range w.redact {
		s = re.ReplaceAllString(s, "[REDACTED]")
	}
	return s
}

// Append redacts r's input and output, stamps it with the next sequence
// number (and the time when unset) and writes it. It returns the sequence
// number.
func (w *Writer) Append(r Record) (int64, error) {
	r.Input, r.Output = w.Redact(r.Input), w.Redact(r.Output)
	if r.Time.IsZero() {
		r.Time = w.opts.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r.Seq = w.next
	line, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("request log: %w", err)
	}
	line = append(line, '\n')
	if w.f == nil || w.size > 0 && (w.size+int64(len(line)) > w.opts.MaxSegmentBytes || w.agedOut()) {
		if err := w.rotate(); err != nil {
			return 0, err
		}
		if err := w.prune(); err != nil {
			return 0, err
		}
	}
	if _, err := w.f.Write(line); err != nil {
		return 0, fmt.Errorf("request log: %w", err)
	}
	w.size += int64(len(line))
	w.next++
	w.cur.saw(r.Time)
	return r.Seq, nil
}

// rotate closes the current segment, if any, and starts the next one,
// named by the next sequence number (so an empty segment still says where
// the sequence goes on after a restart).
func (w *Writer) rotate() error {
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("request log: %w", err)
		}
		w.f = nil
	}
	if w.cur.path != "" {
		w.cur.bytes = w.size
		w.closed = append(w.closed, w.cur)
	}
	path := filepath.Join(w.opts.Dir, fmt.Sprintf("%s%020d%s", segPrefix, w.next, segSuffix))
	// #nosec G304 -- a new segment named by its sequence number inside the log dir
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		w.cur = segInfo{}
		return fmt.Errorf("request log: %w", err)
	}
	w.f, w.size, w.cur = f, 0, segInfo{segment: segment{path: path, first: w.next}}
	return nil
}

// Sync flushes the current segment to disk.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	return w.f.Sync()
}

// Close closes the current segment.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

type segment struct {
	path  string
	first int64
}

// segments lists the log's segment files by first sequence number.
func segments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("request log: %w", err)
	}
	var out []segment
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutPrefix(name, segPrefix)
		if !ok || !strings.HasSuffix(num, segSuffix) {
			continue
		}
		first, err := strconv.ParseInt(strings.TrimSuffix(num, segSuffix), 10, 64)
		if err != nil || first < 1 {
			continue
		}
		out = append(out, segment{path: filepath.Join(dir, name), first: first})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].first < out[j].first })
	return out, nil
}

// Reader reads the log in order.
type Reader struct {
	Dir string
}

// ReadFrom calls fn for every record with Seq >= seq, in order, until fn
// returns false or the log ends. It returns the sequence number to read
// from next time. Records deleted by retention are skipped: the first
// record read may have a Seq above seq (compare to tell). A torn last line
// (a write in progress) ends the read without error; a malformed record
// elsewhere is an error naming its file and line.
func (r *Reader) ReadFrom(seq int64, fn func(Record) bool) (next int64, err error) {
	segs, err := segments(r.Dir)
	if err != nil {
		return seq, err
	}
	next = seq
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].first <= seq {
			continue // every record of s is older
		}
		cont, err := readSegment(s, seq, &next, fn)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted by retention since it was listed
		}
		if err != nil || !cont {
			return next, err
		}
	}
	return next, nil
}

func readSegment(s segment, seq int64, next *int64, fn func(Record) bool) (bool, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return false, fmt.Errorf("request log: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 || b[len(b)-1] != '\n' {
			return true, nil // end, or a torn line still being written
		}
		var rec Record
		if jerr := json.Unmarshal(b, &rec); jerr != nil {
			return false, errs.Invalid("request log %s line %d: %v", s.path, line, jerr)
		}
		if rec.Seq >= seq {
			*next = rec.Seq + 1
			if !fn(rec) {
				return false, nil
			}
		}
		if err != nil {
			return true, nil
		}
	}
}
