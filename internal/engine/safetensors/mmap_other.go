//go:build !(linux || darwin || freebsd)

package safetensors

import (
	"io"
	"os"
)

// mapReadOnly reads f into the heap where there is no mmap.
func mapReadOnly(f *os.File, size int64) ([]byte, bool, error) {
	b := make([]byte, size)
	_, err := f.ReadAt(b, 0)
	if err == io.EOF {
		err = nil
	}
	return b, false, err
}

func unmap([]byte) error { return nil }
