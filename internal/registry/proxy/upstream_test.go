package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// fakeUpstream is a small registry: manifests by tag and digest, blobs,
// and the auth of a real one (none, Basic, or the Docker bearer flow).
type fakeUpstream struct {
	t    *testing.T
	srv  *httptest.Server
	auth string // "", "basic", "bearer"
	user string
	pass string
	// tokenTTL is the token's expires_in.
	tokenTTL int

	mu        sync.Mutex
	manifests map[string][]byte // "repo:tag" and "repo@digest"
	blobs     map[digest.Digest][]byte
	// fail answers every /v2/ call with this status when not 0.
	fail int
	// gate, when set, holds blob bodies after their first half until closed.
	gate chan struct{}

	blobGets    atomic.Int64
	manifestReq atomic.Int64
	tokenReq    atomic.Int64
	lastScope   atomic.Value
}

func newFakeUpstream(t *testing.T, auth string) *fakeUpstream {
	f := &fakeUpstream{t: t, auth: auth, user: "mirror", pass: "upstream-pw-123", tokenTTL: 300,
		manifests: map[string][]byte{}, blobs: map[digest.Digest][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// push adds an image (one layer) under repo:tag and returns its digest.
func (f *fakeUpstream) push(repo, tag string, layer []byte) (digest.Digest, []byte) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","tag":"` + tag + `"}`)
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest,
		Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}}
	m.SchemaVersion = 2
	payload, _ := json.Marshal(m)
	d := digest.FromBytes(payload)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[digest.FromBytes(cfg)] = cfg
	f.blobs[digest.FromBytes(layer)] = layer
	f.manifests[repo+":"+tag] = payload
	f.manifests[repo+"@"+d.String()] = payload
	return d, payload
}

func (f *fakeUpstream) setFail(status int) {
	f.mu.Lock()
	f.fail = status
	f.mu.Unlock()
}

func (f *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		f.tokenReq.Add(1)
		f.lastScope.Store(r.URL.Query().Get("scope"))
		if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"token":"tok-%s","expires_in":%d}`, r.URL.Query().Get("scope"), f.tokenTTL)
		return
	}
	switch f.auth {
	case "basic":
		if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	case "bearer":
		rest, _ := strings.CutPrefix(r.URL.Path, "/v2/")
		repo := rest[:max(strings.Index(rest, "/manifests/"), strings.Index(rest, "/blobs/"))]
		scope := "repository:" + repo + ":pull"
		if r.Header.Get("Authorization") != "Bearer tok-"+scope {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake",scope="%s"`, f.srv.URL, scope))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	f.mu.Lock()
	fail, gate := f.fail, f.gate
	f.mu.Unlock()
	if fail != 0 {
		if fail == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(fail)
		return
	}
	rest, _ := strings.CutPrefix(r.URL.Path, "/v2/")
	if i := strings.Index(rest, "/manifests/"); i >= 0 {
		f.manifestReq.Add(1)
		repo, ref := rest[:i], rest[i+len("/manifests/"):]
		key := repo + ":" + ref
		if strings.Contains(ref, ":") {
			key = repo + "@" + ref
		}
		f.mu.Lock()
		payload, ok := f.manifests[key]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", v1.MediaTypeImageManifest)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(payload).String())
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(payload)
		}
		return
	}
	if i := strings.Index(rest, "/blobs/"); i >= 0 {
		d := digest.Digest(rest[i+len("/blobs/"):])
		f.mu.Lock()
		b, ok := f.blobs[d]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		if r.Method == http.MethodHead {
			return
		}
		f.blobGets.Add(1)
		if gate == nil {
			_, _ = w.Write(b)
			return
		}
		_, _ = w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		<-gate
		_, _ = w.Write(b[len(b)/2:])
		return
	}
	w.WriteHeader(http.StatusNotFound)
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	cache *Cache
	reg   *storage.Registry
	d     driver.Driver
	clock *clock
	logs  *bytes.Buffer
}

type envOpts struct {
	prefix  string
	ttl     time.Duration
	maxSize int64
	d       driver.Driver
	creds   bool
	tempDir string // default: a new empty directory
}

func newEnv(t *testing.T, up *fakeUpstream, o envOpts) *env {
	t.Helper()
	if o.d == nil {
		o.d = inmemory.New()
	}
	if o.tempDir == "" {
		o.tempDir = t.TempDir()
	}
	reg := storage.New(o.d, storage.Options{})
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	logs := &bytes.Buffer{}
	u := Upstream{Prefix: o.prefix, URL: up.srv.URL, TTL: o.ttl}
	if o.creds {
		u.Username, u.Password = up.user, secret.Secret(up.pass)
	}
	c, err := New(context.Background(), Options{Registry: reg, Upstreams: []Upstream{u}, MaxSize: o.maxSize,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    clk.now, TempDir: o.tempDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &env{cache: c, reg: reg, d: o.d, clock: clk, logs: logs}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// pull prepares and reads a manifest like the API handler does.
func (e *env) pull(t *testing.T, name, ref string) (digest.Digest, error) {
	t.Helper()
	ctx := context.Background()
	if err := e.cache.PrepareManifest(ctx, name, ref); err != nil {
		return "", err
	}
	repo, err := e.reg.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	_, _, d, err := repo.GetManifest(ctx, ref)
	return d, err
}

func (e *env) readBlob(t *testing.T, name string, d digest.Digest) ([]byte, error) {
	t.Helper()
	rc, _, err := e.cache.FetchBlob(context.Background(), name, d)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	// The reader ends before storage has committed the blob.
	e.cache.fetching.Wait()
	return b, err
}
