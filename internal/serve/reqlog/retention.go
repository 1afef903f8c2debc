package reqlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// segInfo is what retention knows of a segment: its size and the times of
// its oldest and newest records (zero while it has none).
type segInfo struct {
	segment
	bytes          int64
	oldest, newest time.Time
}

// saw widens the segment's time span to include t.
func (s *segInfo) saw(t time.Time) {
	if s.oldest.IsZero() || t.Before(s.oldest) {
		s.oldest = t
	}
	if t.After(s.newest) {
		s.newest = t
	}
}

// agedOut reports whether the open segment's oldest record is a tenth of
// MaxAge old, so the segment is closed and can age out as a whole.
func (w *Writer) agedOut() bool {
	return w.opts.MaxAge > 0 && !w.cur.oldest.IsZero() && w.opts.Now().Sub(w.cur.oldest) >= w.opts.MaxAge/10
}

// Prune enforces MaxAge and MaxBytes now: it closes the open segment once
// it is old enough (see Options.MaxAge) and deletes the segments past
// either bound, oldest first. Append prunes at every new segment; call
// Prune periodically as well, so an idle log ages out too. It returns the
// number of segments deleted.
func (w *Writer) Prune() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.closed)
	if w.f != nil && w.size > 0 && w.agedOut() {
		if err := w.rotate(); err != nil {
			return 0, err
		}
		n++
	}
	err := w.prune()
	return n - len(w.closed), err
}

// prune deletes closed segments, oldest first, while the oldest's newest
// record is older than MaxAge or the closed segments and a full open one
// together would pass MaxBytes. The open segment is never deleted.
func (w *Writer) prune() error {
	var total int64
	for _, s := range w.closed {
		total += s.bytes
	}
	cutoff := w.opts.Now().Add(-w.opts.MaxAge)
	for len(w.closed) > 0 {
		s := w.closed[0]
		byAge := w.opts.MaxAge > 0 && s.newest.Before(cutoff)
		bySize := w.opts.MaxBytes > 0 && total+w.opts.MaxSegmentBytes > w.opts.MaxBytes
		if !byAge && !bySize {
			return nil
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("request log retention: %w", err)
		}
		total -= s.bytes
		w.closed = w.closed[1:]
	}
	return nil
}

// closedInfo reads a closed segment's size and its last record's time.
// Records are appended as requests finish and stamped with their start,
// so the last one is the newest but for requests that ran longer than the
// one after them: close enough for retention.
func closedInfo(seg segment) (segInfo, error) {
	info := segInfo{segment: seg}
	f, err := os.Open(seg.path)
	if err != nil {
		return info, fmt.Errorf("request log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return info, fmt.Errorf("request log: %w", err)
	}
	info.bytes = st.Size()
	line, err := lastLine(f, info.bytes)
	if err != nil {
		return info, fmt.Errorf("request log %s: %w", seg.path, err)
	}
	if len(line) == 0 {
		return info, nil
	}
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return info, errs.Invalid("request log %s: last record: %v", seg.path, err)
	}
	info.saw(r.Time)
	return info, nil
}

// lastLine returns the last complete line of f (size bytes), without its
// newline, reading backwards from the end.
func lastLine(f io.ReaderAt, size int64) ([]byte, error) {
	const chunk = 64 << 10
	var tail []byte
	for pos := size; pos > 0; {
		n := min(chunk, pos)
		pos -= n
		buf := make([]byte, n, n+int64(len(tail)))
		if _, err := f.ReadAt(buf, pos); err != nil {
			return nil, err
		}
		tail = append(buf, tail...)
		end := bytes.LastIndexByte(tail, '\n')
		if end < 0 {
			continue // no complete line yet
		}
		if start := bytes.LastIndexByte(tail[:end], '\n'); start >= 0 {
			return tail[start+1 : end], nil
		}
		if pos == 0 {
			return tail[:end], nil
		}
	}
	return nil, nil // no complete line
}
