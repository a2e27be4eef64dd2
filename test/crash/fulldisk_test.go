//go:build integration

package crash

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// mountSmallFS mounts a size-limited tmpfs and unmounts it when the test
// ends. It needs root, as the integration environment provides.
func mountSmallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	testenv.MustRun(t, nil, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir)
	t.Cleanup(func() {
		if out, err := testenv.Run(context.Background(), nil, "umount", dir); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// uploadData lists the data files of uploads left in storage.
func uploadData(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && e.Name() == "data" && strings.Contains(p, "/_uploads/") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ballast(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatalf("ballast: %v", err)
	}
}

// TestFullDisk fills the registry's disk: pushes then fail clearly (507,
// never 201), leave no partial upload data, damage nothing stored before,
// and succeed again once space is freed.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	mnt := mountSmallFS(t, "24m")
	root := filepath.Join(mnt, "data")
	reg := newRegistry(t, root, false)
	reg.start()
	c := newClient(reg.url())

	// Images stored before the disk fills, and space held back to free
	// later: a small ballast for one upload's start, a large one for the
	// pushes after.
	stored := map[string]string{} // repo:tag -> manifest digest
	for i := range 3 {
		md, err := c.pushImage(ctx, "full/app", fmt.Sprintf("v%d", i), fmt.Sprintf("before-%d", i), 256<<10, i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		stored[fmt.Sprintf("v%d", i)] = md
	}
	ballast(t, filepath.Join(mnt, "small"), 256<<10)
	ballast(t, filepath.Join(mnt, "large"), 6<<20)

	// Fill the disk with 1 MiB monolithic pushes until one fails.
	var failure *statusError
	for i := 0; failure == nil; i++ {
		if i == 64 {
			t.Fatal("64 MiB pushed onto a 24 MiB disk without an error")
		}
		blob := []byte(strings.Repeat(fmt.Sprintf("filler %04d ", i), (1<<20)/12))
		_, err := c.pushBlob(ctx, "full/fill", blob, false)
		if err != nil && !errors.As(err, &failure) {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if failure.Status != http.StatusInsufficientStorage || !strings.Contains(failure.Body, "storage is full") {
		t.Errorf("push on a full disk: %d %s, want 507 saying the storage is full", failure.Status, failure.Body)
	}
	if left := uploadData(t, root); len(left) > 0 {
		t.Errorf("the failed monolithic push left upload data: %v", left)
	}

	// A chunked upload that runs out of space keeps its upload and says
	// where it stands; the client cancels it.
	if err := os.Remove(filepath.Join(mnt, "small")); err != nil {
		t.Fatal(err)
	}
	h, _, err := c.do(ctx, "POST", "/v2/full/chunked/blobs/uploads/", nil, nil, http.StatusAccepted)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2<<20)
	_, _, err = c.do(ctx, "PATCH", h.Get("Location"), big, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusAccepted)
	var se *statusError
	if !errors.As(err, &se) || se.Status != http.StatusInsufficientStorage || se.Header.Get("Location") == "" || se.Header.Get("Range") == "" {
		t.Fatalf("PATCH on a full disk: %v (headers %v), want 507 with Location and Range", err, headerOf(se))
	}
	if _, _, err := c.do(ctx, "DELETE", se.Header.Get("Location"), nil, nil, http.StatusNoContent); err != nil {
		t.Errorf("cancel the failed upload: %v", err)
	}
	if left := uploadData(t, root); len(left) > 0 {
		t.Errorf("cancelled upload left data: %v", left)
	}

	// Nothing stored before was damaged.
	for tag, md := range stored {
		got, err := c.pull(ctx, "full/app", tag)
		if err != nil || got != md {
			t.Errorf("pull full/app:%s after the disk filled: %s, %v; want %s", tag, got, err, md)
		}
	}
	if code, out := storageCheck(t, reg.bin, reg.config, "--verify-digests"); code != 0 {
		t.Errorf("storage check after the disk filled: exit %d\n%s", code, out)
	}

	// Space freed: pushes work again.
	if err := os.Remove(filepath.Join(mnt, "large")); err != nil {
		t.Fatal(err)
	}
	md, err := c.pushImage(ctx, "full/app", "after", "after", 1<<20, true)
	if err != nil {
		t.Fatalf("push after freeing space: %v", err)
	}
	if got, err := c.pull(ctx, "full/app", "after"); err != nil || got != md {
		t.Errorf("pull full/app:after: %s, %v", got, err)
	}
}

func headerOf(e *statusError) http.Header {
	if e == nil {
		return nil
	}
	return e.Header
}
