//go:build linux || darwin || freebsd

package app

import "syscall"

// diskFree is the number of bytes an unprivileged process may still write
// on the file system holding dir (statfs: available blocks × block size).
func diskFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	// #nosec G115 -- statfs block counts and sizes are far below 2^63 on any real filesystem
	return int64(st.Bavail) * int64(st.Bsize), nil
}
