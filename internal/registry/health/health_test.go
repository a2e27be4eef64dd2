package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

func TestProbes(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "drain")
	if err := FileProbe(file)(ctx); err != nil {
		t.Errorf("file probe without the file: %v", err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := FileProbe(file)(ctx); err == nil {
		t.Error("file probe with the file passes")
	}

	var status atomic.Int32
	status.Store(http.StatusOK)
	var gotHeader atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader.Store(r.Method + " " + r.Header.Get("Authorization"))
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	probe := HTTPProbe(srv.URL, http.Header{"Authorization": {"Bearer probe-secret"}}, http.StatusOK)
	if err := probe(ctx); err != nil {
		t.Errorf("http probe on 200: %v", err)
	}
	if got := gotHeader.Load(); got != "HEAD Bearer probe-secret" {
		t.Errorf("request = %v", got)
	}
	status.Store(http.StatusServiceUnavailable)
	if err := probe(ctx); err == nil {
		t.Error("http probe on 503 passes")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := TCPProbe(addr)(ctx); err != nil {
		t.Errorf("tcp probe on a listener: %v", err)
	}
	_ = l.Close()
	if err := TCPProbe(addr)(ctx); err == nil {
		t.Error("tcp probe on a closed port passes")
	}
}

// TestThreshold: a check fails after Threshold failed probes in a row and
// passes again at its first good probe.
func TestThreshold(t *testing.T) {
	var fail atomic.Bool
	var probes atomic.Int32
	c := New([]Check{{Name: "dep", Interval: 5 * time.Millisecond, Threshold: 3, Probe: func(context.Context) error {
		probes.Add(1)
		if fail.Load() {
			return errors.New("dep down")
		}
		return nil
	}}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	testenv.Eventually(t, 5*time.Second, "a first probe", func() bool { return probes.Load() > 0 })
	if !c.Healthy() {
		t.Fatal("unhealthy while passing")
	}
	fail.Store(true)
	start := probes.Load()
	testenv.Eventually(t, 5*time.Second, "the check failing", func() bool { return !c.Healthy() })
	if n := probes.Load() - start; n < 3 {
		t.Errorf("failing after %d failed probes, want at least 3", n)
	}
	if got := c.Failing()["dep"]; got != "dep down" {
		t.Errorf("Failing = %v", c.Failing())
	}
	fail.Store(false)
	testenv.Eventually(t, 5*time.Second, "the check passing again", c.Healthy)
}

func TestNoChecksIsHealthy(t *testing.T) {
	var c *Checks
	if !c.Healthy() || len(c.Failing()) != 0 || !New(nil, nil).Healthy() {
		t.Error("no checks must be healthy")
	}
}
