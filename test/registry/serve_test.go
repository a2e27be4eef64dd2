//go:build integration

package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeRefusesBadConfig(t *testing.T) {
	bin := testenv.Gatehouse(t)
	tests := []struct {
		name string
		cfg  string
		want []string
	}{
		{"every problem at once", "version: 0.1\nstorage:\n  filesystem:\n    rootdir: /x\nhttp:\n  addr: :0\n  tls:\n    certificate: /nonexistent.crt\nmiddleware:\n  registry: []\n",
			[]string{`unknown key "storage.filesystem.rootdir"`, "both certificate and key", "/nonexistent.crt", "middleware.registry", "not supported"}},
		{"s3 bucket unreachable", fmt.Sprintf("version: 0.1\nstorage:\n  s3:\n    region: us-east-1\n    bucket: images\n    accesskey: a\n    secretkey: s3-secret-value\n    regionendpoint: http://127.0.0.1:%d\nhttp:\n  addr: 127.0.0.1:0\n", testenv.FreePort(t)),
			[]string{`s3: bucket "images" at http://127.0.0.1:`, "connection refused"}},
		{"non-bcrypt htpasswd", "", []string{"not bcrypt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg == "" {
				hp := filepath.Join(t.TempDir(), "htpasswd")
				if err := os.WriteFile(hp, []byte("bob:$apr1$abc$defghijklmnopqrstuv\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg = fmt.Sprintf("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 127.0.0.1:0\nauth:\n  htpasswd:\n    realm: r\n    path: %s\n", hp)
			}
			out, err := testenv.Run(context.Background(), nil, bin, "registry", "serve", writeConfig(t, cfg))
			ee, ok := err.(interface{ ExitCode() int })
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want 1\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestServeDebugAndDrain(t *testing.T) {
	debug := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	reg := testenv.StartRegistry(t, false, fmt.Sprintf("  debug:\n    addr: %s\n    prometheus:\n      enabled: true\n", debug))
	_ = reg
	// http.debug must sit under http:, which StartRegistry wrote last.
	for _, p := range []string{"/debug/health", "/metrics", "/debug/pprof/"} {
		resp, err := client.Get("http://" + debug + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
		if p == "/metrics" && !strings.Contains(string(body), "gatehouse_registry_http_requests_total") {
			t.Errorf("metrics lack the request counter")
		}
	}
	resp, _ := request(t, "DELETE", reg.URL()+"/v2/a/blobs/sha256:"+strings.Repeat("a", 64), nil)
	if resp.StatusCode != 405 {
		t.Errorf("delete with storage.delete disabled: %d", resp.StatusCode)
	}

	// A slow request in flight survives SIGTERM: the registry drains it.
	resp, _ = request(t, "POST", reg.URL()+"/v2/slow/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PATCH", loc, pr)
	done := make(chan int, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("part one ")); err != nil {
		t.Fatal(err)
	}
	// The request is in flight once the upload holds its first part.
	testenv.Eventually(t, 10*time.Second, "the first part in the upload", func() bool {
		resp, _ := request(t, "GET", loc, nil)
		return resp.Header.Get("Range") == "0-8"
	})
	if err := reg.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the registry to start shutting down", func() bool {
		return strings.Contains(reg.Log(), "shutting down")
	})
	_, _ = pw.Write([]byte("part two"))
	pw.Close()
	select {
	case code := <-done:
		if code != 202 {
			t.Errorf("request in flight during shutdown: %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request in flight never finished")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !reg.Exited() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !reg.Exited() {
		t.Error("registry still running 10 s after SIGTERM")
	}
}

func TestServeTLS(t *testing.T) {
	bin := testenv.Gatehouse(t)
	dir := t.TempDir()
	testenv.MustRun(t, nil, bin, "certs", "init", "--out", dir, "--host", "localhost", "--ip", "127.0.0.1")
	reg := testenv.StartRegistryTLS(t, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if resp, err := c.Get("https://" + reg.Addr + "/v2/"); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1 was accepted; minimumtls defaults to tls1.2")
	}
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	resp, err := c.Get("https://" + reg.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("TLS /v2/: %d %v", resp.StatusCode, resp.Header)
	}
}
