package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
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

// TestServeEnvironment: GATEHOUSE_DATA_DIR names the data directory unless
// --data-dir does, GATEHOUSE_ADMIN_PASSWORD is the first start's admin
// password, and a flag the existing files contradict stops serve before
// it listens, naming the file.
func TestServeEnvironment(t *testing.T) {
	envDir := filepath.Join(t.TempDir(), "from-env")
	t.Setenv(dataDirEnv, envDir)
	t.Setenv(adminPasswordEnv, "first-start-pw")
	// An address no one may listen on makes serve fail right after the
	// data directory is made.
	code, _, errOut := runMain(t, "", "serve", "--registry-addr", "256.0.0.1:1", "--auth-addr", "256.0.0.1:2", "--debug-addr", "", "--auth-metrics-addr", "")
	if code == 0 {
		t.Fatal("serve on impossible addresses exited 0")
	}
	pw, err := os.ReadFile(filepath.Join(envDir, "admin-password"))
	if err != nil {
		t.Fatalf("GATEHOUSE_DATA_DIR was not used: %v\n%s", err, errOut)
	}
	if strings.TrimSpace(string(pw)) != "first-start-pw" {
		t.Errorf("admin-password = %q, want GATEHOUSE_ADMIN_PASSWORD's value", pw)
	}
	if strings.Contains(errOut, "first-start-pw") {
		t.Error("the admin password is printed")
	}

	// The flags of the first start were written into the files; another
	// registry address now contradicts config.yml.
	code, _, errOut = runMain(t, "", "serve", "--registry-addr", ":5200")
	if code != 1 || !strings.Contains(errOut, filepath.Join(envDir, "config.yml")) || !strings.Contains(errOut, "http.addr") {
		t.Errorf("contradicting --registry-addr: exit %d, stderr %q; want 1 naming config.yml and http.addr", code, errOut)
	}
	// Another password on a later start is refused too.
	t.Setenv(adminPasswordEnv, "another-pw")
	code, _, errOut = runMain(t, "", "serve", "--registry-addr", "256.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "admin-password") || strings.Contains(errOut, "another-pw") {
		t.Errorf("another admin password: exit %d, stderr %q", code, errOut)
	}

	// --data-dir wins over the environment.
	flagDir := filepath.Join(t.TempDir(), "from-flag")
	t.Setenv(adminPasswordEnv, "")
	_, _, _ = runMain(t, "", "serve", "--data-dir", flagDir, "--registry-addr", "256.0.0.1:1", "--auth-addr", "256.0.0.1:2", "--debug-addr", "", "--auth-metrics-addr", "")
	if _, err := os.Stat(filepath.Join(flagDir, "config.yml")); err != nil {
		t.Errorf("--data-dir was not used over GATEHOUSE_DATA_DIR: %v", err)
	}
}
