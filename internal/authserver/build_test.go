package authserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

// buildFromYAML writes a key pair and a config to a temp dir and builds a
// Chain from it the way auth-server does.
func buildFromYAML(t *testing.T, body string) (*Chain, *authconfig.Config, string) {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("Test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, keyf := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	if err := tlsutil.WriteCertPEM(crt, cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(keyf, key); err != nil {
		t.Fatal(err)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("alicepw"), bcrypt.MinCost)
	data := fmt.Sprintf("server:\n  addr: 127.0.0.1:0\n  certificate: %s\n  key: %s\n", crt, keyf) +
		strings.ReplaceAll(body, "HASH", string(h))
	file := filepath.Join(dir, "auth_config.yml")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := authconfig.Load(file)
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	c, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg, dir
}

func TestBuildFromConfig(t *testing.T) {
	c, cfg, _ := buildFromYAML(t, `
  path_prefix: /p
  hsts: true
  credential_cache_ttl: 0s
  rate_limit: {failed_logins_per_account: 3, failed_logins_per_ip: 0, window: 1m}
token:
  issuer: Built issuer
  expiration: 600
  disable_legacy_key_id: true
  refresh_token_expiration: 3600
  jwks_path: /keys
users:
  "": {}
  alice:
    password: "HASH"
    labels: {groups: [dev]}
acl:
  - match: {labels: {groups: dev}}
    actions: ["*"]
  - match: {account: ""}
    actions: [pull]
`)
	want := struct {
		Issuer           string
		Expiration       time.Duration
		Refresh          time.Duration
		Prefix, JWKS     string
		HSTS             bool
		Cache            time.Duration
		Account, IP      int
		Window           time.Duration
		Authn, Authz     int
		RefreshKeyLength int
	}{"Built issuer", 10 * time.Minute, time.Hour, "/p", "/keys", true, -1, 3, -1, time.Minute, 1, 1, 32}
	got := want
	got.Issuer, got.Expiration, got.Refresh = c.Issuer, c.Expiration, c.RefreshExpiration
	got.Prefix, got.JWKS, got.HSTS, got.Cache = c.PathPrefix, c.JWKSPath, c.HSTS, c.CacheTTL
	got.Account, got.IP, got.Window = c.AccountFailures, c.IPFailures, c.FailureWindow
	got.Authn, got.Authz, got.RefreshKeyLength = len(c.Authenticators), len(c.Authorizers), len(c.RefreshKey)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("chain (-want +got):\n%s", d)
	}

	srv, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := &fixture{t: t, srv: srv}
	rec := f.get("/p/auth?service=registry.test&scope=repository:team/app:pull,push&offline_token=true&client_id=docker", "alice", "alicepw")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	roots, err := tlsutil.LoadCertificates(cfg.Token.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierOptions{Issuer: "Built issuer", Service: "registry.test", RootCerts: roots[len(roots)-1:]})
	if err != nil {
		t.Fatal(err)
	}
	f.verifier = v
	d := f.decode(rec)
	if diff := cmp.Diff([]token.ResourceActions{ra("repository", "team/app", "pull", "push")}, d.claims.Access); diff != "" {
		t.Errorf("access (-want +got):\n%s", diff)
	}
	// The static users answer Lookup: refresh works and follows the file.
	rec = f.post("/p/auth", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {d.resp.RefreshToken}, "client_id": {"docker"}, "service": {"registry.test"}})
	if rec.Code != 200 {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	if rec := f.get("/keys", "", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"kid"`) {
		t.Errorf("jwks_path: %d %s", rec.Code, rec.Body)
	}
}

func TestBuildRefreshOff(t *testing.T) {
	c, _, _ := buildFromYAML(t, `
token:
  issuer: i
  expiration: 60
  refresh_token_expiration: 0
users:
  "": {}
acl: []
`)
	defer c.Close()
	if c.RefreshKey != nil {
		t.Fatal("refresh key set although refresh tokens are off")
	}
	if c.CacheTTL <= 0 || c.AccountFailures <= 0 || c.TokenCacheTTL != time.Minute || c.TokenCacheSize != 4096 {
		t.Errorf("defaults from the config not used: cache %v account %d token cache %v/%d", c.CacheTTL, c.AccountFailures, c.TokenCacheTTL, c.TokenCacheSize)
	}
}

func TestBuildTokenCache(t *testing.T) {
	for _, tc := range []struct {
		server  string
		ttl     time.Duration
		size    int
		enabled bool
	}{
		{"  token_cache: {ttl: 30s, max_entries: 10}\n", 30 * time.Second, 10, true},
		{"  token_cache: {ttl: 0s}\n", -1, 4096, false},
	} {
		c, _, _ := buildFromYAML(t, tc.server+`token:
  issuer: i
  expiration: 900
users:
  "": {}
acl: []
`)
		if c.TokenCacheTTL != tc.ttl || c.TokenCacheSize != tc.size {
			t.Errorf("%q: chain token cache %v/%d, want %v/%d", tc.server, c.TokenCacheTTL, c.TokenCacheSize, tc.ttl, tc.size)
		}
		srv, err := New(c, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.Chain().tokens != nil; got != tc.enabled {
			t.Errorf("%q: token cache on %v, want %v", tc.server, got, tc.enabled)
		}
		_ = srv.Close()
	}
}
