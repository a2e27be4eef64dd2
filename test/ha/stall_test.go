//go:build integration

package ha

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// stallTimeout is each of storage.s3.timeouts in TestS3Stalled.
const stallTimeout = 2 * time.Second

// stallBound is the longest a request may take to fail while S3 stalls.
// A push meets the stall in at most two S3 calls (the write that fails,
// then the removal of what it left); each call is tried at most 3 times
// (the driver's retry limit), each try ending when no response header
// comes (the proxy swallows what it is sent, so writes never block) or
// no byte moves; minio-go waits at most a second between tries; plus
// slack for a busy host. With the default timeouts (60s, 2m) the same
// stall would hold a push for up to 18 minutes.
const stallBound = 2*3*(2*stallTimeout) + 4*time.Second + 5*time.Second

// TestS3Stalled puts a proxy that can stall between the replica and MinIO.
// While it stalls, a push and a pull get 503 with Retry-After within
// stallBound (not a hang) and /debug/health turns 503; once it forwards
// again the same push succeeds without a restart, nothing half-written is
// visible, and the replica's descriptors and goroutines and the proxy's
// connections return to where they were.
func TestS3Stalled(t *testing.T) {
	var proxy *stallProxy
	c := startClusterWith(t, 1, clusterOptions{
		s3Endpoint: func(m *testenv.MinIO) string {
			proxy = startStallProxy(t, m.Addr)
			return "http://" + proxy.addr()
		},
		s3Extra: fmt.Sprintf("    timeouts: {dial: %[1]s, tlshandshake: %[1]s, responseheader: %[1]s, io: %[1]s}\n", stallTimeout),
	})
	r := c.replicas[0]
	base := "http://" + r.addr
	tok := c.token("repository:ha/stall:pull,push")
	octet := map[string]string{"Content-Type": "application/octet-stream"}

	// A blob stored before the stall, to pull during it; pushing it also
	// warms every pool (S3, Redis), so the baseline is taken warm.
	before := randomBytes(t, 1<<20)
	beforeDgst := testenv.Digest(before)
	c.mustDo(http.MethodPost, base, "/v2/ha/stall/blobs/uploads/?digest="+beforeDgst, tok, before, octet, http.StatusCreated)
	c.mustDo(http.MethodGet, base, "/v2/ha/stall/blobs/"+beforeDgst, tok, nil, nil, http.StatusOK)
	baseFDs, baseGoroutines := fdCount(t, r), goroutineCount(t, r)
	baseConns := proxy.clients.Load()
	t.Logf("baseline: %d descriptors, %d goroutines, %d connections through the proxy", baseFDs, baseGoroutines, baseConns)

	data := randomBytes(t, 7<<20) // more than one 5 MiB part
	dgst := testenv.Digest(data)

	proxy.stalled.Store(true)
	unavailable := func(what string, do func() (response, error)) {
		start := time.Now()
		resp, err := do()
		took := time.Since(start)
		t.Logf("%s while S3 stalls: %d after %s", what, resp.status, took.Round(time.Millisecond))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if resp.status != http.StatusServiceUnavailable {
			t.Errorf("%s while S3 stalls: %d %s, want 503", what, resp.status, resp.body)
		}
		if s, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s: 503 without a Retry-After (%q)", what, resp.header.Get("Retry-After"))
		}
		if took > stallBound {
			t.Errorf("%s took %s while S3 stalls, more than the %s the timeouts allow", what, took, stallBound)
		}
	}
	// All three start at once, before the health check can notice the stall
	// and answer 503 for them: each meets the stall itself.
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		unavailable("range pull", func() (response, error) {
			return c.do(http.MethodGet, base, "/v2/ha/stall/blobs/"+beforeDgst, tok, nil, map[string]string{"Range": "bytes=1000-"})
		})
	}()
	go func() {
		defer wg.Done()
		unavailable("pull", func() (response, error) {
			return c.do(http.MethodGet, base, "/v2/ha/stall/blobs/"+beforeDgst, tok, nil, nil)
		})
	}()
	go func() {
		defer wg.Done()
		unavailable("monolithic push", func() (response, error) {
			return c.do(http.MethodPost, base, "/v2/ha/stall/blobs/uploads/?digest="+dgst, tok, data, octet)
		})
	}()
	wg.Wait()
	testenv.Eventually(t, stallBound, "/debug/health to report storage unhealthy", func() bool {
		code, _ := health(t, r)
		return code == http.StatusServiceUnavailable
	})
	if proxy.everHeld.Load() == 0 {
		t.Error("no connection ever reached the stalled proxy: the test stalled nothing")
	}

	proxy.stalled.Store(false)
	testenv.Eventually(t, stallBound, "/debug/health to pass again", func() bool {
		code, _ := health(t, r)
		return code == http.StatusOK
	})
	t.Logf("%d connections met the stall", proxy.everHeld.Load())
	// Nothing half-written is visible.
	c.mustDo(http.MethodHead, base, "/v2/ha/stall/blobs/"+dgst, tok, nil, nil, http.StatusNotFound)
	// The same push succeeds, without a restart.
	c.mustDo(http.MethodPost, base, "/v2/ha/stall/blobs/uploads/?digest="+dgst, tok, data, octet, http.StatusCreated)
	got := c.mustDo(http.MethodGet, base, "/v2/ha/stall/blobs/"+dgst, tok, nil, nil, http.StatusOK)
	if testenv.Digest(got.body) != dgst {
		t.Fatal("blob pushed after the stall does not match its digest")
	}
	c.storageCheck()

	// Nothing leaked: every connection that met the stall was closed by
	// the replica, and its descriptors and goroutines are back near the
	// baseline (a few pooled connections may come and go).
	var fds, goroutines int
	testenv.Eventually(t, 2*stallBound, "descriptors, goroutines and proxy connections back to the baseline", func() bool {
		fds, goroutines = fdCount(t, r), goroutineCount(t, r)
		return proxy.held.Load() == 0 && proxy.clients.Load() <= baseConns+2 &&
			fds <= baseFDs+4 && goroutines <= baseGoroutines+8
	})
	t.Logf("after: %d descriptors, %d goroutines, %d connections through the proxy (%d upstream)",
		fds, goroutines, proxy.clients.Load(), proxy.upstreams.Load())
}

// fdCount is the number of open descriptors of r's process.
func fdCount(t *testing.T, r *replica) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", r.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// goroutineCount reads the number of goroutines from r's pprof endpoint.
func goroutineCount(t *testing.T, r *replica) int {
	t.Helper()
	resp, err := http.Get(r.debugURL() + "/debug/pprof/goroutine?debug=1") //nolint:noctx // a test probe
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	if err != nil {
		t.Fatalf("goroutine profile starts %q", first)
	}
	return n
}
