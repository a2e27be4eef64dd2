//go:build integration

// Package compat_test proves that tokens issued by `gatehouse auth-server`
// are accepted (and bad ones refused) by the real registries Gatehouse
// replaces or sits beside: Debian's docker-registry (distribution 2.8.2) and
// registry v3.1.2, with each trust setting they offer, with real clients
// (crane and the Docker engine) pushing and pulling through them.
package compat_test

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

const (
	issuer  = "Gatehouse compat issuer"
	service = "gatehouse-compat"
)

// pki is a CA, a server certificate it signed (TLS for every server and the
// token signing key) and the files the servers and registries read.
type pki struct {
	ca     *x509.Certificate
	caKey  crypto.Signer
	leaf   *x509.Certificate
	key    crypto.Signer
	caFile string // the CA only
	// chainFile is leaf then CA (server.certificate); leafFile the leaf only.
	chainFile, leafFile, keyFile string
	caPEM                        []byte
}

// newPKI makes a CA and a server certificate for hosts (plus localhost,
// 127.0.0.1 and ::1) in a temp dir; rsa selects RSA-2048 keys instead of
// ECDSA P-256.
func newPKI(t *testing.T, rsa bool, hosts ...string) *pki {
	t.Helper()
	dir := t.TempDir()
	var opts []tlsutil.GenOption
	if rsa {
		opts = append(opts, tlsutil.WithRSA(2048))
	}
	ca, caKey, err := tlsutil.GenerateCA("Gatehouse compat CA", 24*time.Hour, opts...)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := tlsutil.GenerateServer(ca, caKey, append([]string{"localhost"}, hosts...),
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, 24*time.Hour, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, caKey: caKey, leaf: leaf, key: key,
		caFile: filepath.Join(dir, "ca.crt"), chainFile: filepath.Join(dir, "server.crt"),
		leafFile: filepath.Join(dir, "leaf.crt"), keyFile: filepath.Join(dir, "server.key"),
		caPEM: tlsutil.EncodeCertsPEM(ca)}
	for _, w := range []struct {
		path  string
		certs []*x509.Certificate
	}{{p.caFile, []*x509.Certificate{ca}}, {p.chainFile, []*x509.Certificate{leaf, ca}}, {p.leafFile, []*x509.Certificate{leaf}}} {
		if err := tlsutil.WriteCertPEM(w.path, w.certs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tlsutil.WriteKeyPEM(p.keyFile, key); err != nil {
		t.Fatal(err)
	}
	return p
}

// client returns an HTTPS client that trusts only the CA.
func (p *pki) client() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// fetchToken asks the auth server for a token the way registry clients do
// (GET with Basic credentials) and returns it.
func fetchToken(t *testing.T, c *http.Client, realm, user, pass string, scopes ...string) string {
	t.Helper()
	return fetchTokenFor(t, c, realm, service, user, pass, scopes...)
}

// fetchTokenFor is fetchToken for another service (audience).
func fetchTokenFor(t *testing.T, c *http.Client, realm, svc, user, pass string, scopes ...string) string {
	t.Helper()
	q := url.Values{"service": {svc}, "scope": scopes}
	req, err := http.NewRequest(http.MethodGet, realm+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	status, _, body := do(t, c, req)
	if status != http.StatusOK {
		t.Fatalf("token request: HTTP %d: %s", status, body)
	}
	var tr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" {
		t.Fatalf("token response %q: %v", body, err)
	}
	return tr.Token
}

// do sends req and returns status, headers and body (closed).
func do(t *testing.T, c *http.Client, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// bearerStatus returns the status of GET base/v2/ with the bearer token,
// and the response body for messages.
func bearerStatus(t *testing.T, c *http.Client, base, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	status, _, body := do(t, c, req)
	return status, strings.TrimSpace(string(body))
}

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logLines returns the JSON log records of a process's log from byte
// offset on (lines that are not JSON are skipped).
func logLines(p *testenv.Process, offset int) []map[string]any {
	log := p.Log()
	if offset > len(log) {
		offset = len(log)
	}
	var out []map[string]any
	for _, line := range strings.Split(log[offset:], "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// describe prints log records compactly for failure messages.
func describe(recs []map[string]any) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "  %v %v %v status=%v account=%v outcome=%v\n", r["msg"], r["method"], r["path"], r["status"], r["account"], r["outcome"])
	}
	return b.String()
}
