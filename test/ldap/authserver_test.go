//go:build integration

package ldap_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// seedAuthConfig is the seed's auth_config.yml pointed at the test slapd,
// with its ACL fixed as Gatehouse's loader asks (labels instead of the
// ignored gidNumber key) and a rule for DevOps.
const seedAuthConfig = `server:  # Server settings.
  # Address to listen on.
  addr: "%[1]s"
  # TLS certificate and key.
  certificate: "%[2]s"
  key: "%[3]s"
%[8]stoken:  # Settings for the tokens.
  issuer: "Auth-Service"  # Must match issuer in the Registry config.
  expiration: 900
ldap_auth:
  addr: "%[4]s"
  tls: always
  insecure_tls_skip_verify: true
  bind_dn: %[5]s
  bind_password_file: %[6]s
  base: "o=company1.com,dc=domain,dc=com"
  filter: (&(uid=${account})(objectClass=posixAccount))
  labels:
    groups:
      attribute: gidNumber
acl:
%[7]s`

const fixedACL = `  - match: {labels: {groups: "6000"}}
    actions: ["*"]
    comment: "If you are part of Ops group you can do anything."
  - match: {labels: {groups: "7000"}}
    actions: ["pull"]
    comment: "DevOps can pull."
`

const seedACL = `  - match: {"gidNumber": "6000"}
    actions: ["*"]
    comment: "If you are part of Ops group you can do anything."
`

// authServerFiles writes a server certificate and the config, returning
// the config path and a client trusting the certificate.
func authServerFiles(t testing.TB, l *testenv.LDAP, addr, acl, extraServer string) (string, *http.Client) {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("auth test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := tlsutil.WriteCertPEM(certFile, cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(keyFile, key); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(seedAuthConfig, addr, certFile, keyFile, l.TLSAddr, l.BindDN, l.BindPasswordFile, acl, extraServer)
	cfgFile := filepath.Join(dir, "auth_config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	return cfgFile, client
}

type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// tokenRequest asks for a token the way `docker login` / the seed's curl
// script do, and returns the status, the granted access and the response headers.
func tokenRequest(t *testing.T, client *http.Client, addr, user, password, scope string) (int, []access, http.Header) {
	t.Helper()
	url := "https://" + addr + "/auth?service=registry.test"
	if scope != "" {
		url += "&scope=" + scope
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, resp.Header
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatalf("token response %s: %v", body, err)
	}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub    string   `json:"sub"`
		Access []access `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != user {
		t.Errorf("sub %q, want %q", claims.Sub, user)
	}
	return resp.StatusCode, claims.Access, resp.Header
}

// The seed's LDAP setup through `gatehouse auth-server`: Ops may push and
// pull, DevOps only pull, a user in no group gets nothing, wrong passwords
// are 401, a directory outage is 503 with Retry-After and recovers.
func TestAuthServerSeedConfig(t *testing.T) {
	bin := testenv.Gatehouse(t)
	l := testenv.StartSlapd(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfgFile, client := authServerFiles(t, l, addr, fixedACL, "")
	p := testenv.Start(t, nil, bin, "auth-server", cfgFile)
	p.WaitHTTP(t, "https://"+addr+"/")

	const scope = "repository:team/app:push,pull"
	tests := []struct {
		name, user, password string
		wantStatus           int
		wantActions          []string
	}{
		{"ops pushes and pulls", testenv.LDAPUserOps, l.UserPassword, 200, []string{"pull", "push"}},
		{"devops only pulls", testenv.LDAPUserDevOps, l.UserPassword, 200, []string{"pull"}},
		{"no group, nothing", testenv.LDAPUserNoGroup, l.UserPassword, 200, []string{}},
		{"wrong password", testenv.LDAPUserOps, "wrong", 401, nil},
		{"not a posixAccount", testenv.LDAPUserNotPosix, l.UserPassword, 401, nil},
		{"filter injection", "*", l.UserPassword, 401, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, acc, _ := tokenRequest(t, client, addr, tc.user, tc.password, scope)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d", status, tc.wantStatus)
			}
			if tc.wantActions == nil {
				return
			}
			want := []access{{Type: "repository", Name: "team/app", Actions: tc.wantActions}}
			if diff := cmp.Diff(want, acc); diff != "" {
				t.Errorf("access (-want +got):\n%s", diff)
			}
		})
	}
	ready := func() int {
		resp, err := client.Get("https://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := ready(); s != http.StatusOK {
		t.Errorf("/readyz: %d with the directory up", s)
	}

	t.Run("directory down then back", func(t *testing.T) {
		l.Stop()
		// A user whose password was never verified (the credential cache
		// cannot answer for them) needs the directory.
		status, _, header := tokenRequest(t, client, addr, testenv.LDAPUserUnicode, l.UserPassword, scope)
		if status != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", status)
		}
		if header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if s := ready(); s != http.StatusServiceUnavailable {
			t.Errorf("/readyz: %d with the directory down, want 503", s)
		}
		if !strings.Contains(p.Log(), l.TLSAddr) {
			t.Errorf("the server's log does not name the directory %s", l.TLSAddr)
		}
		l.Restart()
		status, acc, _ := tokenRequest(t, client, addr, testenv.LDAPUserUnicode, l.UserPassword, scope)
		if status != http.StatusOK {
			t.Fatalf("after the restart: status %d", status)
		}
		if diff := cmp.Diff([]access{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}, acc); diff != "" {
			t.Errorf("access (-want +got):\n%s", diff)
		}
		if s := ready(); s != http.StatusOK {
			t.Errorf("/readyz after the restart: %d", s)
		}
	})
}

// The seed's ACL as written ({"gidNumber": "6000"}) grants everything to
// everyone in docker_auth; Gatehouse refuses to start and names the fix.
func TestAuthServerRefusesSeedACL(t *testing.T) {
	bin := testenv.Gatehouse(t)
	l := testenv.StartSlapd(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfgFile, _ := authServerFiles(t, l, addr, seedACL, "")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := testenv.Run(ctx, nil, bin, "auth-server", cfgFile)
	if err == nil {
		t.Fatalf("auth-server started with the seed's ACL:\n%s", out)
	}
	if !strings.Contains(out, "labels") || !strings.Contains(out, "groups") {
		t.Errorf("the error does not name the fix (match: {labels: {groups: ...}}):\n%s", out)
	}
}

// BenchmarkTokenLDAP measures token requests for an LDAP user through
// gatehouse auth-server with the seed's config (LDAPS): "cold" with the
// credential cache off (every request searches and binds), "cached" with
// it on. Run with -cpu 4 for 4 concurrent clients:
//
//	go test -tags integration -run XXX -bench TokenLDAP -cpu 4 ./test/ldap/
func BenchmarkTokenLDAP(b *testing.B) {
	bin := testenv.Gatehouse(b)
	l := testenv.StartSlapd(b)
	for _, bc := range []struct{ name, server string }{
		{"cold", "  credential_cache_ttl: 0s\n"},
		{"cached", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
			cfgFile, client := authServerFiles(b, l, addr, fixedACL, bc.server)
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 16
			p := testenv.Start(b, nil, bin, "auth-server", cfgFile)
			p.WaitHTTP(b, "https://"+addr+"/")
			url := "https://" + addr + "/auth?service=registry.test&scope=repository:team/app:push,pull"
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.SetBasicAuth(testenv.LDAPUserOps, l.UserPassword)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
