//go:build linux || darwin || freebsd

package safetensors

import (
	"os"
	"syscall"
)

// mapReadOnly maps the size bytes of f read-only and shared.
func mapReadOnly(f *os.File, size int64) ([]byte, bool, error) {
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func unmap(b []byte) error { return syscall.Munmap(b) }
