package filesystem

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

func TestWrapFullDisk(t *testing.T) {
	d, err := New(Options{RootDirectory: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, errno := range []error{syscall.ENOSPC, syscall.EDQUOT} {
		err := d.wrap("/a/data", &fs.PathError{Op: "write", Path: d.root + "/a/data", Err: errno})
		if !errors.Is(err, driver.ErrNoSpace) {
			t.Errorf("%v: %v does not wrap ErrNoSpace", errno, err)
		}
		if strings.Contains(err.Error(), d.root) {
			t.Errorf("%v: error %q shows the root directory", errno, err)
		}
	}
	if err := d.wrap("/a", &fs.PathError{Op: "open", Path: d.root + "/a", Err: syscall.EACCES}); errors.Is(err, driver.ErrNoSpace) {
		t.Errorf("EACCES wraps ErrNoSpace: %v", err)
	}
}
