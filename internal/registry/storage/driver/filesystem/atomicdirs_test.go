package filesystem_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
)

func newChecked(t *testing.T, durable bool) (driver.Driver, string) {
	t.Helper()
	root := t.TempDir()
	fd, err := filesystem.New(filesystem.Options{RootDirectory: root, Durable: durable})
	if err != nil {
		t.Fatal(err)
	}
	return driver.Checked(fd), root
}

// entries lists the names in dir on disk, temporaries included.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestAtomicDirs(t *testing.T) {
	for _, durable := range []bool{true, false} {
		t.Run(map[bool]string{true: "durable", false: "nondurable"}[durable], func(t *testing.T) {
			ctx := context.Background()
			d, root := newChecked(t, durable)
			if !driver.SupportsAtomicDirs(d) {
				t.Fatal("the checked filesystem driver does not report atomic directories")
			}
			a := d.(driver.AtomicDirs)
			files := map[string][]byte{"current/link": []byte("one"), "index/sha256/ab/link": []byte("two")}
			if err := a.CreateDir(ctx, "/r/tags/t1", files); err != nil {
				t.Fatal(err)
			}
			for rel, want := range files {
				got, err := d.GetContent(ctx, "/r/tags/t1/"+rel)
				if err != nil || string(got) != string(want) {
					t.Errorf("%s = %q, %v; want %q", rel, got, err, want)
				}
			}
			if fi, err := os.Stat(filepath.Join(root, "r", "tags", "t1")); err != nil || fi.Mode().Perm() != 0o750 {
				t.Errorf("created directory: %v, %v", fi, err)
			}
			// The staging happened in /r, never in /r/tags.
			if got := entries(t, filepath.Join(root, "r", "tags")); !slices.Equal(got, []string{"t1"}) {
				t.Errorf("/r/tags holds %v", got)
			}
			if got := entries(t, filepath.Join(root, "r")); !slices.Equal(got, []string{"tags"}) {
				t.Errorf("/r holds %v after CreateDir", got)
			}
			// An existing non-empty directory is left alone.
			err := a.CreateDir(ctx, "/r/tags/t1", map[string][]byte{"current/link": []byte("other")})
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("CreateDir over a full directory: %v, want fs.ErrExist", err)
			}
			if got, _ := d.GetContent(ctx, "/r/tags/t1/current/link"); string(got) != "one" {
				t.Errorf("CreateDir over a full directory changed it: %q", got)
			}
			// An empty one is replaced.
			if err := os.Mkdir(filepath.Join(root, "r", "tags", "t2"), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := a.CreateDir(ctx, "/r/tags/t2", map[string][]byte{"current/link": []byte("x")}); err != nil {
				t.Errorf("CreateDir over an empty directory: %v", err)
			}
			if err := a.RemoveDir(ctx, "/r/tags/t1"); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Stat(ctx, "/r/tags/t1"); !driver.IsNotFound(err) {
				t.Errorf("after RemoveDir: %v", err)
			}
			if got := entries(t, filepath.Join(root, "r")); !slices.Equal(got, []string{"tags"}) {
				t.Errorf("/r holds %v after RemoveDir", got)
			}
			if err := a.RemoveDir(ctx, "/r/tags/t1"); !driver.IsNotFound(err) {
				t.Errorf("RemoveDir of a missing directory: %v", err)
			}
			var ip *driver.InvalidPathError
			for _, p := range []string{"/top", "/"} {
				if err := a.CreateDir(ctx, p, files); !errors.As(err, &ip) {
					t.Errorf("CreateDir(%s): %v, want an InvalidPathError", p, err)
				}
			}
			if err := a.CreateDir(ctx, "/r/tags/t3", map[string][]byte{"../escape": nil}); !errors.As(err, &ip) {
				t.Errorf("CreateDir with a relative file path: %v", err)
			}
			if err := a.RemoveDir(ctx, "/r/tags/t2/current/link"); !errors.As(err, &ip) {
				t.Errorf("RemoveDir of a file: %v", err)
			}
		})
	}
}

// TestTemporaryDirs: what a CreateDir killed before its rename, or a
// RemoveDir killed after it, leaves is a temporary directory that the
// Janitor reports once and removes whole, and that listings skip.
func TestTemporaryDirs(t *testing.T) {
	ctx := context.Background()
	d, root := newChecked(t, true)
	j := d.(driver.Janitor)
	tmp := filepath.Join(root, "r", ".gatehouse-tmp-7")
	if err := os.MkdirAll(filepath.Join(tmp, "current"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "current", "link"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := d.List(ctx, "/r"); err != nil || len(got) != 0 {
		t.Errorf("List(/r) = %v, %v; want nothing", got, err)
	}
	var found []string
	if err := j.WalkTemporaries(ctx, "/", func(fi driver.FileInfo) error {
		found = append(found, fi.Path())
		if !fi.IsDir() {
			t.Errorf("%s: reported as a file", fi.Path())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(found, []string{"/r/.gatehouse-tmp-7"}) {
		t.Fatalf("WalkTemporaries found %v", found)
	}
	if err := j.RemoveTemporary(ctx, found[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary directory still there: %v", err)
	}
}

func TestPutScratch(t *testing.T) {
	ctx := context.Background()
	d, root := newChecked(t, true)
	s, ok := d.(driver.ScratchWriter)
	if !ok {
		t.Fatal("the checked filesystem driver is not a ScratchWriter")
	}
	for _, content := range []string{"first", "second"} {
		if err := s.PutScratch(ctx, "/u/state", []byte(content)); err != nil {
			t.Fatal(err)
		}
		if got, err := d.GetContent(ctx, "/u/state"); err != nil || string(got) != content {
			t.Errorf("GetContent = %q, %v; want %q", got, err, content)
		}
	}
	if got := entries(t, filepath.Join(root, "u")); !slices.Equal(got, []string{"state"}) {
		t.Errorf("/u holds %v", got)
	}
	var ip *driver.InvalidPathError
	if err := s.PutScratch(ctx, "/u/../x", nil); !errors.As(err, &ip) {
		t.Errorf("PutScratch of a bad path: %v", err)
	}
}
