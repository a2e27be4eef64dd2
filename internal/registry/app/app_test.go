package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a registry on extra (YAML added to a filesystem config on a
// free loopback port) and returns its base URL.
func start(t *testing.T, extra string, log *slog.Logger) string {
	t.Helper()
	dir := t.TempDir()
	yml := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:0\n%s", filepath.Join(dir, "data"), extra)
	file := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := regconfig.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a.URL()
}

func htpasswdConfig(t *testing.T) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", file)
}

// TestUnauthenticatedPartialBodyIsCutOff: a client that sends headers and
// part of an announced body, without credentials, gets its 401 at once and
// loses the connection within http.timeouts.bodyread, instead of holding it.
func TestUnauthenticatedPartialBodyIsCutOff(t *testing.T) {
	base := start(t, "  timeouts:\n    bodyread: 300ms\n"+htpasswdConfig(t), slog.New(slog.DiscardHandler))
	for _, path := range []string{"/v2/", "/v2/library/alpine/blobs/uploads/"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", path)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("connection not closed within 5s: %v (read %q)", err, b)
			}
			if !strings.HasPrefix(string(b), "HTTP/1.1 401") && !strings.HasPrefix(string(b), "HTTP/1.1 405") {
				t.Fatalf("answer: %q", b)
			}
		})
	}
	// Idle, without sending the body at all: cut off by the body timeout.
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "PUT /v2/a/manifests/latest HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nContent-Length: 100\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("authenticated stalled body: connection not closed within 5s: %v", err)
	}
}

// TestJSONLogsOneKeySet: with log.formatter json, every line the registry
// writes is JSON, and the access line carries the shared keys.
func TestJSONLogsOneKeySet(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	base := start(t, "", log)
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/", nil)
	req.Header.Set("X-Request-Id", "client-id-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "client-id-1" {
		t.Errorf("X-Request-Id = %q, want the client's", resp.Header.Get("X-Request-Id"))
	}
	// An unknown method must not reach metrics or logs unbounded.
	req, _ = http.NewRequest(strings.Repeat("M", 4000), base+"/v2/", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	var access []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if m["msg"] == "request" {
			access = append(access, m)
		}
		if len(line) > 4096 {
			t.Errorf("log line of %d bytes", len(line))
		}
	}
	if len(access) != 2 {
		t.Fatalf("want 2 access lines, got %d:\n%s", len(access), buf.String())
	}
	for _, k := range []string{"request_id", "method", "path", "status", "bytes", "duration", "remote", "user_agent", "account", "route", "repository"} {
		if _, ok := access[0][k]; !ok {
			t.Errorf("access line lacks %q: %v", k, access[0])
		}
	}
	if access[0]["request_id"] != "client-id-1" {
		t.Errorf("request_id = %v", access[0]["request_id"])
	}
}

func TestOpenDriver(t *testing.T) {
	cfg := &regconfig.Config{}
	cfg.Storage.Filesystem = &regconfig.Filesystem{RootDirectory: t.TempDir()}
	d, err := OpenDriver(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(driver.LocalFiler); !ok {
		t.Error("the filesystem driver lost its sendfile capability in the wrapper")
	}
	if _, err := d.GetContent(t.Context(), "/a/../b"); err == nil {
		t.Error("a relative path component was accepted")
	}
	if err := d.Delete(t.Context(), "/"); err == nil {
		t.Error("deleting the storage root was accepted")
	}
	if _, err := OpenDriver(&regconfig.Config{}, nil); err == nil {
		t.Error("no driver configured: want an error")
	}
}
