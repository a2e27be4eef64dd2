package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

// slowReads holds every blob stream open until release is closed.
type slowReads struct {
	driver.Driver
	entered chan struct{}
	release chan struct{}
}

func (s *slowReads) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if strings.HasSuffix(path, "/data") {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.Driver.Reader(ctx, path, offset)
}

func TestInFlightGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	d := &slowReads{Driver: inmemory.New(), entered: make(chan struct{}, 2), release: make(chan struct{})}
	h, err := New(Options{Registry: storage.New(d, storage.Options{}), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("held")
	dgst := digest.FromBytes(content)
	if r := do(t, h, "POST", "/v2/a/blobs/uploads/?digest="+dgst.String(), content); r.Status != 201 {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Fatalf("in flight after a finished request: %v", got)
	}
	done := make(chan int, 2)
	for range 2 {
		go func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/a/blobs/"+dgst.String(), nil))
			done <- w.Code
		}()
	}
	for range 2 {
		select {
		case <-d.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the GETs never reached storage")
		}
	}
	if got := testutil.ToFloat64(m.inFlight); got != 2 {
		t.Errorf("in flight while two GETs wait on storage: %v, want 2", got)
	}
	close(d.release)
	for range 2 {
		if code := <-done; code != 200 {
			t.Errorf("GET: %d", code)
		}
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("in flight after both finished: %v, want 0", got)
	}
}
