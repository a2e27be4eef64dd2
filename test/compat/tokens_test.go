//go:build integration

package compat_test

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// trustMode is one way of making a registry trust the auth server's tokens.
type trustMode struct {
	name string
	// Auth server side.
	noX5C, thumbprint bool
	// Registry side: which file goes in rootcertbundle, or a JWKS fetched
	// from the auth server.
	bundle string // "leaf", "ca" or "" (no rootcertbundle)
	jwks   bool
	// accepted by registry 2.8.2 and by v3; v2 false and jwks true means
	// the mode does not exist for 2.8.2 (it has no jwks option).
	v2, v3 bool
}

var trustModes = []trustMode{
	{name: "x5c/cert-bundle", bundle: "leaf", v2: true, v3: true},
	{name: "x5c/ca-bundle", bundle: "ca", v2: true, v3: true},
	{name: "kid-legacy/cert-bundle", noX5C: true, bundle: "leaf", v2: true, v3: false},
	{name: "kid-thumbprint/cert-bundle", noX5C: true, thumbprint: true, bundle: "leaf", v2: false, v3: true},
	{name: "kid-legacy/ca-bundle", noX5C: true, bundle: "ca", v2: false, v3: false},
	{name: "kid-thumbprint/ca-bundle", noX5C: true, thumbprint: true, bundle: "ca", v2: false, v3: false},
	{name: "kid-thumbprint/jwks", noX5C: true, thumbprint: true, jwks: true, v3: true},
	{name: "kid-legacy/jwks", noX5C: true, jwks: true, v3: true},
}

// TestTokenTrustMatrix runs {registry 2.8.2, registry v3.1.2} × {ECDSA,
// RSA} × every trust mode: a `gatehouse auth-server` issues the tokens, the
// real registry decides. Where the registry accepts the mode, crane logs
// in, pushes and pulls an image through it with identical digests, and
// tokens for the wrong service, expired, or signed by another key are each
// refused with 401; where it does not, a token from the auth server is
// refused with 401 (the documented limits of each registry).
func TestTokenTrustMatrix(t *testing.T) {
	for _, reg := range []string{testenv.Registry2, testenv.Registry3} {
		for _, keyType := range []string{"ecdsa", "rsa"} {
			p := newPKI(t, keyType == "rsa")
			other := newPKI(t, keyType == "rsa")
			for _, m := range trustModes {
				if reg == testenv.Registry2 && m.jwks {
					continue // distribution 2.8 has no auth.token.jwks option
				}
				accept := m.v2
				if reg == testenv.Registry3 {
					accept = m.v3
				}
				t.Run(fmt.Sprintf("%s/%s/%s", reg, keyType, m.name), func(t *testing.T) {
					runTrustCell(t, reg, p, other, m, accept)
				})
			}
		}
	}
}

func runTrustCell(t *testing.T, program string, p, other *pki, m trustMode, accept bool) {
	dir := t.TempDir()
	const user, pass = "alice", "alice-compat-pw"
	auth := testenv.StartAuthServer(t, testenv.AuthServerOptions{
		Cert: p.chainFile, Key: p.keyFile, Issuer: issuer,
		NoX5C: m.noX5C, DisableLegacyKeyID: m.thumbprint,
		Users: map[string]string{user: pass},
		ACL:   "  - match: {account: \"" + user + "\"}\n    actions: [\"*\"]\n",
	})
	c := p.client()
	ta := &testenv.TokenAuth{Realm: auth.Realm(), Service: service, Issuer: issuer}
	switch m.bundle {
	case "leaf":
		ta.RootCertBundle = p.leafFile
	case "ca":
		ta.RootCertBundle = p.caFile
	}
	if m.jwks {
		req, err := http.NewRequest(http.MethodGet, "https://"+auth.Addr+"/.well-known/jwks.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		status, _, body := do(t, c, req)
		if status != http.StatusOK {
			t.Fatalf("GET /.well-known/jwks.json: HTTP %d: %s", status, body)
		}
		ta.JWKS = writeFile(t, dir, "jwks.json", body)
	}
	reg := testenv.StartDistribution(t, testenv.DistributionOptions{
		Program: program, TLSCert: p.chainFile, TLSKey: p.keyFile, Token: ta,
	})

	// The registry challenges with the realm and service it was given.
	req, err := http.NewRequest(http.MethodGet, reg.URL()+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	status, hdr, _ := do(t, c, req)
	chal := hdr.Get("Www-Authenticate")
	if status != http.StatusUnauthorized || !strings.Contains(chal, `realm="`+auth.Realm()+`"`) || !strings.Contains(chal, `service="`+service+`"`) {
		t.Fatalf("GET /v2/ without a token: HTTP %d, WWW-Authenticate %q", status, chal)
	}

	tok := fetchToken(t, c, auth.Realm(), user, pass, "repository:compat/app:pull,push")
	status, body := bearerStatus(t, c, reg.URL(), tok)
	if !accept {
		if status != http.StatusUnauthorized {
			t.Fatalf("%s should refuse a token in mode %s (documented limit), got HTTP %d: %s", program, m.name, status, body)
		}
		return
	}
	if status != http.StatusOK {
		t.Fatalf("%s refused the auth server's token in mode %s: HTTP %d: %s", program, m.name, status, body)
	}

	// The auth server's own token for another service is refused.
	otherSvc := fetchTokenFor(t, c, auth.Realm(), "another-registry", user, pass, "repository:compat/app:pull")
	if status, body := bearerStatus(t, c, reg.URL(), otherSvc); status != http.StatusUnauthorized {
		t.Errorf("%s accepted a Gatehouse token issued for another service: HTTP %d: %s", program, status, body)
	}

	// A real client pushes and pulls through the registry.
	cranePushPull(t, p, reg.Addr, user, pass)

	// Tokens minted with the same header options: a well-formed one is
	// accepted (so the refusals below are about the one thing changed).
	opts := token.SignerOptions{X5C: !m.noX5C, KeyID: token.KeyIDLibtrust}
	if m.thumbprint {
		opts.KeyID = token.KeyIDThumbprint
	}
	chain := []*x509.Certificate{p.leaf, p.ca}
	otherChain := []*x509.Certificate{other.leaf, other.ca}
	if m.noX5C {
		chain, otherChain = nil, nil
	}
	good, err := token.NewSigner(p.key, chain, opts)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := token.NewSigner(other.key, otherChain, opts)
	if err != nil {
		t.Fatal(err)
	}
	access := []token.ResourceActions{{Type: "repository", Name: "compat/app", Actions: []string{"pull"}}}
	now := time.Now()
	cases := []struct {
		name   string
		signer *token.Signer
		claims token.Claims
		want   int
	}{
		{"minted control", good, token.NewClaims(issuer, user, service, now, 5*time.Minute, access), http.StatusOK},
		{"wrong service", good, token.NewClaims(issuer, user, "another-registry", now, 5*time.Minute, access), http.StatusUnauthorized},
		{"wrong issuer", good, token.NewClaims("someone else", user, service, now, 5*time.Minute, access), http.StatusUnauthorized},
		{"expired", good, token.NewClaims(issuer, user, service, now.Add(-2*time.Hour), 5*time.Minute, access), http.StatusUnauthorized},
		{"another key", stranger, token.NewClaims(issuer, user, service, now, 5*time.Minute, access), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			signed, err := tc.signer.Sign(tc.claims)
			if err != nil {
				t.Fatal(err)
			}
			if status, body := bearerStatus(t, c, reg.URL(), signed); status != tc.want {
				t.Errorf("GET /v2/ with a %s token: HTTP %d, want %d: %s", tc.name, status, tc.want, body)
			}
		})
	}
}

// cranePushPull logs crane in to the registry at addr, pushes a fresh image
// from an OCI layout, and checks the manifest digest, tag list and pulled
// layer.
func cranePushPull(t *testing.T, p *pki, addr, user, pass string) {
	t.Helper()
	crane := testenv.Tool(t, "crane")
	dir := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + dir, "HOME=" + dir, "SSL_CERT_FILE=" + p.caFile}
	im := testenv.NewImage(t, map[string]string{"compat/" + t.Name() + ".txt": "pushed through a real registry\n"})
	layout := filepath.Join(dir, "layout")
	im.WriteOCILayout(t, layout, "v1")
	testenv.MustRun(t, env, crane, "auth", "login", addr, "-u", user, "-p", pass)
	ref := addr + "/compat/app:v1"
	testenv.MustRun(t, env, crane, "push", layout, ref)
	if got := strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", ref)); got != im.Digest {
		t.Errorf("crane digest %s = %s, want the pushed manifest's %s", ref, got, im.Digest)
	}
	if got := strings.TrimSpace(testenv.MustRun(t, env, crane, "ls", addr+"/compat/app")); got != "v1" {
		t.Errorf("crane ls = %q, want v1", got)
	}
	if got := testenv.MustRun(t, env, crane, "blob", addr+"/compat/app@"+im.LayerDigest); got != string(im.Layer) {
		t.Errorf("pulled layer blob differs from the pushed one (%d bytes, want %d)", len(got), len(im.Layer))
	}
	pulled := filepath.Join(dir, "pulled.tar")
	testenv.MustRun(t, env, crane, "pull", ref, pulled)
	if out := testenv.MustRun(t, env, "tar", "-tf", pulled); !strings.Contains(out, "manifest.json") {
		t.Errorf("crane pull wrote no image tarball: %s", out)
	}
}
