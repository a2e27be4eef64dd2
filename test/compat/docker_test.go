//go:build integration

package compat_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// engineHost is the registry name the Docker engine tests use. It is mapped
// to ::1 only: the engine treats names on 127.0.0.0/8 as insecure registries
// (no TLS verification, plain HTTP fallback), but verifies [::1].
const engineHost = "registry.gatehouse-compat.test"

// TestDockerEngineSeedFlow runs the seed's flow with the real Docker engine
// against Debian's docker-registry 2.8.2 trusting Gatehouse tokens: docker
// login (OAuth2 password grant with offline_token, answered with a refresh
// token), push and pull (the engine then only holds the refresh token, so
// every token it gets is a refresh_token grant), and a wrong password.
func TestDockerEngineSeedFlow(t *testing.T) {
	p := newPKI(t, true, engineHost)
	testenv.MapHostIPv6Loopback(t, engineHost)
	const user, pass = "usera", "usera-compat-pw"
	authPort := testenv.FreePortIPv6(t)
	auth := testenv.StartAuthServer(t, testenv.AuthServerOptions{
		Addr: fmt.Sprintf("[::1]:%d", authPort),
		Cert: p.chainFile, Key: p.keyFile, Issuer: issuer,
		Users: map[string]string{user: pass},
		ACL:   "  - match: {account: \"" + user + "\"}\n    actions: [\"*\"]\n",
	})
	realm := fmt.Sprintf("https://%s:%d/auth", engineHost, authPort)
	regPort := testenv.FreePortIPv6(t)
	reg := testenv.StartDistribution(t, testenv.DistributionOptions{
		Program: testenv.Registry2, Addr: fmt.Sprintf("[::1]:%d", regPort),
		TLSCert: p.chainFile, TLSKey: p.keyFile,
		Token: &testenv.TokenAuth{Realm: realm, Service: service, Issuer: issuer, RootCertBundle: p.leafFile},
	})
	hostPort := fmt.Sprintf("%s:%d", engineHost, regPort)
	d := testenv.StartDockerd(t)

	// The engine verifies this registry's certificate: without the CA in
	// certs.d the login fails on it (so the TLS below is really checked).
	out, err := d.Run(context.Background(), pass+"\n", "login", "-u", user, "--password-stdin", hostPort)
	if err == nil || !strings.Contains(out, "x509") {
		t.Fatalf("docker login without the registry's CA: err %v, want an x509 error:\n%s", err, out)
	}
	testenv.TrustRegistryCA(t, hostPort, p.caPEM)
	ref := hostPort + "/seed/hello:v1"
	im := testenv.NewImage(t, map[string]string{"app/hello.txt": "hello from the docker engine\n"})
	archive := filepath.Join(t.TempDir(), "hello.tar")
	im.WriteDockerArchive(t, archive, ref)
	d.Docker(t, "", "load", "-i", archive)

	t.Run("wrong password", func(t *testing.T) {
		out, err := d.Run(context.Background(), "not-the-password\n", "login", "-u", user, "--password-stdin", hostPort)
		if err == nil {
			t.Fatalf("docker login with a wrong password succeeded:\n%s", out)
		}
		if !strings.Contains(strings.ToLower(out), "unauthorized") {
			t.Errorf("docker login error does not say unauthorized:\n%s", out)
		}
	})

	loginAt := len(auth.Log())
	out = d.Docker(t, pass+"\n", "login", "-u", user, "--password-stdin", hostPort)
	if !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %s", out)
	}
	// The engine logs in with GET, Basic credentials and offline_token=true.
	if !waitRecord(auth.Process, loginAt, func(r map[string]any) bool {
		path, _ := r["path"].(string)
		return isIssued(r, user) && r["method"] == "GET" && strings.Contains(path, "offline_token=true")
	}) {
		t.Errorf("docker login made no GET /auth?offline_token=true for %s; auth server log:\n%s", user, describe(logLines(auth.Process, loginAt)))
	}
	// The CLI keeps the refresh token (identitytoken), not the password.
	cfg := readDockerConfig(t, d.ConfigDir)
	entry, ok := cfg.Auths[hostPort]
	if !ok || entry.IdentityToken == "" {
		t.Fatalf("docker config has no identitytoken for %s: %+v", hostPort, cfg.Auths)
	}
	if raw, _ := base64.StdEncoding.DecodeString(entry.Auth); strings.Contains(string(raw), pass) {
		t.Fatal("docker config kept the password although a refresh token was issued")
	}

	pushAt := len(auth.Log())
	out = d.Docker(t, "", "push", ref)
	if !strings.Contains(out, "digest: sha256:") {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	pushed := out[strings.Index(out, "digest: ")+len("digest: "):]
	pushed = strings.Fields(pushed)[0]
	// With only the refresh token at hand, the engine must have used the
	// refresh_token grant (a POST to the token endpoint) for its push token.
	if !waitRecord(auth.Process, pushAt, isRefreshGrant(user)) {
		t.Errorf("docker push made no POST /auth (grant_type=refresh_token) for %s; auth server log:\n%s", user, describe(logLines(auth.Process, pushAt)))
	}

	d.Docker(t, "", "rmi", ref)
	pullAt := len(auth.Log())
	out = d.Docker(t, "", "pull", ref)
	if !strings.Contains(out, "Digest: "+pushed) {
		t.Errorf("docker pull did not get the pushed digest %s:\n%s", pushed, out)
	}
	if !waitRecord(auth.Process, pullAt, isRefreshGrant(user)) {
		t.Errorf("docker pull made no POST /auth (grant_type=refresh_token) for %s; auth server log:\n%s", user, describe(logLines(auth.Process, pullAt)))
	}
	// The registry holds what the engine pushed, under the seed's name.
	if _, err := os.Stat(filepath.Join(reg.Root, "docker/registry/v2/repositories/seed/hello/_manifests/tags/v1/current/link")); err != nil {
		t.Errorf("registry storage has no tag v1 for seed/hello: %v", err)
	}
	inspect := d.Docker(t, "", "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
	if !strings.Contains(inspect, "@"+pushed) {
		t.Errorf("pulled image's RepoDigests %s lack %s", strings.TrimSpace(inspect), pushed)
	}
}

// isIssued tells whether r is the auth server's record of a token issued
// to account.
func isIssued(r map[string]any, account string) bool {
	path, _ := r["path"].(string)
	status, _ := r["status"].(float64)
	return r["msg"] == "request" && strings.HasPrefix(path, "/auth") && status == 200 && r["outcome"] == "issued" && r["account"] == account
}

// isRefreshGrant matches a token issued to account through the OAuth2
// refresh_token grant (the auth server logs the grant type).
func isRefreshGrant(account string) func(map[string]any) bool {
	return func(r map[string]any) bool {
		return isIssued(r, account) && r["method"] == "POST" && r["grant"] == "refresh_token"
	}
}

// waitRecord waits up to 5 s for a log record (written after the response)
// from offset on that matches.
func waitRecord(p *testenv.Process, offset int, match func(map[string]any) bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range logLines(p, offset) {
			if match(r) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
}

func readDockerConfig(t *testing.T, dir string) dockerConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c dockerConfig
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	return c
}
