//go:build unix

package local

import (
	"errors"
	"os"
	"syscall"
)

var errLocked = errors.New("file is locked by another writer")

// lockFile takes an exclusive advisory lock on f. With wait false it fails
// with errLocked instead of waiting for another holder.
func lockFile(f *os.File, wait bool) error {
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLocked
		default:
			return err
		}
	}
}
