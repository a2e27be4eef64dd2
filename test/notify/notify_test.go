//go:build integration

// Package notify runs the real registry with a webhook endpoint and checks
// that every push, pull, delete and mount reaches the receiver, including
// events queued while the receiver was down and the registry was killed.
package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// receiver is a webhook endpoint on a fixed 127.0.0.1 port that can be
// started and stopped. It counts every event by id, so duplicates show.
type receiver struct {
	addr string
	srv  *http.Server

	mu     sync.Mutex
	byID   map[string]int // deliveries per event id
	events []event        // first delivery of each id, in arrival order
	auth   []string
}

type event struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Target struct {
		MediaType      string `json:"mediaType"`
		Digest         string `json:"digest"`
		Size           int64  `json:"size"`
		Repository     string `json:"repository"`
		FromRepository string `json:"fromRepository"`
		URL            string `json:"url"`
		Tag            string `json:"tag"`
	} `json:"target"`
	Request struct {
		ID        string `json:"id"`
		Method    string `json:"method"`
		UserAgent string `json:"useragent"`
	} `json:"request"`
	Source struct {
		Addr       string `json:"addr"`
		InstanceID string `json:"instanceID"`
	} `json:"source"`
}

// key names an event by what it is about, not by its id.
func (e event) key() string {
	s := e.Action + " " + e.Target.Repository
	if e.Target.Tag != "" {
		s += ":" + e.Target.Tag
	}
	if e.Target.Digest != "" {
		s += "@" + e.Target.Digest
	}
	if e.Target.FromRepository != "" {
		s += " from " + e.Target.FromRepository
	}
	return s
}

func (rc *receiver) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", rc.addr)
	if err != nil {
		t.Fatalf("receiver port taken: %v", err)
	}
	rc.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Events []event `json:"events"`
		}
		if r.Header.Get("Content-Type") != "application/vnd.docker.distribution.events.v1+json" || json.NewDecoder(r.Body).Decode(&env) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.auth = append(rc.auth, r.Header.Get("Authorization"))
		for _, e := range env.Events {
			rc.byID[e.ID]++
			if rc.byID[e.ID] == 1 {
				rc.events = append(rc.events, e)
			}
		}
	})}
	go func() { _ = rc.srv.Serve(l) }()
	t.Cleanup(func() { _ = rc.srv.Close() })
}

func (rc *receiver) snapshot() (events []event, duplicates int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.byID {
		duplicates += n - 1
	}
	return slices.Clone(rc.events), duplicates
}

func keys(es []event) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.key())
	}
	slices.Sort(out)
	return out
}

type registry struct {
	*testenv.Process
	addr, debug, config string
}

func startRegistry(t *testing.T, reg *registry) {
	t.Helper()
	reg.Process = testenv.Start(t, nil, testenv.Gatehouse(t), "registry", "serve", reg.config)
	reg.WaitHTTP(t, "http://"+reg.addr+"/v2/")
}

// metric reads one sample from the debug server's metrics (-1 if absent).
func (reg *registry) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + reg.debug + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestDeliveryAcrossKill: events of a push, a copy (mounts), pulls and a
// delete made while the receiver is down are queued on disk; the registry
// is killed with SIGKILL, restarted with the receiver up, and the receiver
// gets every event. Later events arrive exactly once.
func TestDeliveryAcrossKill(t *testing.T) {
	dir := t.TempDir()
	rc := &receiver{addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), byID: map[string]int{}}
	reg := &registry{
		addr:   fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		debug:  fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		config: filepath.Join(dir, "config.yml"),
	}
	cfg := fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  debug:
    addr: %s
    prometheus:
      enabled: true
notifications:
  endpoints:
    - name: hook
      url: http://%s/events
      headers:
        Authorization: [Bearer webhook-secret]
      timeout: 2s
      threshold: 2
      backoff: 100ms
`, filepath.Join(dir, "data"), reg.addr, reg.debug, rc.addr)
	if err := os.WriteFile(reg.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startRegistry(t, reg)

	crane := testenv.Tool(t, "crane")
	home := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + home, "HOME=" + home}
	im := testenv.NewImage(t, map[string]string{"notify/a.txt": "first image\n"})
	layout := filepath.Join(home, "layout")
	im.WriteOCILayout(t, layout, "v1")
	r := reg.addr
	testenv.MustRun(t, env, crane, "push", "--insecure", layout, r+"/team/app:v1")
	testenv.MustRun(t, env, crane, "copy", "--insecure", r+"/team/app:v1", r+"/team/copy:v1")
	if got := testenv.MustRun(t, env, crane, "blob", "--insecure", r+"/team/app@"+im.LayerDigest); got != string(im.Layer) {
		t.Fatal("pulled layer differs")
	}
	testenv.MustRun(t, env, crane, "delete", "--insecure", r+"/team/copy@"+im.Digest)

	// What the registry saw, from its side: crane copy fetches the
	// manifest (a pull) and mounts the blobs.
	want := []string{
		"push team/app@" + im.ConfigDigest,
		"push team/app@" + im.LayerDigest,
		"push team/app:v1@" + im.Digest,
		"pull team/app:v1@" + im.Digest,
		"mount team/copy@" + im.ConfigDigest + " from team/app",
		"mount team/copy@" + im.LayerDigest + " from team/app",
		"push team/copy:v1@" + im.Digest,
		"pull team/app@" + im.LayerDigest,
		"delete team/copy@" + im.Digest,
	}
	slices.Sort(want)

	queued := `gatehouse_registry_notifications_queued{endpoint="hook"}`
	failed := `gatehouse_registry_notifications_failed_total{endpoint="hook"}`
	testenv.Eventually(t, 20*time.Second, "the metrics show every event queued and failed deliveries", func() bool {
		return reg.metric(t, queued) == float64(len(want)) && reg.metric(t, failed) >= 2
	})

	if err := reg.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the registry gone", reg.Exited)

	rc.start(t)
	startRegistry(t, reg)
	testenv.Eventually(t, 30*time.Second, "every queued event delivered after the restart", func() bool {
		got, _ := rc.snapshot()
		return len(got) >= len(want)
	})
	got, dups := rc.snapshot()
	if diff := cmp.Diff(want, keys(got)); diff != "" {
		t.Errorf("events after the crash (-want +got):\n%s", diff)
	}
	// Nothing was delivered before the kill (the receiver was down), so
	// nothing may come twice.
	if dups != 0 {
		t.Errorf("%d duplicate deliveries", dups)
	}
	for _, e := range got {
		if e.Request.ID == "" || e.Source.InstanceID == "" || e.Request.UserAgent == "" || (e.Action != "delete" && !strings.HasPrefix(e.Target.URL, "http://"+r+"/v2/")) {
			t.Errorf("event lacks fields: %+v", e)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the queue metric back to zero", func() bool { return reg.metric(t, queued) == 0 })

	// With the receiver up, events arrive once each.
	im2 := testenv.NewImage(t, map[string]string{"notify/b.txt": "second image\n"})
	layout2 := filepath.Join(home, "layout2")
	im2.WriteOCILayout(t, layout2, "v2")
	testenv.MustRun(t, env, crane, "push", "--insecure", layout2, r+"/team/app:v2")
	more := []string{"push team/app@" + im2.ConfigDigest, "push team/app@" + im2.LayerDigest, "push team/app:v2@" + im2.Digest}
	testenv.Eventually(t, 20*time.Second, "the second push's events", func() bool {
		got, _ := rc.snapshot()
		return len(got) >= len(want)+len(more)
	})
	got, dups = rc.snapshot()
	all := slices.Concat(want, more)
	slices.Sort(all)
	if diff := cmp.Diff(all, keys(got)); diff != "" {
		t.Errorf("all events (-want +got):\n%s", diff)
	}
	if dups != 0 {
		t.Errorf("%d duplicate deliveries", dups)
	}
	rc.mu.Lock()
	for _, a := range rc.auth {
		if a != "Bearer webhook-secret" {
			t.Errorf("Authorization = %q", a)
		}
	}
	rc.mu.Unlock()
	if strings.Contains(reg.Log(), "webhook-secret") {
		t.Error("the header's secret is in the registry's log")
	}
}
