package benchenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// BenchUser is the static user of the auth servers the benchmarks start.
const BenchUser = "bench"

// Certs makes a CA and an RSA-2048 server certificate for localhost and
// 127.0.0.1 in dir with `gatehouse certs init --rsa` (docker_auth's
// measured setup); CertsKey chooses the key type.
func Certs(ctx context.Context, gatehouse, dir string) error {
	return CertsKey(ctx, gatehouse, dir, true)
}

// CertsKey is Certs with an RSA-2048 key when rsa is set, else ECDSA P-256.
func CertsKey(ctx context.Context, gatehouse, dir string, rsa bool) error {
	args := []string{"certs", "init", "--out", dir, "--host", "localhost", "--ip", "127.0.0.1"}
	if rsa {
		args = append(args, "--rsa")
	}
	cmd := exec.CommandContext(ctx, gatehouse, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gatehouse certs init: %w\n%s", err, out)
	}
	return nil
}

// AuthOptions configure an auth server started by StartAuthServer.
type AuthOptions struct {
	// Dir holds the certificates made by Certs; the config and log go there too.
	Dir string
	// Name tells configs and logs of several servers apart.
	Name string
	// TLS serves HTTPS with Dir's server certificate; else plain HTTP.
	TLS bool
	// Anonymous adds the anonymous user "" with pull access to every repository.
	Anonymous bool
	// CacheTTL is server.credential_cache_ttl ("5m", "0s" to turn it off).
	CacheTTL string
	// TokenCacheTTL is server.token_cache.ttl ("1m", "0s" to turn it
	// off); empty leaves the key out of the file.
	TokenCacheTTL string
	// Issuer is token.issuer.
	Issuer string
}

// AuthServer is a running `gatehouse auth-server`.
type AuthServer struct {
	*Process
	Addr     string
	TLS      bool
	Password string // BenchUser's password
	CA       string // path of the CA that signed the server and token certificate
}

// URL returns the base URL of the server.
func (a *AuthServer) URL() string {
	if a.TLS {
		return "https://" + a.Addr
	}
	return "http://" + a.Addr
}

// StartAuthServer writes an auth_config.yml (BenchUser with a bcrypt cost
// 10 password allowed everything, token signed by Dir's RSA-2048 server key,
// lifetime one hour) and starts `gatehouse auth-server` on a free port.
func StartAuthServer(ctx context.Context, gatehouse string, o AuthOptions) (*AuthServer, error) {
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	password := hex.EncodeToString(pw)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), 10)
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	crt, key := filepath.Join(o.Dir, "server.crt"), filepath.Join(o.Dir, "server.key")
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  addr: %q\n", addr)
	if o.TLS {
		fmt.Fprintf(&b, "  certificate: %q\n  key: %q\n", crt, key)
	}
	if o.CacheTTL != "" {
		fmt.Fprintf(&b, "  credential_cache_ttl: %s\n", o.CacheTTL)
	}
	if o.TokenCacheTTL != "" {
		fmt.Fprintf(&b, "  token_cache: {ttl: %s}\n", o.TokenCacheTTL)
	}
	fmt.Fprintf(&b, "token:\n  issuer: %q\n  expiration: 3600\n  certificate: %q\n  key: %q\n", o.Issuer, crt, key)
	fmt.Fprintf(&b, "users:\n  %q:\n    password: %q\n", BenchUser, string(hash))
	if o.Anonymous {
		b.WriteString("  \"\": {}\n")
	}
	fmt.Fprintf(&b, "acl:\n  - match: {account: %q}\n    actions: [\"*\"]\n", BenchUser)
	if o.Anonymous {
		b.WriteString("  - match: {account: \"\"}\n    actions: [\"pull\"]\n")
	}
	cfg := filepath.Join(o.Dir, o.Name+"-auth_config.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	p, err := Start("auth-server "+o.Name, filepath.Join(o.Dir, o.Name+"-auth.log"), nil, gatehouse, "auth-server", cfg)
	if err != nil {
		return nil, err
	}
	a := &AuthServer{Process: p, Addr: addr, TLS: o.TLS, Password: password, CA: filepath.Join(o.Dir, "ca.crt")}
	// /auth without service answers 400 quickly: it is up.
	probe := "http://" + addr + "/auth"
	if o.TLS {
		probe = "" // WaitHTTP does not trust our CA; wait for TCP instead.
	}
	if probe != "" {
		err = p.WaitHTTP(ctx, probe, 20*time.Second)
	} else {
		err = waitTCP(ctx, p, addr, 20*time.Second)
	}
	if err != nil {
		p.Stop()
		return nil, err
	}
	return a, nil
}

func waitTCP(ctx context.Context, p *Process, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Timeout: time.Second}
	for {
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			_ = c.Close()
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited before listening: %w\n%s", p.Name, p.err, p.Tail(2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %s\n%s", p.Name, addr, timeout, p.Tail(2000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Token asks a plain-HTTP auth server for a token for service and scopes
// as BenchUser.
func (a *AuthServer) Token(ctx context.Context, service string, scopes ...string) (string, error) {
	q := url.Values{"service": {service}}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL()+"/auth?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(BenchUser, a.Password)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token request: %s: %s", resp.Status, body)
	}
	var t struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.Token == "" {
		return "", fmt.Errorf("token response without a token: %s", body)
	}
	return t.Token, nil
}
