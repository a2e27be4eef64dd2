package api

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

// fullDriver is a driver whose disk fills up: while full is set, writes
// fail with driver.ErrNoSpace after the first few bytes of each file.
type fullDriver struct {
	driver.Driver
	full atomic.Bool
}

const fullAfter = 4 // bytes a writer accepts once the disk is full

func (d *fullDriver) Writer(ctx context.Context, p string, appendTo bool) (driver.FileWriter, error) {
	w, err := d.Driver.Writer(ctx, p, appendTo)
	if err != nil {
		return nil, err
	}
	return &fullWriter{FileWriter: w, d: d}, nil
}

type fullWriter struct {
	driver.FileWriter
	d       *fullDriver
	written int
}

func (w *fullWriter) Write(b []byte) (int, error) {
	if !w.d.full.Load() {
		return w.FileWriter.Write(b)
	}
	room := max(fullAfter-w.written, 0)
	n, err := w.FileWriter.Write(b[:min(room, len(b))])
	w.written += n
	if err == nil && n < len(b) {
		err = fmt.Errorf("write: %w", driver.ErrNoSpace)
	}
	return n, err
}

// uploadDirs lists the upload directories left in storage.
func uploadDirs(t *testing.T, d driver.Driver) []string {
	t.Helper()
	var out []string
	err := d.Walk(context.Background(), "/", func(fi driver.FileInfo) error {
		if fi.IsDir() && strings.HasSuffix(fi.Path()[:strings.LastIndexByte(fi.Path(), '/')], "/_uploads") {
			out = append(out, fi.Path())
		}
		return nil
	})
	if err != nil && !driver.IsNotFound(err) {
		t.Fatal(err)
	}
	return out
}

func TestUploadsOnFullStorage(t *testing.T) {
	fd := &fullDriver{Driver: inmemory.New()}
	h, err := New(Options{Delete: true, Registry: storage.New(fd, storage.Options{Delete: true})})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("more bytes than the full disk takes")
	dg := digest.FromBytes(content)
	fd.full.Store(true)

	t.Run("monolithic POST is cancelled", func(t *testing.T) {
		r := do(t, h, "POST", "/v2/full/repo/blobs/uploads/?digest="+dg.String(), content)
		if r.Status != 507 || errCode(t, r.Body) != "UNKNOWN" {
			t.Errorf("POST: %d %s, want 507 UNKNOWN", r.Status, r.Body)
		}
		if r.Header.Get("Location") != "" {
			t.Errorf("POST: Location %q for an upload that was cancelled", r.Header.Get("Location"))
		}
		if left := uploadDirs(t, fd); len(left) > 0 {
			t.Errorf("the failed upload left %v", left)
		}
	})

	t.Run("PUT with the whole body on a fresh upload is cancelled", func(t *testing.T) {
		r := do(t, h, "POST", "/v2/full/repo/blobs/uploads/", nil)
		if r.Status != 202 {
			t.Fatalf("POST: %d %s", r.Status, r.Body)
		}
		path := strings.TrimPrefix(r.Header.Get("Location"), "http://example.com")
		r = do(t, h, "PUT", path+"?digest="+dg.String(), content)
		if r.Status != 507 {
			t.Errorf("PUT: %d %s, want 507", r.Status, r.Body)
		}
		if left := uploadDirs(t, fd); len(left) > 0 {
			t.Errorf("the failed upload left %v", left)
		}
		if r = do(t, h, "GET", path, nil); r.Status != 404 {
			t.Errorf("GET of the cancelled upload: %d", r.Status)
		}
	})

	t.Run("a failed chunk keeps the upload and says where it is", func(t *testing.T) {
		fd.full.Store(false)
		r := do(t, h, "POST", "/v2/full/repo/blobs/uploads/", nil)
		loc := r.Header.Get("Location")
		path := strings.TrimPrefix(loc, "http://example.com")
		if r = do(t, h, "PATCH", path, content[:8], "Content-Range", "0-7"); r.Status != 202 {
			t.Fatalf("PATCH: %d %s", r.Status, r.Body)
		}
		fd.full.Store(true)
		r = do(t, h, "PATCH", path, content[8:], "Content-Range", fmt.Sprintf("8-%d", len(content)-1))
		if r.Status != 507 || r.Header.Get("Location") != loc || r.Header.Get("Range") != fmt.Sprintf("0-%d", 8+fullAfter-1) {
			t.Errorf("PATCH on full storage: %d %v %s", r.Status, r.Header, r.Body)
		}
		// Space is back: the client resumes where the upload stands.
		fd.full.Store(false)
		r = do(t, h, "PUT", path+"?digest="+dg.String(), content[8+fullAfter:], "Content-Range", fmt.Sprintf("%d-%d", 8+fullAfter, len(content)-1))
		if r.Status != 201 {
			t.Errorf("resumed PUT: %d %s", r.Status, r.Body)
		}
	})
}
