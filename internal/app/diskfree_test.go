//go:build linux || darwin || freebsd

package app

import (
	"syscall"
	"testing"
)

// diskFree reads statfs in bytes: positive, and no more than the file
// system holds.
func TestDiskFreeIsInBytes(t *testing.T) {
	dir := t.TempDir()
	free, err := diskFree(dir)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if total := int64(st.Blocks) * int64(st.Bsize); free <= 0 || free > total {
		t.Fatalf("diskFree %d bytes, file system %d bytes", free, total)
	}
	if _, err := diskFree(dir + "/missing"); err == nil {
		t.Fatal("diskFree of a missing folder gave no error")
	}
}
