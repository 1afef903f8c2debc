package data

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errLineTooLong is returned by lineReader.next when a line passes the limit.
var errLineTooLong = errors.New("line too long")

// lineReader reads "\n"-terminated lines holding at most max bytes each in
// memory: a longer line fails as soon as max bytes of it have been read.
type lineReader struct {
	br   *bufio.Reader
	max  int
	buf  []byte
	line int64 // 1-based number of the line last returned
	// terminated reports whether the last line returned ended in "\n".
	terminated bool
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its "\n" (and a trailing "\r"); the
// slice is valid until the next call. It returns io.EOF after the last line.
func (l *lineReader) next() ([]byte, error) {
	l.buf = l.buf[:0]
	for {
		frag, err := l.br.ReadSlice('\n')
		if len(l.buf)+len(frag) > l.max+1 { // +1: the "\n" itself
			l.line++
			return nil, errLineTooLong
		}
		switch {
		case err == nil:
			l.line++
			l.terminated = true
			var line []byte
			if len(l.buf) == 0 {
				line = frag
			} else {
				l.buf = append(l.buf, frag...)
				line = l.buf
			}
			line = line[:len(line)-1]
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			l.buf = append(l.buf, frag...)
		case errors.Is(err, io.EOF):
			l.buf = append(l.buf, frag...)
			if len(l.buf) == 0 {
				return nil, io.EOF
			}
			l.line++
			l.terminated = false
			return bytes.TrimSuffix(l.buf, []byte{'\r'}), nil
		default:
			return nil, err
		}
	}
}
