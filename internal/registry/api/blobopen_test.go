package api

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

// unreadable is a driver whose streams fail to open while down is set, as
// S3 does when it is stopped or stalls past the timeouts.
type unreadable struct {
	driver.Driver
	down    atomic.Bool
	offsets []int64 // where each stream was opened
}

func (u *unreadable) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if u.down.Load() && strings.HasSuffix(path, "/data") {
		return nil, fmt.Errorf("reading %s: %w", path, driver.ErrUnavailable)
	}
	u.offsets = append(u.offsets, offset)
	return u.Driver.Reader(ctx, path, offset)
}

// A blob GET, whole or ranged, whose storage cannot be read answers 503
// before any status is sent, instead of a 200 or 206 whose body breaks.
func TestBlobGetOpensBeforeAnswering(t *testing.T) {
	d := &unreadable{Driver: inmemory.New()}
	h, err := New(Options{Registry: storage.New(d, storage.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("0123456789abcdef")
	dgst := digest.FromBytes(content)
	if r := do(t, h, "POST", "/v2/a/blobs/uploads/?digest="+dgst.String(), content); r.Status != 201 {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	path := "/v2/a/blobs/" + dgst.String()
	d.down.Store(true)
	for _, rh := range []string{"", "bytes=4-", "bytes=-3", "bytes=2-5"} {
		var hdr []string
		if rh != "" {
			hdr = []string{"Range", rh}
		}
		if r := do(t, h, "GET", path, nil, hdr...); r.Status != 503 || errCode(t, r.Body) != "UNAVAILABLE" {
			t.Errorf("Range %q while storage is down: %d %s, want 503", rh, r.Status, r.Body)
		}
	}
	d.down.Store(false)
	tests := []struct {
		rh, want string
		status   int
		offset   int64
	}{
		{"", string(content), 200, 0},
		{"bytes=4-", string(content[4:]), 206, 4},
		{"bytes=-3", string(content[13:]), 206, 13},
		{"bytes=2-5", string(content[2:6]), 206, 2},
	}
	for _, tt := range tests {
		d.offsets = nil
		var hdr []string
		if tt.rh != "" {
			hdr = []string{"Range", tt.rh}
		}
		r := do(t, h, "GET", path, nil, hdr...)
		if r.Status != tt.status || r.Body != tt.want {
			t.Errorf("Range %q: %d %q, want %d %q", tt.rh, r.Status, r.Body, tt.status, tt.want)
		}
		// One stream, opened at the first byte sent: the Seek that
		// http.ServeContent makes does not reopen it.
		if len(d.offsets) != 1 || d.offsets[0] != tt.offset {
			t.Errorf("Range %q: streams opened at %v, want one at %d", tt.rh, d.offsets, tt.offset)
		}
	}
	// An If-Range naming another entity gets the whole blob.
	r := do(t, h, "GET", path, nil, "Range", "bytes=4-", "If-Range", `"sha256:other"`)
	if r.Status != 200 || r.Body != string(content) {
		t.Errorf("If-Range mismatch: %d %q, want the whole blob", r.Status, r.Body)
	}
}
