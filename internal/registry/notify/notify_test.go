package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// receiver is a webhook endpoint that records the envelopes it accepts.
// fail, while it returns a status other than 0, refuses requests with it.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	events   []map[string]any
	headers  []http.Header
	attempts atomic.Int32
	fail     atomic.Int32
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.attempts.Add(1)
	if s := rc.fail.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	var env struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.NewDecoder(r.Body).Decode(&env); err != nil || r.Header.Get("Content-Type") != MediaType {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.events = append(rc.events, env.Events...)
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.mu.Unlock()
}

func (rc *receiver) got() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.events...)
}

// digests lists the target digests received, in order.
func (rc *receiver) digests() []string {
	var out []string
	for _, e := range rc.got() {
		out = append(out, e["target"].(map[string]any)["digest"].(string))
	}
	return out
}

type fixture struct {
	n   *Notifier
	reg *prometheus.Registry
	log *bytes.Buffer
	mu  *sync.Mutex
}

// run starts a notifier on dir with eps and returns it; it stops when the
// test ends.
func run(t *testing.T, dir string, deliver bool, opts Options) fixture {
	t.Helper()
	f := fixture{reg: prometheus.NewRegistry(), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	opts.Dir = dir
	opts.Registerer = f.reg
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{f.mu, f.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.n = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if deliver {
		go func() { n.Run(ctx); close(done) }()
	} else {
		close(done)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		_ = n.Close()
	})
	return f
}

func (f fixture) logs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func ev(action, dgst string) Event {
	return Event{Action: action, Repository: "team/app", MediaType: BlobMediaType, Digest: dgst, Size: 3,
		URL: "http://reg/v2/team/app/blobs/" + dgst, Actor: "alice",
		Request: Request{ID: "req-1", Addr: "10.0.0.1:1234", Host: "reg", Method: "PUT", UserAgent: "crane/1"}}
}

func TestEnvelope(t *testing.T) {
	rc := newReceiver(t)
	f := run(t, t.TempDir(), true, Options{
		Endpoints: []Endpoint{{Name: "hook", URL: rc.URL, Headers: http.Header{"Authorization": {"Bearer s3cret-token"}}}},
		Source:    Source{Addr: "host:5000", InstanceID: "inst-1"},
	})
	e := ev("push", "sha256:aaa")
	e.Tag = "v1"
	f.n.Emit(context.Background(), e)
	testenv.Eventually(t, 10*time.Second, "the event delivered", func() bool { return len(rc.got()) == 1 })
	got := rc.got()[0]
	if id, _ := got["id"].(string); len(id) != 36 {
		t.Errorf("id = %q", got["id"])
	}
	if ts, _ := got["timestamp"].(string); ts == "" {
		t.Error("no timestamp")
	}
	delete(got, "id")
	delete(got, "timestamp")
	want := map[string]any{
		"action": "push",
		"target": map[string]any{"mediaType": BlobMediaType, "digest": "sha256:aaa", "size": 3.0, "length": 3.0,
			"repository": "team/app", "url": "http://reg/v2/team/app/blobs/sha256:aaa", "tag": "v1"},
		"request": map[string]any{"id": "req-1", "addr": "10.0.0.1:1234", "host": "reg", "method": "PUT", "useragent": "crane/1"},
		"actor":   map[string]any{"name": "alice"},
		"source":  map[string]any{"addr": "host:5000", "instanceID": "inst-1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	if h := rc.headers[0].Get("Authorization"); h != "Bearer s3cret-token" {
		t.Errorf("Authorization = %q", h)
	}
	testenv.Eventually(t, 10*time.Second, "the delivered event counted and removed", func() bool {
		return f.n.QueueLen("hook") == 0 && testutil.ToFloat64(f.n.m.delivered.WithLabelValues("hook")) == 1
	})
	if n, err := testutil.GatherAndCount(f.reg, "gatehouse_registry_notifications_delivered_total"); err != nil || n != 1 {
		t.Errorf("delivered metric series = %d, %v", n, err)
	}
}

func TestReferences(t *testing.T) {
	rc := newReceiver(t)
	f := run(t, t.TempDir(), true, Options{Endpoints: []Endpoint{{Name: "hook", URL: rc.URL}}, IncludeReferences: true})
	e := ev("push", "sha256:m")
	e.Manifest = []byte(`{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:c","size":1},"layers":[{"mediaType":"l","digest":"sha256:l","size":2}]}`)
	f.n.Emit(context.Background(), e)
	testenv.Eventually(t, 10*time.Second, "the event delivered", func() bool { return len(rc.got()) == 1 })
	refs := rc.got()[0]["target"].(map[string]any)["references"]
	want := []any{
		map[string]any{"mediaType": "c", "digest": "sha256:c", "size": 1.0},
		map[string]any{"mediaType": "l", "digest": "sha256:l", "size": 2.0},
	}
	if diff := cmp.Diff(want, refs); diff != "" {
		t.Errorf("references (-want +got):\n%s", diff)
	}
}

// TestReceiverFailures: a receiver that answers 500, times out or is not
// listening gets every event, in order, once it recovers; failures are
// counted and the header's secret never reaches the log.
func TestReceiverFailures(t *testing.T) {
	t.Run("500", func(t *testing.T) {
		rc := newReceiver(t)
		rc.fail.Store(http.StatusInternalServerError)
		f := run(t, t.TempDir(), true, Options{Endpoints: []Endpoint{{Name: "hook", URL: rc.URL, Threshold: 2, Backoff: 20 * time.Millisecond,
			MaxBackoff: 100 * time.Millisecond, Headers: http.Header{"Authorization": {"Bearer s3cret-token"}}}}})
		for _, d := range []string{"sha256:1", "sha256:2", "sha256:3"} {
			f.n.Emit(context.Background(), ev("push", d))
		}
		testenv.Eventually(t, 10*time.Second, "five failed attempts", func() bool { return rc.attempts.Load() >= 5 })
		if n := len(rc.got()); n != 0 {
			t.Fatalf("%d events accepted while failing", n)
		}
		if q := testutil.ToFloat64(f.n.m.queued.WithLabelValues("hook")); q != 3 {
			t.Errorf("queued metric = %v, want 3", q)
		}
		if fl := testutil.ToFloat64(f.n.m.failed.WithLabelValues("hook")); fl < 5 {
			t.Errorf("failed metric = %v, want at least 5", fl)
		}
		rc.fail.Store(0)
		testenv.Eventually(t, 10*time.Second, "all events delivered", func() bool { return len(rc.got()) == 3 })
		if diff := cmp.Diff([]string{"sha256:1", "sha256:2", "sha256:3"}, rc.digests()); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		testenv.Eventually(t, 10*time.Second, "queue empty", func() bool { return testutil.ToFloat64(f.n.m.queued.WithLabelValues("hook")) == 0 })
		if d := testutil.ToFloat64(f.n.m.delivered.WithLabelValues("hook")); d != 3 {
			t.Errorf("delivered metric = %v", d)
		}
		if logs := f.logs(); strings.Contains(logs, "s3cret") || !strings.Contains(logs, "backing off") {
			t.Errorf("log shows the secret or no backoff:\n%s", logs)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		var slow atomic.Bool
		slow.Store(true)
		var mu sync.Mutex
		var got []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slow.Load() {
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, string(b))
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		f := run(t, t.TempDir(), true, Options{Endpoints: []Endpoint{{Name: "hook", URL: srv.URL, Timeout: 50 * time.Millisecond, Threshold: 1, Backoff: 10 * time.Millisecond}}})
		f.n.Emit(context.Background(), ev("push", "sha256:t"))
		testenv.Eventually(t, 10*time.Second, "two timed-out attempts", func() bool { return testutil.ToFloat64(f.n.m.failed.WithLabelValues("hook")) >= 2 })
		slow.Store(false)
		testenv.Eventually(t, 10*time.Second, "the event delivered", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == 1 && strings.Contains(got[0], "sha256:t")
		})
	})
	t.Run("closed port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		f := run(t, t.TempDir(), true, Options{Endpoints: []Endpoint{{Name: "hook", URL: "http://" + addr + "/events", Threshold: 1, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}}})
		f.n.Emit(context.Background(), ev("delete", "sha256:c"))
		testenv.Eventually(t, 10*time.Second, "failed attempts", func() bool { return testutil.ToFloat64(f.n.m.failed.WithLabelValues("hook")) >= 2 })
		rc := &receiver{}
		l, err = net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the port was taken meanwhile: %v", err)
		}
		srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(rc.serve), ReadHeaderTimeout: time.Second}}
		srv.Start()
		t.Cleanup(srv.Close)
		testenv.Eventually(t, 10*time.Second, "the event delivered", func() bool { return len(rc.got()) == 1 })
	})
}

// TestSurvivesRestart: events queued while the receiver is down are
// delivered by the next notifier on the same directory.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	rc := newReceiver(t)
	eps := []Endpoint{{Name: "hook", URL: rc.URL}}
	n, err := New(Options{Dir: dir, Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"sha256:1", "sha256:2"} {
		n.Emit(context.Background(), ev("push", d))
	}
	if err := n.Close(); err != nil { // never delivered: Run was not started
		t.Fatal(err)
	}
	// A half-written file from a crash is ignored and removed.
	tmp := filepath.Join(dir, "hook", tmpPrefix+"7")
	if err := os.WriteFile(tmp, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := run(t, dir, true, Options{Endpoints: eps})
	testenv.Eventually(t, 10*time.Second, "both events delivered", func() bool { return len(rc.got()) == 2 })
	if diff := cmp.Diff([]string{"sha256:1", "sha256:2"}, rc.digests()); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "queue empty", func() bool { return f.n.QueueLen("hook") == 0 })
	entries, _ := os.ReadDir(filepath.Join(dir, "hook"))
	if len(entries) != 0 {
		t.Errorf("queue directory not empty: %v", entries)
	}
}

func TestQueueDirLocked(t *testing.T) {
	dir := t.TempDir()
	run(t, dir, false, Options{Endpoints: []Endpoint{{Name: "hook", URL: "http://127.0.0.1:1/"}}})
	if _, err := New(Options{Dir: dir, Endpoints: []Endpoint{{Name: "hook", URL: "http://127.0.0.1:1/"}}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second notifier on one directory: %v", err)
	}
}

// TestQueueFull: the oldest events are dropped, counted and logged.
func TestQueueFull(t *testing.T) {
	rc := newReceiver(t)
	dir := t.TempDir()
	f := run(t, dir, false, Options{Endpoints: []Endpoint{{Name: "hook", URL: rc.URL, QueueSize: 2}}})
	for _, d := range []string{"sha256:1", "sha256:2", "sha256:3", "sha256:4"} {
		f.n.Emit(context.Background(), ev("push", d))
	}
	if got := testutil.ToFloat64(f.n.m.dropped.WithLabelValues("hook", "full")); got != 2 {
		t.Errorf("dropped = %v, want 2", got)
	}
	if got := testutil.ToFloat64(f.n.m.queued.WithLabelValues("hook")); got != 2 {
		t.Errorf("queued = %v, want 2", got)
	}
	if !strings.Contains(f.logs(), "queue full") {
		t.Errorf("no log line:\n%s", f.logs())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.n.Run(ctx); close(done) }()
	testenv.Eventually(t, 10*time.Second, "the newest two delivered", func() bool { return len(rc.got()) == 2 })
	cancel()
	<-done
	if diff := cmp.Diff([]string{"sha256:3", "sha256:4"}, rc.digests()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestIgnore(t *testing.T) {
	all, some := newReceiver(t), newReceiver(t)
	f := run(t, t.TempDir(), true, Options{Endpoints: []Endpoint{
		{Name: "all", URL: all.URL},
		{Name: "some", URL: some.URL, IgnoreActions: []string{"pull"}, IgnoreMediaTypes: []string{BlobMediaType}},
	}})
	manifest := ev("push", "sha256:m")
	manifest.MediaType = "application/vnd.oci.image.manifest.v1+json"
	del := ev("delete", "sha256:d")
	del.MediaType = ""
	mpull := manifest
	mpull.Action = "pull"
	for _, e := range []Event{ev("push", "sha256:b"), manifest, mpull, del} {
		f.n.Emit(context.Background(), e)
	}
	testenv.Eventually(t, 10*time.Second, "events delivered", func() bool { return len(all.got()) == 4 && len(some.got()) == 2 })
	if diff := cmp.Diff([]string{"sha256:m", "sha256:d"}, some.digests()); diff != "" {
		t.Errorf("filtered endpoint got (-want +got):\n%s", diff)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		k    int
		want time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {3, 8 * time.Second}, {6, 30 * time.Second}, {60, 30 * time.Second}}
	for _, tt := range tests {
		if got := backoff(time.Second, 30*time.Second, tt.k); got != tt.want {
			t.Errorf("backoff(1s, 30s, %d) = %v, want %v", tt.k, got, tt.want)
		}
	}
}

func TestDirName(t *testing.T) {
	if got := dirName("hook-1.a"); got != "hook-1.a" {
		t.Errorf("plain name: %q", got)
	}
	for _, bad := range []string{"..", "a/b", ".lock", "", "x y"} {
		if got := dirName(bad); !strings.HasPrefix(got, "endpoint-") {
			t.Errorf("dirName(%q) = %q", bad, got)
		}
	}
}
