//go:build integration

package proxy_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// slowFront is a reverse proxy before an upstream that can slow blob
// bodies down to about 3 MiB/s, counts blob GETs and the blob bytes it
// has sent.
type slowFront struct {
	srv       *httptest.Server
	slow      atomic.Bool
	blobGETs  atomic.Int64
	blobBytes atomic.Int64
}

func newSlowFront(t *testing.T, backend string) *slowFront {
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	f := &slowFront{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodGet && strings.Contains(r.Request.URL.Path, "/blobs/sha256:") {
			f.blobGETs.Add(1)
			r.Body = &countingBody{ReadCloser: r.Body, f: f}
		}
		return nil
	}
	f.srv = httptest.NewServer(rp)
	t.Cleanup(f.srv.Close)
	return f
}

type countingBody struct {
	io.ReadCloser
	f *slowFront
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.f.slow.Load() {
		// Throttling is what this proxy is for: 64 KiB per 20 ms.
		time.Sleep(20 * time.Millisecond)
		p = p[:min(len(p), 64<<10)]
	}
	n, err := b.ReadCloser.Read(p)
	b.f.blobBytes.Add(int64(n))
	return n, err
}

// TestCacheKilledMidFetch: the cache is killed with SIGKILL while it
// streams a large blob from a slow upstream to a client. Nothing of the
// half-fetched blob is visible in its storage; after a restart the blob is
// fetched again, served whole, stored, and then served from the cache
// without another upstream fetch; storage check finds nothing wrong.
func TestCacheKilledMidFetch(t *testing.T) {
	up := testenv.StartDistribution(t, testenv.DistributionOptions{Program: testenv.Registry3})
	big := make([]byte, 24<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	layer := "sha256:" + hex.EncodeToString(sum[:])
	pushRaw(t, up.URL(), "library/big", "v1", []byte(`{"architecture":"amd64","os":"linux"}`), big)
	// Another image upstream on the same layer, as images share bases.
	pushRaw(t, up.URL(), "library/sibling", "v1", []byte(`{"architecture":"arm64","os":"linux"}`), big)
	front := newSlowFront(t, up.URL())

	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := writeFile(t, filepath.Join(dir, "cache.yml"), fmt.Sprintf(`version: 0.1
storage:
  filesystem: {rootdirectory: %q}
http:
  addr: %q
proxy:
  remoteurl: %q
`, root, addr, front.srv.URL))
	bin := testenv.Gatehouse(t)
	start := func() *testenv.Process {
		p := testenv.Start(t, nil, bin, "registry", "serve", cfg)
		p.WaitHTTP(t, "http://"+addr+"/v2/")
		return p
	}
	blobURL := "http://" + addr + "/v2/library/big/blobs/" + layer

	cache := start()
	front.slow.Store(true)
	resp, err := client.Get(blobURL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob through the cache: %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatalf("reading the first MiB: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "4 MiB of the blob sent by the upstream", func() bool {
		return front.blobBytes.Load() >= 4<<20
	})
	if got := front.blobBytes.Load(); got >= int64(len(big)) {
		t.Fatalf("the upstream already sent the whole blob (%d bytes): the kill would not land mid-fetch", got)
	}
	if err := cache.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the cache gone", cache.Exited)
	_ = resp.Body.Close()
	if front.blobGETs.Load() != 1 {
		t.Fatalf("%d upstream blob fetches before the kill, want 1", front.blobGETs.Load())
	}

	// Nothing half-fetched is visible: the blob's data file is absent
	// (or, were it there, whole).
	data := filepath.Join(root, "docker/registry/v2/blobs/sha256", layer[7:9], layer[7:], "data")
	if b, err := os.ReadFile(data); err == nil {
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != layer[7:] {
			t.Fatalf("a half-fetched blob of %d bytes is stored under its digest", len(b))
		}
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}

	front.slow.Store(false)
	start()
	for i := range 2 {
		if i == 1 {
			testenv.Eventually(t, 10*time.Second, "the refetched blob stored", func() bool {
				_, err := os.Stat(data)
				return err == nil
			})
		}
		resp, err := client.Get(blobURL)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d after the restart: %d, %v", i+1, resp.StatusCode, err)
		}
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != layer[7:] {
			t.Fatalf("GET %d after the restart: %d bytes that do not match the digest", i+1, len(b))
		}
	}
	// The first GET after the restart fetched it again; the second, once
	// the blob was stored, was served from the cache without asking.
	if n := front.blobGETs.Load(); n != 2 {
		t.Errorf("%d upstream blob fetches in all, want 2 (one killed, one after the restart)", n)
	}
	// The same layer pulled for the other image is linked, once the
	// upstream confirmed it (HEAD), not fetched a third time.
	resp, err = client.Get("http://" + addr + "/v2/library/sibling/blobs/" + layer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if s := sha256.Sum256(b); err != nil || resp.StatusCode != http.StatusOK || hex.EncodeToString(s[:]) != layer[7:] {
		t.Fatalf("the shared layer through another repository: %d, %d bytes, %v", resp.StatusCode, len(b), err)
	}
	if n := front.blobGETs.Load(); n != 2 {
		t.Errorf("%d upstream blob fetches after pulling the shared layer for another repository, want still 2", n)
	}
	if out, err := testenv.Run(t.Context(), nil, bin, "storage", "check", "--verify-digests", cfg); err != nil {
		t.Fatalf("storage check after the kill: %v\n%s", err, out)
	}
}
