package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeJSONLogsBothHalves: serve --log-format json turns every line of
// both servers into JSON, and their access lines share one key set.
func TestServeJSONLogsBothHalves(t *testing.T) {
	var stdout, stderr lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, &stdout, &stderr, serveFlags{
			dataDir: filepath.Join(t.TempDir(), "data"), publicHost: "localhost",
			registryAddr: "127.0.0.1:0", authAddr: "127.0.0.1:0", logFormat: "json",
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	// Both listeners log their address once they listen.
	listening := regexp.MustCompile(`"msg":"listening".*?"server":"(auth|registry)"|"server":"(auth|registry)".*?"msg":"listening"`)
	addrRe := regexp.MustCompile(`"addr":"([^"]+)"`)
	urls := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for len(urls) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("servers did not start:\n%s", stderr.String())
		}
		for _, line := range strings.Split(stderr.String(), "\n") {
			m := listening.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			name := m[1] + m[2]
			if a := addrRe.FindStringSubmatch(line); a != nil {
				urls[name] = "https://" + a[1]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test against its own generated CA
	for _, u := range []string{urls["registry"] + "/v2/", urls["auth"] + "/auth?service=x"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The access lines are written after the response: wait for both.
	keys := map[string][]string{}
	for time.Now().Before(deadline) && len(keys) < 2 {
		keys = map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("a log line is not JSON: %q", line)
			}
			if m["msg"] != "request" {
				continue
			}
			half := "auth"
			if _, ok := m["route"]; ok {
				half = "registry"
			}
			for k := range m {
				switch k {
				case "route", "repository", "endpoint", "outcome", "grant": // what only one half knows
				default:
					keys[half] = append(keys[half], k)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(keys) < 2 {
		t.Fatalf("access lines of both halves not found:\n%s", stderr.String())
	}
	sort.Strings(keys["auth"])
	sort.Strings(keys["registry"])
	if strings.Join(keys["auth"], ",") != strings.Join(keys["registry"], ",") {
		t.Errorf("access-log keys differ:\nauth:     %v\nregistry: %v", keys["auth"], keys["registry"])
	}
}
