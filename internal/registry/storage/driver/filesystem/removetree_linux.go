//go:build linux

package filesystem

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// removeTree removes fp and, if it is a directory, everything below it,
// without following symbolic links. It does what os.RemoveAll does in
// fewer system calls, which is most of GC's sweep: os.RemoveAll first
// tries unlink(2) and rmdir(2) on the path itself, which fail for a
// directory that has entries, then opens its parent and tries again from
// there before it reads the directory. Here a directory is opened,
// read, its entries removed by name relative to it (the kernel's entry
// types tell files from directories, no stat needed), and removed; a blob
// directory holding its data file costs five calls. An fp that does not
// exist gives an error matching fs.ErrNotExist; anything below it that
// disappears meanwhile (removed by someone else) is no error.
func removeTree(fp string) error {
	if err := removeAt(unix.AT_FDCWD, fp, true); err != nil {
		return &fs.PathError{Op: "remove", Path: fp, Err: err}
	}
	return nil
}

// direntBufs holds the buffers directories are read into, one per
// directory being removed at a time.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// direntMax is the size of the largest directory entry getdents64 can
// return (a 255-byte name, rounded up). A read that leaves more room
// than this in the buffer most likely reached the end of the directory.
const direntMax = 19 + 256 + 5

// removeAt removes name, relative to the directory dirfd. ENOENT for
// name itself is returned only when top is set.
func removeAt(dirfd int, name string, top bool) error {
	fd, err := openDir(dirfd, name)
	switch {
	case errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP):
		// A file, or a symbolic link (O_NOFOLLOW): remove it, never what
		// a link points to.
		err = unlinkAt(dirfd, name, 0)
		if errors.Is(err, unix.EISDIR) {
			// Replaced by a directory in between.
			return removeAt(dirfd, name, top)
		}
		if errors.Is(err, unix.ENOENT) && !top {
			return nil
		}
		return err
	case errors.Is(err, unix.ENOENT) && !top:
		return nil
	case err != nil:
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	// Rounds: read the directory, removing each entry, and remove the
	// directory once it is empty. rmdir(2) is the judge of empty, so it
	// is tried as soon as a read looks like the last one (which saves
	// the read that returns nothing). An entry added while this runs
	// keeps rmdir failing: the directory is then read again from the
	// start, for as long as a round removes something.
	for {
		removed := 0
		for {
			n, err := getdents(fd, buf)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			k, err := removeEntries(fd, buf[:n])
			removed += k
			if err != nil {
				return err
			}
			if len(buf)-n < direntMax {
				continue // the buffer was full: more to read
			}
			if done, err := rmdirAt(dirfd, name); done || err != nil {
				return err
			}
		}
		if done, err := rmdirAt(dirfd, name); done || err != nil {
			return err
		}
		if removed == 0 {
			return unix.ENOTEMPTY
		}
		if _, err := unix.Seek(fd, 0, 0); err != nil {
			return err
		}
	}
}

// rmdirAt removes the empty directory name. done reports that it is gone
// (removed, or already removed by someone else); a directory that still
// has entries is neither done nor an error.
func rmdirAt(dirfd int, name string) (done bool, err error) {
	err = unlinkAt(dirfd, name, unix.AT_REMOVEDIR)
	switch {
	case err == nil || errors.Is(err, unix.ENOENT):
		return true, nil
	case errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST):
		return false, nil
	}
	return false, err
}

// removeEntries removes the entries getdents64 put in buf from the
// directory fd and returns how many it removed.
func removeEntries(fd int, buf []byte) (int, error) {
	removed := 0
	for len(buf) > 0 {
		// struct linux_dirent64: d_ino (8 bytes), d_off (8), d_reclen (2),
		// d_type (1), d_name (NUL-terminated).
		if len(buf) < 19 {
			return removed, unix.EIO
		}
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < 19 || reclen > len(buf) {
			return removed, unix.EIO
		}
		typ := buf[18]
		nameBytes := buf[19:reclen]
		for i, c := range nameBytes {
			if c == 0 {
				nameBytes = nameBytes[:i]
				break
			}
		}
		buf = buf[reclen:]
		name := string(nameBytes)
		if name == "." || name == ".." {
			continue
		}
		var err error
		if typ == unix.DT_DIR {
			err = removeAt(fd, name, false)
		} else {
			// DT_UNKNOWN (filesystems that do not fill d_type) is tried
			// as a file first; unlink refuses a directory with EISDIR.
			err = unlinkAt(fd, name, 0)
			if errors.Is(err, unix.EISDIR) {
				err = removeAt(fd, name, false)
			}
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// The calls below retry when interrupted by a signal, as package os does.

func openDir(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR { //nolint:errorlint // a raw errno
			return fd, err
		}
	}
}

func getdents(fd int, buf []byte) (int, error) {
	for {
		n, err := unix.Getdents(fd, buf)
		if err != unix.EINTR { //nolint:errorlint // a raw errno
			return n, err
		}
	}
}

func unlinkAt(dirfd int, name string, flags int) error {
	for {
		err := unix.Unlinkat(dirfd, name, flags)
		if err != unix.EINTR { //nolint:errorlint // a raw errno
			return err
		}
	}
}
