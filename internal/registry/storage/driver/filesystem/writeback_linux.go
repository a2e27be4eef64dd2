package filesystem

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing out n bytes of f from
// off, without waiting for them (sync_file_range with
// SYNC_FILE_RANGE_WRITE). It is a hint: durability still comes from the
// fsync at Commit, so errors are ignored.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE) //nolint:gosec // a file descriptor fits in an int
	})
}
