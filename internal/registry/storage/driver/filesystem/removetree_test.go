package filesystem_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
)

// bigTree writes, below root/rel, a directory too large for one read of
// its entries (long names), nested directories, an empty directory and
// symbolic links to a directory and a file outside the tree. It returns
// the outside directory, which Delete must leave alone.
func bigTree(t *testing.T, root, rel string) (outside string) {
	t.Helper()
	base := filepath.Join(root, rel)
	long := strings.Repeat("n", 120)
	for i := range 600 {
		if err := os.MkdirAll(filepath.Join(base, "wide"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, "wide", fmt.Sprintf("%s-%04d", long, i)), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deep := filepath.Join(base, "a", "b", "c", "d")
	if err := os.MkdirAll(deep, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "data"), []byte("deep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	outside = t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "precious"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(base, "a", "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "precious"), filepath.Join(base, "filelink")); err != nil {
		t.Fatal(err)
	}
	return outside
}

func TestDeleteTree(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := filesystem.New(filesystem.Options{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	outside := bigTree(t, root, "t/tree")
	if err := os.WriteFile(filepath.Join(root, "t", "sibling"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/t/tree"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "t", "tree")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tree still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "t", "sibling")); err != nil {
		t.Errorf("sibling removed: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(b) != "keep" {
		t.Errorf("a symbolic link was followed: %q, %v", b, err)
	}

	// A symbolic link given to Delete goes, not what it points to.
	if err := os.Symlink(outside, filepath.Join(root, "t", "link")); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/t/link"); err != nil {
		t.Fatalf("Delete of a link: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "t", "link")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "precious")); err != nil {
		t.Errorf("link target removed: %v", err)
	}

	for _, p := range []string{"/t/missing", "/t/sibling/below"} {
		var nf *driver.PathNotFoundError
		if err := d.Delete(ctx, p); !errors.As(err, &nf) {
			t.Errorf("Delete %s: %v, want a PathNotFoundError", p, err)
		}
	}
	var ip *driver.InvalidPathError
	if err := d.Delete(ctx, "/"); !errors.As(err, &ip) {
		t.Errorf("Delete /: %v, want an InvalidPathError", err)
	}
	if _, err := os.Stat(filepath.Join(root, "t", "sibling")); err != nil {
		t.Errorf("Delete / removed something: %v", err)
	}
}

// TestDeleteConcurrent removes trees while another goroutine removes
// their files, in the order the directory lists them (the order Delete
// reads them in): many of the entries Delete has read are gone when it
// gets to them. Delete must still succeed, and leave nothing.
func TestDeleteConcurrent(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := filesystem.New(filesystem.Options{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		rel := fmt.Sprintf("c/tree%d", round)
		bigTree(t, root, rel)
		wide := filepath.Join(root, rel, "wide")
		var wg sync.WaitGroup
		wg.Go(func() {
			f, err := os.Open(wide)
			if err != nil {
				return
			}
			defer func() { _ = f.Close() }()
			names, _ := f.Readdirnames(-1) // directory order, unsorted
			for _, n := range names {
				_ = os.Remove(filepath.Join(wide, n))
			}
		})
		err := d.Delete(ctx, "/"+rel)
		wg.Wait()
		if err != nil {
			t.Errorf("round %d: Delete: %v", round, err)
		}
		if _, err := os.Lstat(filepath.Join(root, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("round %d: tree still there: %v", round, err)
		}
	}
}

// TestWalkInfo checks the FileInfo Walk gives, whose lstat is made only
// when Size or ModTime asks for it: the file's own figures, and for an
// entry removed after its directory was read, size 0 and a time that
// makes it look new.
func TestWalkInfo(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := filesystem.New(filesystem.Options{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/w/a", "/w/b"} {
		if err := d.PutContent(ctx, p, []byte("12345")); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "w", "a"), old, old); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	seen := map[string]bool{}
	err = d.Walk(ctx, "/w", func(fi driver.FileInfo) error {
		seen[fi.Path()] = true
		switch fi.Path() {
		case "/w/a":
			if fi.IsDir() || fi.Size() != 5 || !fi.ModTime().Equal(old) {
				t.Errorf("/w/a: dir %v, size %d, time %v; want a file of 5 bytes from %v", fi.IsDir(), fi.Size(), fi.ModTime(), old)
			}
			// Gone before its turn comes.
			if err := os.Remove(filepath.Join(root, "w", "b")); err != nil {
				t.Fatal(err)
			}
		case "/w/b":
			if fi.Size() != 0 || fi.ModTime().Before(start) {
				t.Errorf("removed /w/b: size %d, time %v; want 0 and no earlier than %v", fi.Size(), fi.ModTime(), start)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !seen["/w/a"] || !seen["/w/b"] {
		t.Errorf("walked %v, want /w/a and /w/b", seen)
	}
}

// TestDeleteWhileAdding removes a wide directory while another goroutine
// keeps adding files to it, as a writer racing GC would. Delete must end,
// and either remove the directory or refuse with "directory not empty"
// (a file added after its last read); once the writer has stopped, a
// Delete removes everything it added.
func TestDeleteWhileAdding(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := filesystem.New(filesystem.Options{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		rel := fmt.Sprintf("a/tree%d", round)
		bigTree(t, root, rel)
		wide := filepath.Join(root, rel, "wide")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := os.WriteFile(filepath.Join(wide, fmt.Sprintf("new-%d", i)), nil, 0o600); err != nil {
					return // the directory is gone
				}
			}
		})
		err := d.Delete(ctx, "/"+rel)
		close(stop)
		wg.Wait()
		if err != nil && !errors.Is(err, syscall.ENOTEMPTY) {
			t.Fatalf("round %d: Delete while adding: %v", round, err)
		}
		if err != nil {
			if err := d.Delete(ctx, "/"+rel); err != nil {
				t.Fatalf("round %d: Delete after the writer stopped: %v", round, err)
			}
		}
		if _, err := os.Lstat(filepath.Join(root, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("round %d: tree still there: %v", round, err)
		}
	}
}
