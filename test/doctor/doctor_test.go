//go:build integration

// Package doctor_test runs `gatehouse doctor` against deployments started on
// 127.0.0.1 by the test: `gatehouse auth-server` (or, where the auth server
// has to misbehave, a small token server the test controls) in front of
// registry 2.8.2, registry v3.1.2 and Gatehouse's own registry, healthy and
// deliberately broken one link at a time. Each broken setup must make
// doctor's first FAIL line name the right check and the fix.
package doctor_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

const (
	issuer   = "Doctor test issuer"
	service  = "doctor-registry"
	user     = "alice"
	password = "alice-doctor-pw"
	// aclAll lets alice do everything, the catalog included.
	aclAll = "  - match: {account: \"alice\"}\n    actions: [\"*\"]\n"
)

// pki is a CA and a certificate it issued for localhost, 127.0.0.1 and ::1,
// used for TLS and to sign tokens, as `gatehouse certs init` makes them.
type pki struct {
	ca        *x509.Certificate
	leaf      *x509.Certificate
	key       crypto.Signer
	caFile    string // the CA alone
	chainFile string // leaf then CA
	keyFile   string
}

func newPKI(t *testing.T, caName string) *pki {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA(caName, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, leaf: leaf, key: key,
		caFile: filepath.Join(dir, "ca.crt"), chainFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key")}
	if err := tlsutil.WriteCertPEM(p.caFile, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteCertPEM(p.chainFile, leaf, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(p.keyFile, key); err != nil {
		t.Fatal(err)
	}
	return p
}

// deployment is an auth server and a registry that trusts it.
type deployment struct {
	auth *testenv.AuthServer
	reg  *testenv.Distribution
}

// authOpts are the auth server options of a healthy deployment on p.
func authOpts(p *pki) testenv.AuthServerOptions {
	return testenv.AuthServerOptions{
		Cert: p.chainFile, Key: p.keyFile, Issuer: issuer,
		Users: map[string]string{user: password}, ACL: aclAll,
	}
}

// startRegistry starts program over TLS on p with token auth ta.
func startRegistry(t *testing.T, program string, p *pki, ta *testenv.TokenAuth) *testenv.Distribution {
	t.Helper()
	return testenv.StartDistribution(t, testenv.DistributionOptions{
		Program: program, TLSCert: p.chainFile, TLSKey: p.keyFile, Token: ta,
	})
}

// healthy starts a deployment whose registry trusts the CA of p.
func healthy(t *testing.T, program string, p *pki) deployment {
	t.Helper()
	auth := testenv.StartAuthServer(t, authOpts(p))
	reg := startRegistry(t, program, p, &testenv.TokenAuth{Realm: auth.Realm(), Service: service, Issuer: issuer, RootCertBundle: p.caFile})
	return deployment{auth: auth, reg: reg}
}

// doctorRun runs the gatehouse binary's doctor command and returns its
// standard output and exit status.
func doctorRun(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Gatehouse(t), append([]string{"doctor", "--timeout", "10s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("gatehouse doctor: %v", err)
	}
	t.Logf("gatehouse doctor %s (exit %d):\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	if strings.Contains(out.String()+errOut.String(), password) {
		t.Error("doctor printed the password")
	}
	return out.String(), code
}

// login is doctor's arguments for alice with her password on stdin.
func login(registry string, extra ...string) []string {
	return append([]string{registry, "-u", user, "--password-stdin"}, extra...)
}

// expectFirstFail checks that doctor exited with 1 and that its first FAIL
// line is check's and contains every word.
func expectFirstFail(t *testing.T, out string, code int, check string, words ...string) {
	t.Helper()
	if code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	var first string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL") {
			first = l
			break
		}
	}
	if first == "" {
		t.Fatalf("no FAIL line in:\n%s", out)
	}
	if f := strings.Fields(first); len(f) < 2 || f[1] != check {
		t.Fatalf("first FAIL is not the %s check: %s", check, first)
	}
	expectOnPage(t, first)
	for _, w := range words {
		if !strings.Contains(first, w) {
			t.Errorf("FAIL line lacks %q: %s", w, first)
		}
	}
}

// TestHealthy: a working deployment on each registry passes every check,
// and doctor exits 0.
func TestHealthy(t *testing.T) {
	for _, program := range []string{testenv.Registry2, testenv.Registry3, testenv.RegistryGatehouse} {
		t.Run(program, func(t *testing.T) {
			p := newPKI(t, "Doctor CA")
			d := healthy(t, program, p)
			_, port, _ := net.SplitHostPort(d.reg.Addr)
			out, code := doctorRun(t, password+"\n", login("localhost:"+port, "--ca-file", p.caFile)...)
			if code != 0 {
				t.Fatalf("exit status %d, want 0", code)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 10 || lines[9] != "all checks passed" {
				t.Fatalf("want nine ok lines and the summary, got:\n%s", out)
			}
			for _, l := range lines[:9] {
				if !strings.HasPrefix(l, "ok ") {
					t.Errorf("not ok: %s", l)
				}
			}
			for _, w := range []string{`realm="` + d.auth.Realm() + `" service="` + service + `"`, `aud "doctor-registry"`, "x5c chain of 2", "GET /v2/_catalog: 200"} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

// TestJSON: --json reports the same checks as data.
func TestJSON(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	d := healthy(t, testenv.RegistryGatehouse, p)
	out, code := doctorRun(t, password+"\n", login("https://"+d.reg.Addr, "--ca-file", p.caFile, "--json")...)
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	var rep struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Check, Status string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Checks) != 9 || rep.Checks[7].Check != "trust" || rep.Checks[7].Status != "ok" {
		t.Errorf("report: %+v", rep)
	}
}

// TestWrongCA: --ca-file holds another CA, so the registry's certificate
// does not verify; doctor names the CA that issued it.
func TestWrongCA(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	other := newPKI(t, "Unrelated CA")
	d := healthy(t, testenv.Registry2, p)
	out, code := doctorRun(t, password+"\n", login(d.reg.Addr, "--ca-file", other.caFile)...)
	expectFirstFail(t, out, code, "tls", "certificate signed by unknown authority", `issued by "CN=Doctor CA"`,
		`holds "CN=Unrelated CA", which did not issue it`, `fix: trust the CA "CN=Doctor CA"`, "--ca-file")
}

// TestRealmUnreachable: the registry's realm names a port nothing listens on.
func TestRealmUnreachable(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	realm := "https://localhost:" + itoa(testenv.FreePort(t)) + "/auth"
	reg := startRegistry(t, testenv.Registry3, p, &testenv.TokenAuth{Realm: realm, Service: service, Issuer: issuer, RootCertBundle: p.caFile})
	out, code := doctorRun(t, password+"\n", login(reg.Addr, "--ca-file", p.caFile)...)
	expectFirstFail(t, out, code, "realm-tls", "connection refused to realm "+realm,
		"is the auth server running", "is the realm URL in the registry's config")
}

// TestIssuerMismatch: the registry expects another issuer than the auth
// server's token.issuer.
func TestIssuerMismatch(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	auth := testenv.StartAuthServer(t, authOpts(p))
	reg := startRegistry(t, testenv.Registry2, p, &testenv.TokenAuth{Realm: auth.Realm(), Service: service, Issuer: "Another issuer", RootCertBundle: p.caFile})
	out, code := doctorRun(t, password+"\n", login(reg.Addr, "--ca-file", p.caFile)...)
	expectFirstFail(t, out, code, "trust", "the registry does not trust the token", `error="invalid_token"`,
		`issuer: the token's iss is "Doctor test issuer"`, "auth.token.issuer must be exactly that")
}

// TestKeyNotInBundle: the registry's rootcertbundle holds another CA than
// the one that issued the token signing certificate.
func TestKeyNotInBundle(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	other := newPKI(t, "Unrelated CA")
	auth := testenv.StartAuthServer(t, authOpts(p))
	reg := startRegistry(t, testenv.Registry3, p, &testenv.TokenAuth{Realm: auth.Realm(), Service: service, Issuer: issuer, RootCertBundle: other.caFile})
	out, code := doctorRun(t, password+"\n", login(reg.Addr, "--ca-file", p.caFile)...)
	expectFirstFail(t, out, code, "trust", "the registry does not trust the token",
		`auth.token.rootcertbundle must contain the token signing certificate ("CN=localhost") or its CA ("CN=Doctor CA")`)
}

// TestLegacyKidOnRegistry3: docker_auth's default token form (no x5c, a
// libtrust kid) in front of registry v3, which cannot use it.
func TestLegacyKidOnRegistry3(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	opts := authOpts(p)
	opts.NoX5C = true
	auth := testenv.StartAuthServer(t, opts)
	leafFile := filepath.Join(t.TempDir(), "leaf.crt")
	if err := tlsutil.WriteCertPEM(leafFile, p.leaf); err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t, testenv.Registry3, p, &testenv.TokenAuth{Realm: auth.Realm(), Service: service, Issuer: issuer, RootCertBundle: leafFile})
	out, code := doctorRun(t, password+"\n", login(reg.Addr, "--ca-file", p.caFile)...)
	expectFirstFail(t, out, code, "trust", "no x5c and a libtrust kid", "registry 3.x refuses it", "token.x5c: true", "disable_legacy_key_id: true")
	if !strings.Contains(out, "no x5c, libtrust kid") {
		t.Error("the claims line does not describe the token's key")
	}
}

// TestWrongPassword: the auth server refuses alice's credentials.
func TestWrongPassword(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	d := healthy(t, testenv.RegistryGatehouse, p)
	out, code := doctorRun(t, "not-her-password\n", login(d.reg.Addr, "--ca-file", p.caFile)...)
	expectFirstFail(t, out, code, "token", "refused the credentials of alice", "wrong user or password", "HTTP 401", "check the user name and password")
}

// tinyRealm is a token server the test controls, for failures a correct
// auth server cannot produce on purpose: it answers every request with a
// token made by claims, signed with p's key and x5c chain, and sends
// dateOffset as its clock in the Date header.
func tinyRealm(t *testing.T, p *pki, dateOffset time.Duration, claims func(svc string, access []token.ResourceActions) token.Claims) string {
	t.Helper()
	signer, err := token.NewSigner(p.key, []*x509.Certificate{p.leaf, p.ca}, token.DefaultSignerOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(dateOffset).UTC().Format(http.TimeFormat))
		if u, pw, ok := r.BasicAuth(); !ok || u != user || pw != password {
			http.Error(w, "Auth failed.", http.StatusUnauthorized)
			return
		}
		scopes, err := token.ParseScopes(r.URL.Query()["scope"])
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var access []token.ResourceActions
		for _, s := range scopes {
			access = append(access, token.ResourceActions{Type: s.Type, Name: s.Name, Actions: s.Actions})
		}
		tok, err := signer.Sign(claims(r.URL.Query().Get("service"), access))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{
		Certificate: [][]byte{p.leaf.Raw, p.ca.Raw}, PrivateKey: p.key, Leaf: p.leaf}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "https://localhost:" + port + "/auth"
}

// TestServiceMismatch: the token server issues tokens for a fixed audience
// that is not the registry's auth.token.service.
func TestServiceMismatch(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	realm := tinyRealm(t, p, 0, func(_ string, access []token.ResourceActions) token.Claims {
		return token.NewClaims(issuer, user, "registry.example.com", time.Now(), 5*time.Minute, access)
	})
	reg := startRegistry(t, testenv.Registry3, p, &testenv.TokenAuth{Realm: realm, Service: service, Issuer: issuer, RootCertBundle: p.caFile})
	out, code := doctorRun(t, password+"\n", login(reg.Addr, "--ca-file", p.caFile)...)
	expectFirstFail(t, out, code, "claims", `token audience "registry.example.com" but the registry expects service "doctor-registry"`, "auth.token.service", "same value")
}

// TestClockSkew: the token server's clock runs five minutes ahead, so its
// tokens are not valid yet for the registry.
func TestClockSkew(t *testing.T) {
	p := newPKI(t, "Doctor CA")
	const ahead = 5 * time.Minute
	realm := tinyRealm(t, p, ahead, func(svc string, access []token.ResourceActions) token.Claims {
		return token.NewClaims(issuer, user, svc, time.Now().Add(ahead), 15*time.Minute, access)
	})
	reg := startRegistry(t, testenv.RegistryGatehouse, p, &testenv.TokenAuth{Realm: realm, Service: service, Issuer: issuer, RootCertBundle: p.caFile})
	out, code := doctorRun(t, password+"\n", login(reg.Addr, "--ca-file", p.caFile)...)
	expectFirstFail(t, out, code, "claims", "not valid yet for the registry", "auth server +5m0s", "clock runs ahead", "NTP")
}

func itoa(n int) string {
	return strconv.Itoa(n)
}
