package basemodel

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

// tensorRecord is what Import keeps of one tensor: where it is, and the
// sha256 of its data bytes.
type tensorRecord struct {
	File   string
	Info   safetensors.TensorInfo
	Digest [32]byte
}

// scanReader passes a safetensors file through to the sink while checking
// it. The header is read and validated before the first byte is passed on;
// then each tensor's bytes are hashed as they stream by. Any violation
// fails the read, so the sink never completes a bad blob.
type scanReader struct {
	name string
	src  io.Reader
	size int64

	header  *safetensors.Header
	pending []byte                   // header bytes not yet passed on
	order   []safetensors.TensorInfo // by offset
	digests map[string][32]byte
	next    int   // index into order of the first tensor not finished
	pos     int64 // data-section offset of the next byte
	cur     hash.Hash
	err     error
}

func newScanReader(name string, src io.Reader, size int64) *scanReader {
	return &scanReader{name: name, src: src, size: size, digests: map[string][32]byte{}}
}

func (s *scanReader) fail(err error) (int, error) {
	s.err = err
	return 0, err
}

func (s *scanReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.header == nil {
		var buf bytes.Buffer
		h, err := safetensors.ReadHeader(io.TeeReader(s.src, &buf), s.size)
		if err != nil {
			return s.fail(fmt.Errorf("%s: %w", s.name, err))
		}
		s.header, s.pending, s.order = h, buf.Bytes(), h.ByOffset()
		s.finishEmpty()
	}
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	left := s.header.DataSize - s.pos
	if left == 0 {
		// Anything past the declared size means the entry lied about it.
		var one [1]byte
		if n, _ := s.src.Read(one[:]); n > 0 {
			return s.fail(errs.Invalid("%s: file is longer than its declared %d bytes", s.name, s.size))
		}
		s.finishEmpty()
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := s.src.Read(p)
	s.hash(p[:n])
	if err == io.EOF && s.pos < s.header.DataSize {
		return s.fail(errs.Invalid("%s: file ends after %d of %d bytes", s.name, s.header.DataStart+s.pos, s.size))
	}
	if err != nil && err != io.EOF {
		return s.fail(fmt.Errorf("%s: %w", s.name, err))
	}
	return n, nil
}

// hash feeds data-section bytes [pos, pos+len(b)) to the tensors they
// belong to. Bytes in gaps between tensors belong to none.
func (s *scanReader) hash(b []byte) {
	for len(b) > 0 {
		s.finishEmpty()
		if s.next >= len(s.order) {
			s.pos += int64(len(b))
			return
		}
		t := s.order[s.next]
		if s.pos < t.Begin { // gap before the tensor
			skip := min(int64(len(b)), t.Begin-s.pos)
			s.pos += skip
			b = b[skip:]
			continue
		}
		if s.cur == nil {
			s.cur = sha256.New()
		}
		take := min(int64(len(b)), t.End-s.pos)
		s.cur.Write(b[:take])
		s.pos += take
		b = b[take:]
		if s.pos == t.End {
			var d [32]byte
			s.cur.Sum(d[:0])
			s.digests[t.Name] = d
			s.cur = nil
			s.next++
		}
	}
}

// finishEmpty records the digest of zero-length tensors at the cursor.
func (s *scanReader) finishEmpty() {
	for s.next < len(s.order) && s.order[s.next].Begin == s.order[s.next].End && s.order[s.next].Begin <= s.pos {
		s.digests[s.order[s.next].Name] = sha256.Sum256(nil)
		s.next++
	}
}

// records returns the tensors with their digests; call after a full read.
func (s *scanReader) records() ([]tensorRecord, error) {
	if s.header == nil || len(s.digests) != len(s.header.Tensors) {
		return nil, errs.Invalid("%s: file was not read to the end", s.name)
	}
	out := make([]tensorRecord, len(s.header.Tensors))
	for i, t := range s.header.Tensors {
		out[i] = tensorRecord{File: s.name, Info: t, Digest: s.digests[t.Name]}
	}
	return out, nil
}
