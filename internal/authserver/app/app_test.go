package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// writeConfig writes a key pair and an auth_config.yml with one user whose
// password is pw, and returns the file.
func writeConfig(t *testing.T, dir, pw string) string {
	t.Helper()
	crt, keyf := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	if _, err := os.Stat(crt); err != nil {
		ca, caKey, err := tlsutil.GenerateCA("Test CA", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlsutil.WriteCertPEM(crt, cert, ca); err != nil {
			t.Fatal(err)
		}
		if err := tlsutil.WriteKeyPEM(keyf, key); err != nil {
			t.Fatal(err)
		}
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf(`server:
  addr: 127.0.0.1:0
  certificate: %[1]s
  key: %[2]s
token:
  issuer: test
  expiration: 900
  certificate: %[1]s
  key: %[2]s
users:
  alice:
    password: %[3]q
acl:
  - match: {account: alice}
    actions: ["*"]
`, crt, keyf, string(h))
	file := filepath.Join(dir, "auth_config.yml")
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestRunReloadClose: the app serves tokens over TLS, picks up a changed
// file without restarting its listener, and Close releases the port.
func TestRunReloadClose(t *testing.T) {
	dir := t.TempDir()
	file := writeConfig(t, dir, "first")
	cfg, err := authconfig.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, file, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // its own test certificate
	status := func(pw string) int {
		req, _ := http.NewRequest(http.MethodGet, a.URL()+"/auth?service=registry&scope=repository:a:pull", nil)
		req.SetBasicAuth("alice", pw)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("first"); got != http.StatusOK {
		t.Fatalf("first password: %d", got)
	}
	writeConfig(t, dir, "second")
	deadline := time.Now().Add(10 * time.Second)
	for status("second") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the changed file was not reloaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := status("first"); got != http.StatusUnauthorized {
		t.Errorf("old password after reload: %d", got)
	}

	addr := strings.TrimPrefix(a.URL(), "https://")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	l.Close()
}

func TestNewFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	file := writeConfig(t, dir, "pw")
	cfg, err := authconfig.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	// Take the port away: New must fail and leave nothing open.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg.Server.Addr = l.Addr().String()
	if _, err := New(t.Context(), file, cfg, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New on a port in use succeeded")
	}
}
