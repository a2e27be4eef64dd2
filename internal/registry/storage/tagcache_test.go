package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCacheable(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 10, 0, time.UTC)
	for _, tc := range []struct {
		name string
		mod  time.Time
		want bool
	}{
		{"fine, well before", start.Add(-time.Second + time.Microsecond), true},
		{"fine, within a tick", start.Add(-5 * time.Millisecond), false},
		{"fine, after the start", start.Add(time.Millisecond), false},
		{"whole seconds, 3 s before", start.Add(-3 * time.Second), true},
		{"whole seconds, 1 s before", start.Add(-time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cacheable(tc.mod, start); got != tc.want {
				t.Errorf("cacheable(%v, %v) = %v, want %v", tc.mod, start, got, tc.want)
			}
		})
	}
}

// TestTagListingCache: on the filesystem driver a tags list reads the
// tags directory once per change of its modification time; a tag pushed
// or deleted since is seen at once.
func TestTagListingCache(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	fd, err := filesystem.New(filesystem.Options{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	reg := New(driver.Checked(fd), Options{Delete: true})
	if reg.dirs == nil {
		t.Fatal("the filesystem driver has no atomic directories")
	}
	r := mustRepo(t, reg, "cache/me")
	desc, _, _ := pushImage(t, r, "a", "x")
	payload := mustManifest(t, reg, r, desc.Digest)
	list := func() string {
		t.Helper()
		tags, _, err := r.Tags(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(tags)
	}
	// Age the directory past a tick so that the listing is kept.
	dir := filepath.Join(root, filepath.FromSlash(tagsDir(r.Name())))
	old := time.Now().Add(-time.Minute).Truncate(time.Millisecond).Add(123 * time.Microsecond)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "[a]" {
		t.Fatalf("Tags = %s", got)
	}
	// A tag directory added behind the cache's back, with the old time
	// put back: the cached listing is what is served.
	if err := os.MkdirAll(filepath.Join(dir, "hidden", "current"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "[a]" {
		t.Errorf("Tags with the directory's time unchanged = %s, want the cached [a]", got)
	}
	if err := os.RemoveAll(filepath.Join(dir, "hidden")); err != nil {
		t.Fatal(err)
	}
	// Pushes and deletes change the time: seen at once, within a tick.
	if _, err := r.PutManifest(ctx, "b", v1.MediaTypeImageManifest, payload); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "[a b]" {
		t.Errorf("Tags after a push = %s, want [a b]", got)
	}
	if err := r.DeleteTag(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "[b]" {
		t.Errorf("Tags after a delete = %s, want [b]", got)
	}
	if err := r.DeleteTag(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "[]" {
		t.Errorf("Tags after deleting every tag = %s, want []", got)
	}
	if _, _, err := mustRepo(t, reg, "cache/none").Tags(ctx, "", 0); !isErr(err, ErrNameUnknown) {
		t.Errorf("Tags of an unknown repository: %v", err)
	}
}
