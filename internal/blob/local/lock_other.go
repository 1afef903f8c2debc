//go:build !unix

package local

import (
	"errors"
	"os"
)

var errLocked = errors.New("file is locked by another writer")

// lockFile has no advisory locks to use on this platform: waiting succeeds
// at once, and a non-waiting lock always reports errLocked, so Open never
// removes temp files another process may still be writing.
func lockFile(f *os.File, wait bool) error {
	if wait {
		return nil
	}
	return errLocked
}
