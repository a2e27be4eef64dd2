package filesystem_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
)

func TestJanitor(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	fd, err := filesystem.New(filesystem.Options{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	d := driver.Checked(fd)
	j, ok := d.(driver.Janitor)
	if !ok {
		t.Fatal("the checked filesystem driver is not a Janitor")
	}
	if err := d.PutContent(ctx, "/a/b/file", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// What a PutContent killed before its rename leaves.
	tmp := filepath.Join(root, "a", "b", ".gatehouse-tmp-123")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	var found []string
	if err := j.WalkTemporaries(ctx, "/", func(fi driver.FileInfo) error {
		found = append(found, fi.Path())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0] != "/a/b/.gatehouse-tmp-123" {
		t.Fatalf("WalkTemporaries found %v", found)
	}
	var ip *driver.InvalidPathError
	if err := j.RemoveTemporary(ctx, "/a/b/file"); !errors.As(err, &ip) {
		t.Errorf("RemoveTemporary of a regular file: %v", err)
	}
	if err := j.RemoveEmptyDir(ctx, "/a/b"); !errors.Is(err, driver.ErrDirNotEmpty) {
		t.Errorf("RemoveEmptyDir of a full directory: %v", err)
	}
	if err := j.RemoveTemporary(ctx, found[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary still there: %v", err)
	}
	if err := d.Delete(ctx, "/a/b/file"); err != nil {
		t.Fatal(err)
	}
	if err := j.RemoveEmptyDir(ctx, "/a/b"); err != nil {
		t.Errorf("RemoveEmptyDir of an empty directory: %v", err)
	}
	if _, err := d.Stat(ctx, "/a/b"); !driver.IsNotFound(err) {
		t.Errorf("/a/b still there: %v", err)
	}
	if err := j.RemoveEmptyDir(ctx, "/"); !errors.As(err, &ip) {
		t.Errorf("RemoveEmptyDir(/): %v", err)
	}
}
