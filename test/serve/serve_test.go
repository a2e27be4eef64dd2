//go:build integration

// Package serve tests `gatehouse serve` with no config: the generated data
// directory, TLS with the generated CA, token auth, metrics off the public
// ports, the environment variables and a real client (crane) pushing and
// pulling through it.
package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

func TestServeWithNoConfig(t *testing.T) {
	bin := testenv.Gatehouse(t)
	crane := testenv.Tool(t, "crane")
	work := t.TempDir()
	data := filepath.Join(work, "data")
	regPort, authPort, debugPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	args := []string{"serve",
		"--registry-addr", fmt.Sprintf("127.0.0.1:%d", regPort),
		"--auth-addr", fmt.Sprintf("127.0.0.1:%d", authPort),
		"--debug-addr", fmt.Sprintf("127.0.0.1:%d", debugPort),
		"--auth-metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort)}
	// The data directory and the admin's password come from the
	// environment, as in a container.
	const password = "serve-test-admin-pw"
	p := testenv.Start(t, []string{"GATEHOUSE_DATA_DIR=" + data, "GATEHOUSE_ADMIN_PASSWORD=" + password}, bin, args...)
	regURL := fmt.Sprintf("https://localhost:%d", regPort)
	p.WaitHTTP(t, regURL+"/v2/")
	p.WaitHTTP(t, fmt.Sprintf("https://localhost:%d/healthz", authPort))

	// Clients trust the CA alone in trust/ (certs/ also holds its key).
	ca := filepath.Join(data, "trust", "ca.crt")
	if entries, err := os.ReadDir(filepath.Dir(ca)); err != nil || len(entries) != 1 {
		t.Fatalf("trust folder: %v %v, want ca.crt alone", entries, err)
	}
	pwBytes, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(pwBytes)) != password {
		t.Fatalf("admin-password is not GATEHOUSE_ADMIN_PASSWORD's value")
	}
	if strings.Contains(p.Log(), password) {
		t.Fatal("the admin password appears in serve's output")
	}

	// The registry is served over TLS by a certificate from the generated CA
	// and challenges for a token.
	client := caClient(t, ca)
	resp, err := client.Get(regURL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer realm=") {
		t.Fatalf("GET /v2/ = %d %q, want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	env := []string{"SSL_CERT_FILE=" + ca, "DOCKER_CONFIG=" + filepath.Join(work, "docker")}
	host := fmt.Sprintf("localhost:%d", regPort)
	if out, err := testenv.Run(t.Context(), env, crane, "auth", "login", host, "-u", "admin", "-p", "wrong-password"); err == nil {
		// crane's login only stores credentials; the push below must then fail.
		layer := writeLayer(t, work)
		if out2, err := testenv.Run(t.Context(), env, crane, "append", "-f", layer, "-t", host+"/test/denied:v1"); err == nil {
			t.Fatalf("push with a wrong password succeeded:\n%s\n%s", out, out2)
		}
	}
	testenv.MustRun(t, env, crane, "auth", "login", host, "-u", "admin", "-p", password)
	layer := writeLayer(t, work)
	testenv.MustRun(t, env, crane, "append", "-f", layer, "-t", host+"/test/hello:v1")
	tags := testenv.MustRun(t, env, crane, "ls", host+"/test/hello")
	if strings.TrimSpace(tags) != "v1" {
		t.Fatalf("tags = %q, want v1", tags)
	}
	dgst := strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", host+"/test/hello:v1"))
	testenv.MustRun(t, env, crane, "pull", host+"/test/hello@"+dgst, filepath.Join(work, "pulled.tar"))

	// Anonymous users get no access by default.
	resp, err = client.Get(fmt.Sprintf("https://localhost:%d/auth?service=gatehouse&scope=repository:test/hello:pull", authPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		t.Fatalf("anonymous token request = %d %v, want 401", resp.StatusCode, body)
	}

	// Metrics are served on the debug addresses, not on the public ports.
	plain := &http.Client{Timeout: 10 * time.Second}
	for _, m := range []struct{ url, metric string }{
		{fmt.Sprintf("http://127.0.0.1:%d/metrics", debugPort), "gatehouse_registry_http_requests_total"},
		{fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), "gatehouse_auth_requests_total"},
	} {
		body, status := get(t, plain, m.url)
		if status != http.StatusOK || !strings.Contains(body, m.metric) {
			t.Errorf("GET %s = %d, want 200 with %s", m.url, status, m.metric)
		}
	}
	for _, u := range []string{regURL + "/metrics", fmt.Sprintf("https://localhost:%d/metrics", authPort)} {
		if body, status := get(t, client, u); status == http.StatusOK || strings.Contains(body, "gatehouse_") {
			t.Errorf("GET %s = %d: metrics on a public port", u, status)
		}
	}

	// A restart keeps the CA, the password and the images; the same
	// flags again agree with the files.
	p.Stop()
	p2 := testenv.Start(t, nil, bin, append(args, "--data-dir", data)...)
	p2.WaitHTTP(t, regURL+"/v2/")
	p2.WaitHTTP(t, fmt.Sprintf("https://localhost:%d/healthz", authPort))
	if strings.Contains(p2.Log(), "created ") {
		t.Errorf("second start created files:\n%s", p2.Log())
	}
	if got := strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", host+"/test/hello:v1")); got != dgst {
		t.Fatalf("after restart digest = %s, want %s", got, dgst)
	}

	// A flag the files contradict stops serve, naming the file to edit.
	p2.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := testenv.Run(ctx, nil, bin, "serve", "--data-dir", data, "--registry-addr", "127.0.0.1:1")
	if err == nil || !strings.Contains(out, filepath.Join(data, "config.yml")) || !strings.Contains(out, "http.addr") {
		t.Fatalf("serve with a contradicting --registry-addr: %v\n%s", err, out)
	}
}

// get returns the body and status of a GET.
func get(t *testing.T, c *http.Client, url string) (string, int) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

func caClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	certs, err := tlsutil.LoadCertificates(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// writeLayer writes a one-file tar for crane append.
func writeLayer(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello from gatehouse serve\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "layer.tar")
	testenv.MustRun(t, nil, "tar", "-C", src, "-cf", out, ".")
	return out
}
