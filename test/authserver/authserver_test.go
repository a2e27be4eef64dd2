//go:build integration

// Package authserver_test runs the gatehouse binary's auth-server command
// over TLS and checks tokens, reload and shutdown from the outside.
package authserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

const issuer = "Gatehouse test issuer"

type env struct {
	dir    string
	config string
	base   string
	addr   string
	ca     *x509.Certificate
	client *http.Client
	proc   *testenv.Process
}

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeConfig(t *testing.T, e *env, users string) {
	t.Helper()
	cfg := fmt.Sprintf(`server:
  addr: %s
  certificate: %s
  key: %s
  hsts: true
token:
  issuer: %q
  expiration: 900
users:
%s
acl:
  - match: {account: "/.+/"}
    actions: ["*"]
    comment: every user may do everything on their own repositories
  - match: {account: ""}
    actions: [pull]
`, e.addr, filepath.Join(e.dir, "server.crt"), filepath.Join(e.dir, "server.key"), issuer, users)
	tmp := e.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.config); err != nil {
		t.Fatal(err)
	}
}

func usersYAML(t *testing.T, names ...string) string {
	var b strings.Builder
	b.WriteString("  \"\": {}\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n    password: %q\n", n, hash(t, n+"-pw"))
	}
	return b.String()
}

func setup(t *testing.T) *env {
	t.Helper()
	bin := testenv.Gatehouse(t)
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("Test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteCertPEM(filepath.Join(dir, "server.crt"), cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(filepath.Join(dir, "server.key"), key); err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, config: filepath.Join(dir, "auth_config.yml"), ca: ca}
	e.addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.base = "https://" + e.addr
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	writeConfig(t, e, usersYAML(t, "alice"))
	e.proc = testenv.Start(t, nil, bin, "auth-server", "--log-format", "json", e.config)
	e.proc.WaitTCP(t, e.addr)
	return e
}

type tokenResp struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
}

// result is a response already read and closed.
type result struct {
	StatusCode int
	Header     http.Header
	TLS        *tls.ConnectionState
}

func (e *env) get(t *testing.T, query, user, pass string) (result, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+"/auth?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return e.do(t, req)
}

func (e *env) do(t *testing.T, req *http.Request) (result, []byte) {
	t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{StatusCode: resp.StatusCode, Header: resp.Header, TLS: resp.TLS}, b
}

func (e *env) verify(t *testing.T, body []byte) (*token.Claims, tokenResp) {
	t.Helper()
	var tr tokenResp
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	v, err := token.NewVerifier(token.VerifierOptions{Issuer: issuer, Service: "registry.test", RootCerts: []*x509.Certificate{e.ca}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tr.Token)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return c, tr
}

func TestTokensOverTLS(t *testing.T) {
	e := setup(t)
	resp, body := e.get(t, "service=registry.test&scope=repository:alice/app:pull,push&scope=repository:other/x:push", "alice", "alice-pw")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatal("not TLS 1.2+")
	}
	if h := resp.Header.Get("Strict-Transport-Security"); h == "" {
		t.Error("no HSTS header")
	}
	c, tr := e.verify(t, body)
	want := []token.ResourceActions{
		{Type: "repository", Name: "alice/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "other/x", Actions: []string{"push"}},
	}
	if d := cmp.Diff(want, c.Access); d != "" || c.Subject != "alice" {
		t.Errorf("sub %q access (-want +got):\n%s", c.Subject, d)
	}
	if tr.ExpiresIn != 900 || tr.Token != tr.AccessToken {
		t.Errorf("response %+v", tr)
	}

	resp, body = e.get(t, "service=registry.test&scope=repository:alice/app:pull,push", "", "")
	c, _ = e.verify(t, body)
	if d := cmp.Diff([]string{"pull"}, c.Access[0].Actions); d != "" || resp.StatusCode != 200 {
		t.Errorf("anonymous: %s", d)
	}

	resp, _ = e.get(t, "service=registry.test", "alice", "wrong")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != fmt.Sprintf("Basic realm=%q", issuer) {
		t.Errorf("wrong password: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// OAuth2: password grant with offline access, then the refresh grant.
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "client_id": {"docker"},
		"access_type": {"offline"}, "service": {"registry.test"}}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/auth", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body = e.do(t, req)
	_, tr = e.verify(t, body)
	if resp.StatusCode != 200 || tr.RefreshToken == "" {
		t.Fatalf("password grant: %d %s", resp.StatusCode, body)
	}
	form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {"docker"},
		"service": {"registry.test"}, "scope": {"repository:alice/app:push"}}
	req, _ = http.NewRequest(http.MethodPost, e.base+"/auth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body = e.do(t, req)
	c, _ = e.verify(t, body)
	if resp.StatusCode != 200 || c.Subject != "alice" || len(c.Access) != 1 || c.Access[0].Actions[0] != "push" {
		t.Fatalf("refresh grant: %d %s", resp.StatusCode, body)
	}

	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"} {
		req, _ := http.NewRequest(http.MethodGet, e.base+p, nil)
		if resp, body := e.do(t, req); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	if log := e.proc.Log(); strings.Contains(log, "alice-pw") {
		t.Error("the password reached the log")
	}
}

func TestReloadOnSIGHUPAndShutdown(t *testing.T) {
	e := setup(t)
	if resp, _ := e.get(t, "service=registry.test", "bob", "bob-pw"); resp.StatusCode != 401 {
		t.Fatalf("bob before reload: %d", resp.StatusCode)
	}
	writeConfig(t, e, usersYAML(t, "bob"))
	if err := e.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "bob", "bob-pw", 200)
	if resp, _ := e.get(t, "service=registry.test", "alice", "alice-pw"); resp.StatusCode != 401 {
		t.Errorf("alice after reload: %d", resp.StatusCode)
	}
	// SIGHUP alone reloads (and does not kill the process).
	const reloaded = `"msg":"reloaded","reason":"SIGHUP"`
	waitLog(t, e, reloaded)
	before := strings.Count(e.proc.Log(), reloaded)
	if err := e.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "a second reload logged", func() bool {
		return strings.Count(e.proc.Log(), reloaded) > before || e.proc.Exited()
	})
	if e.proc.Exited() {
		t.Fatal("SIGHUP killed the process")
	}

	// A broken config is refused; bob still works; every problem is logged.
	if err := os.WriteFile(e.config, []byte("server:\n  adr: x\ntoken: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.proc.Log(), "reload failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload failure logged:\n%s", e.proc.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(e.proc.Log(), "reload failed"); n < 2 {
		t.Errorf("want every problem logged, got %d lines", n)
	}
	if resp, _ := e.get(t, "service=registry.test", "bob", "bob-pw"); resp.StatusCode != 200 {
		t.Errorf("bob after a failed reload: %d", resp.StatusCode)
	}

	if err := e.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for !e.proc.Exited() {
		if time.Now().After(deadline) {
			t.Fatal("still running 15 s after SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := e.proc.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM:\n%s", code, e.proc.Log())
	}
}

func waitLog(t *testing.T, e *env, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.proc.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %s:\n%s", s, e.proc.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitStatus(t *testing.T, e *env, user, pass string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := e.get(t, "service=registry.test", user, pass)
		if resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %d, want %d", user, resp.StatusCode, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBadConfigExitsWithEveryProblem(t *testing.T) {
	bin := testenv.Gatehouse(t)
	file := filepath.Join(t.TempDir(), "auth_config.yml")
	if err := os.WriteFile(file, []byte("server:\n  adr: x\ntoken:\n  issuer: i\nusers: {}\nacl:\n  - match: {gidNumber: \"6000\"}\n    actions: [\"*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "auth-server", file).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("err %v, want exit 1; output:\n%s", err, out)
	}
	for _, want := range []string{`"server.adr"`, "gidNumber", "token.expiration"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// passwordGrant logs in with the OAuth2 password grant and returns the
// status and the refresh token.
func (e *env) passwordGrant(t *testing.T, user, pass string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}, "client_id": {"docker"},
		"access_type": {"offline"}, "service": {"registry.test"}}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/auth", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := e.do(t, req)
	var tr tokenResp
	_ = json.Unmarshal(body, &tr)
	return resp.StatusCode, tr.RefreshToken
}

// refreshGrant uses a refresh token and returns the status.
func (e *env) refreshGrant(t *testing.T, rt string) int {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"docker"}, "service": {"registry.test"}}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/auth", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ := e.do(t, req)
	return resp.StatusCode
}

// `gatehouse users passwd` on the file a running auth server reads: after
// the reload the old password and the old refresh token fail and the new
// password works; `users remove` and `users add` with the same password
// do not bring the refresh token back.
func TestUsersPasswdRevokesRefreshTokens(t *testing.T) {
	e := setup(t)
	bin := testenv.Gatehouse(t)
	status, oldRT := e.passwordGrant(t, "alice", "alice-pw")
	if status != 200 || oldRT == "" {
		t.Fatalf("login: %d", status)
	}
	if s := e.refreshGrant(t, oldRT); s != 200 {
		t.Fatalf("refresh before the change: %d", s)
	}
	users := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"users"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gatehouse users %v: %v\n%s", args, err, out)
		}
		if strings.Contains(string(out), "$2") {
			t.Errorf("gatehouse users %v printed a hash:\n%s", args, out)
		}
	}
	users("new-pw\n", "passwd", "--config", e.config, "alice")

	waitStatus(t, e, "alice", "new-pw", 200)
	if resp, _ := e.get(t, "service=registry.test", "alice", "alice-pw"); resp.StatusCode != 401 {
		t.Errorf("the old password after the change: %d, want 401", resp.StatusCode)
	}
	if s := e.refreshGrant(t, oldRT); s != 400 {
		t.Errorf("the old refresh token after the change: %d, want 400", s)
	}
	status, rt := e.passwordGrant(t, "alice", "new-pw")
	if status != 200 || e.refreshGrant(t, rt) != 200 {
		t.Fatalf("login and refresh with the new password: %d", status)
	}

	// Removed, then added again with the same password.
	users("", "remove", "--config", e.config, "alice")
	waitStatus(t, e, "alice", "new-pw", 401)
	users("new-pw\n", "add", "--config", e.config, "alice")
	waitStatus(t, e, "alice", "new-pw", 200)
	if s := e.refreshGrant(t, rt); s != 400 {
		t.Errorf("a refresh token from before the removal: %d, want 400", s)
	}
	if log := e.proc.Log(); strings.Contains(log, "new-pw") || strings.Contains(log, "$2a$") {
		t.Error("a password or hash reached the log")
	}
}
