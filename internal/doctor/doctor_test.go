package doctor

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/auth"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

const (
	testIssuer  = "doctor test issuer"
	testService = "doctor.test"
	testUser    = "alice"
	testPass    = "correct horse battery"
)

// testPKI is a CA and a certificate it issued.
type testPKI struct {
	ca     *x509.Certificate
	leaf   *x509.Certificate
	key    crypto.Signer
	caFile string
}

func newTestPKI(t *testing.T, caName string, hosts []string, ips []net.IP) *testPKI {
	t.Helper()
	ca, caKey, err := tlsutil.GenerateCA(caName, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := tlsutil.GenerateServer(ca, caKey, hosts, ips, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca, leaf: leaf, key: key, caFile: filepath.Join(t.TempDir(), "ca.crt")}
	if err := tlsutil.WriteCertPEM(p.caFile, ca); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPKI) tlsConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{p.leaf.Raw, p.ca.Raw}, PrivateKey: p.key, Leaf: p.leaf,
	}}, MinVersion: tls.VersionTLS12}
}

func startTLS(t *testing.T, p *testPKI, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = p.tlsConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// fixture is a fake registry and token server over TLS, both on a
// certificate for localhost and 127.0.0.1, and what they saw.
type fixture struct {
	pki      *testPKI
	signer   *token.Signer
	registry *httptest.Server
	realm    *httptest.Server

	// Knobs, set before Run.
	realmURL   string // what the challenge names; the realm server's by default
	challenge  func(w http.ResponseWriter, r *http.Request) bool
	issue      func(user, service string, access []token.ResourceActions) token.Claims
	regIssuer  string
	realmDate  func() time.Time // the auth server's clock for its Date header
	denyCatalg bool

	mu     sync.Mutex
	tokens []string // every token issued, to check none is printed
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	p := newTestPKI(t, "Doctor unit CA", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	signer, err := token.NewSigner(p.key, []*x509.Certificate{p.leaf, p.ca}, token.DefaultSignerOptions())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{pki: p, signer: signer, regIssuer: testIssuer}
	f.issue = func(user, service string, access []token.ResourceActions) token.Claims {
		return token.NewClaims(testIssuer, user, service, time.Now(), 5*time.Minute, access)
	}
	f.realm = startTLS(t, p, http.HandlerFunc(f.serveToken))
	f.registry = startTLS(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serveRegistry(t, w, r) }))
	f.realmURL = f.realm.URL + "/auth"
	return f
}

func (f *fixture) serveToken(w http.ResponseWriter, r *http.Request) {
	if f.realmDate != nil {
		w.Header().Set("Date", f.realmDate().UTC().Format(http.TimeFormat))
	}
	user, pass, hasAuth := r.BasicAuth()
	if !hasAuth || user != testUser || pass != testPass {
		w.Header().Set("WWW-Authenticate", `Basic realm="doctor test"`)
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
		acts := s.Actions
		if f.denyCatalg && s.Type == "registry" {
			acts = []string{}
		}
		access = append(access, token.ResourceActions{Type: s.Type, Name: s.Name, Actions: acts})
	}
	tok, err := f.signer.Sign(f.issue(user, r.URL.Query().Get("service"), access))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f.mu.Lock()
	f.tokens = append(f.tokens, tok)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300})
}

func (f *fixture) serveRegistry(t *testing.T, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	if f.challenge != nil && f.challenge(w, r) {
		return
	}
	v, err := token.NewVerifier(token.VerifierOptions{Issuer: f.regIssuer, Service: testService, RootCerts: []*x509.Certificate{f.pki.ca}})
	if err != nil {
		t.Error(err)
		return
	}
	var need []auth.Access
	if r.URL.Path == "/v2/_catalog" {
		need = []auth.Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	}
	ctl, err := auth.NewToken(auth.TokenOptions{Realm: f.realmURL, Service: testService, Verifier: v})
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := ctl.CheckAccess(r.Context(), r, need); err != nil {
		c, _ := auth.IsChallenge(err)
		w.Header().Set("WWW-Authenticate", c.Header)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":%q,"detail":null}]}`, c.Message)
		return
	}
	switch r.URL.Path {
	case "/v2/":
		_, _ = w.Write([]byte("{}"))
	case "/v2/_catalog":
		_, _ = w.Write([]byte(`{"repositories":["a","b"]}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}`))
	}
}

func (f *fixture) opts() Options {
	return Options{
		Registry: f.registry.URL,
		User:     testUser,
		Password: secret.Secret(testPass),
		CAFile:   f.pki.caFile,
		Timeout:  5 * time.Second,
	}
}

func runChecks(t *testing.T, opts Options) ([]Result, bool) {
	t.Helper()
	var got []Result
	allOK, err := Run(context.Background(), opts, func(r Result) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(Checks) {
		t.Fatalf("%d results, want one per check (%d): %+v", len(got), len(Checks), got)
	}
	for i, r := range got {
		if r.Check != Checks[i] {
			t.Errorf("result %d is check %q, want %q", i, r.Check, Checks[i])
		}
		t.Log(Line(r))
	}
	return got, allOK
}

func firstFail(results []Result) *Result {
	for i := range results {
		if results[i].Status == Fail {
			return &results[i]
		}
	}
	return nil
}

// expectFail checks that the first failure is check and that its line
// contains every word.
func expectFail(t *testing.T, results []Result, allOK bool, check string, words ...string) {
	t.Helper()
	if allOK {
		t.Fatal("Run reported success")
	}
	f := firstFail(results)
	if f == nil {
		t.Fatal("no check failed")
	}
	if f.Check != check {
		t.Fatalf("first failure is %q (%s), want %q", f.Check, Line(*f), check)
	}
	line := Line(*f)
	for _, w := range words {
		if !strings.Contains(line, w) {
			t.Errorf("failure line lacks %q: %s", w, line)
		}
	}
	for _, r := range results[indexOf(check)+1:] {
		if r.Status != Skip {
			t.Errorf("check %s after the failure has status %s, want skip", r.Check, r.Status)
		}
	}
}

func indexOf(check string) int {
	for i, c := range Checks {
		if c == check {
			return i
		}
	}
	return -1
}

func noSecrets(t *testing.T, f *fixture, results []Result) {
	t.Helper()
	b, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if strings.Contains(out, testPass) {
		t.Error("the password appears in the output")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tok := range f.tokens {
		for _, part := range strings.Split(tok, ".") {
			if strings.Contains(out, part) {
				t.Error("a part of the token appears in the output")
			}
		}
	}
}

func TestHealthy(t *testing.T) {
	f := newFixture(t)
	results, allOK := runChecks(t, f.opts())
	if !allOK {
		t.Fatalf("Run failed: %+v", firstFail(results))
	}
	for _, r := range results {
		if r.Status != OK {
			t.Errorf("%s: %s, want ok", r.Check, Line(r))
		}
	}
	claims := results[indexOf(CheckClaims)].Detail
	for _, w := range []string{`aud "doctor.test"`, "x5c chain of 2", "libtrust kid of that certificate's key", "registry 2.x and 3.x", "registry:catalog:*"} {
		if !strings.Contains(claims, w) {
			t.Errorf("claims detail lacks %q: %s", w, claims)
		}
	}
	if d := results[indexOf(CheckPull)].Detail; !strings.Contains(d, "2 repositories") {
		t.Errorf("pull detail = %q", d)
	}
	noSecrets(t, f, results)
}

func TestBrokenSetups(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture, o *Options)
		check string
		words []string
	}{
		{
			name:  "no CA file",
			setup: func(_ *testing.T, _ *fixture, o *Options) { o.CAFile = "" },
			check: CheckTLS,
			words: []string{"unknown authority", `"CN=Doctor unit CA"`, "no --ca-file", "fix: trust the CA"},
		},
		{
			name: "another CA",
			setup: func(t *testing.T, _ *fixture, o *Options) {
				o.CAFile = newTestPKI(t, "Some other CA", []string{"localhost"}, nil).caFile
			},
			check: CheckTLS,
			words: []string{"unknown authority", `"CN=Doctor unit CA"`, `holds "CN=Some other CA", which did not issue it`},
		},
		{
			name: "name mismatch",
			setup: func(t *testing.T, _ *fixture, o *Options) {
				p := newTestPKI(t, "Name CA", []string{"registry.example", "alias.example"}, nil)
				srv := startTLS(t, p, http.NotFoundHandler())
				o.Registry, o.CAFile = srv.URL, p.caFile
			},
			check: CheckTLS,
			words: []string{"name mismatch", "for registry.example, alias.example, not 127.0.0.1", "gatehouse certs init --host"},
		},
		{
			name: "certificate expired by the local clock",
			setup: func(_ *testing.T, _ *fixture, o *Options) {
				o.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
			},
			check: CheckTLS,
			words: []string{"has expired", "valid from", "clock"},
		},
		{
			name:  "wrong password",
			setup: func(_ *testing.T, _ *fixture, o *Options) { o.Password = "wrong" },
			check: CheckToken,
			words: []string{"refused the credentials of alice", "401", "Auth failed.", "password"},
		},
		{
			name:  "anonymous refused",
			setup: func(_ *testing.T, _ *fixture, o *Options) { o.User, o.Password = "", "" },
			check: CheckToken,
			words: []string{"refuses anonymous", "-u USER"},
		},
		{
			name: "realm unreachable",
			setup: func(_ *testing.T, f *fixture, _ *Options) {
				f.realmURL = "https://localhost:" + closedPort(t) + "/auth"
			},
			check: CheckRealmTLS,
			words: []string{"connection refused to realm https://localhost:", "is the auth server running", "realm URL"},
		},
		{
			name: "realm does not resolve",
			setup: func(_ *testing.T, f *fixture, _ *Options) {
				f.realmURL = "https://auth.invalid/auth"
			},
			check: CheckRealmDNS,
			words: []string{"auth.invalid does not resolve", "auth.token.realm"},
		},
		{
			name: "token for another service",
			setup: func(_ *testing.T, f *fixture, _ *Options) {
				f.issue = func(user, _ string, access []token.ResourceActions) token.Claims {
					return token.NewClaims(testIssuer, user, "other-service", time.Now(), 5*time.Minute, access)
				}
			},
			check: CheckClaims,
			words: []string{`token audience "other-service" but the registry expects service "doctor.test"`, "auth.token.service"},
		},
		{
			name: "auth server clock five minutes ahead",
			setup: func(_ *testing.T, f *fixture, _ *Options) {
				f.issue = func(user, service string, access []token.ResourceActions) token.Claims {
					return token.NewClaims(testIssuer, user, service, time.Now().Add(5*time.Minute), 5*time.Minute, access)
				}
				f.realmDate = func() time.Time { return time.Now().Add(5 * time.Minute) }
			},
			check: CheckClaims,
			words: []string{"not valid yet", "auth server +5m", "ahead", "NTP"},
		},
		{
			name: "auth server clock 40 s ahead",
			setup: func(_ *testing.T, f *fixture, _ *Options) {
				f.issue = func(user, service string, access []token.ResourceActions) token.Claims {
					return token.NewClaims(testIssuer, user, service, time.Now().Add(40*time.Second), 5*time.Minute, access)
				}
			},
			check: CheckClaims,
			words: []string{"clock skew", "ahead of the registry's", "NTP"},
		},
		{
			name: "expired on arrival",
			setup: func(_ *testing.T, f *fixture, _ *Options) {
				f.issue = func(user, service string, access []token.ResourceActions) token.Claims {
					return token.NewClaims(testIssuer, user, service, time.Now().Add(-time.Hour), 5*time.Minute, access)
				}
			},
			check: CheckClaims,
			words: []string{"has expired for the registry"},
		},
		{
			name:  "issuer mismatch",
			setup: func(_ *testing.T, f *fixture, _ *Options) { f.regIssuer = "someone else" },
			check: CheckTrust,
			words: []string{"does not trust the token", `error="invalid_token"`, `iss is "doctor test issuer"`, "auth.token.issuer", "rootcertbundle"},
		},
		{
			name: "no catalog access, no repo",
			setup: func(_ *testing.T, f *fixture, o *Options) {
				f.denyCatalg = true
				o.Repo = "team/app"
			},
			check: CheckPull,
			words: []string{"HTTP 404", "NAME_UNKNOWN"},
		},
		{
			name: "no challenge header",
			setup: func(_ *testing.T, f *fixture, _ *Options) {
				f.challenge = func(w http.ResponseWriter, _ *http.Request) bool {
					w.WriteHeader(http.StatusUnauthorized)
					return true
				}
			},
			check: CheckChallenge,
			words: []string{"without a WWW-Authenticate"},
		},
		{
			name: "not a registry",
			setup: func(_ *testing.T, f *fixture, _ *Options) {
				f.challenge = func(w http.ResponseWriter, _ *http.Request) bool {
					w.Header().Del("Docker-Distribution-Api-Version")
					http.NotFound(w, nil)
					return true
				}
			},
			check: CheckChallenge,
			words: []string{"404", "no registry API"},
		},
		{
			name:  "registry port closed",
			setup: func(t *testing.T, _ *fixture, o *Options) { o.Registry = "https://127.0.0.1:" + closedPort(t) },
			check: CheckTLS,
			words: []string{"connection refused to registry", "http.addr"},
		},
		{
			name: "registry speaks plain HTTP",
			setup: func(t *testing.T, _ *fixture, o *Options) {
				plain := httptest.NewServer(http.NotFoundHandler())
				t.Cleanup(plain.Close)
				o.Registry = strings.Replace(plain.URL, "http://", "https://", 1)
			},
			check: CheckTLS,
			words: []string{"does not speak TLS", "http://"},
		},
		{
			name:  "not a registry host",
			setup: func(_ *testing.T, _ *fixture, o *Options) { o.Registry = "registry.invalid:5000" },
			check: CheckDNS,
			words: []string{"registry host registry.invalid does not resolve"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			o := f.opts()
			tc.setup(t, f, &o)
			results, allOK := runChecks(t, o)
			expectFail(t, results, allOK, tc.check, tc.words...)
			noSecrets(t, f, results)
		})
	}
}

// closedPort returns a port on 127.0.0.1 with nothing listening.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestNoAuthRegistry(t *testing.T) {
	f := newFixture(t)
	f.challenge = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v2/_catalog" {
			_, _ = w.Write([]byte(`{"repositories":[]}`))
			return true
		}
		_, _ = w.Write([]byte("{}"))
		return true
	}
	o := f.opts()
	o.User, o.Password = "", ""
	results, allOK := runChecks(t, o)
	if !allOK {
		t.Fatalf("failed: %+v", firstFail(results))
	}
	want := map[string]Status{CheckChallenge: OK, CheckRealmDNS: Skip, CheckRealmTLS: Skip, CheckToken: Skip, CheckClaims: Skip, CheckTrust: Skip, CheckPull: OK}
	for _, r := range results {
		if w, ok := want[r.Check]; ok && r.Status != w {
			t.Errorf("%s: %s, want %s", r.Check, Line(r), w)
		}
	}
	if d := results[indexOf(CheckChallenge)].Detail; !strings.Contains(d, "no credentials") {
		t.Errorf("challenge detail = %q", d)
	}
}

func TestBasicRegistry(t *testing.T) {
	f := newFixture(t)
	f.challenge = func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == testUser && p == testPass {
			_, _ = w.Write([]byte(`{"repositories":["x"]}`))
			return true
		}
		w.Header().Set("WWW-Authenticate", auth.BasicChallenge("Registry Realm"))
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	results, allOK := runChecks(t, f.opts())
	if !allOK {
		t.Fatalf("failed: %+v", firstFail(results))
	}
	if r := results[indexOf(CheckTrust)]; r.Status != OK || !strings.Contains(r.Detail, "alice's password: 200") {
		t.Errorf("trust: %s", Line(r))
	}
	o := f.opts()
	o.Password = "nope"
	results, allOK = runChecks(t, o)
	expectFail(t, results, allOK, CheckTrust, "refused alice's password", "htpasswd")
}

func TestKidForm(t *testing.T) {
	for kid, want := range map[string]string{
		"DECO:VDJ3:MGMP:BS63:26JA:GGUS:GWD2:HQTW:XP7Q:2NDH:45UB:EJTF": "libtrust",
		"K5zkpY-eoxHnotTwFYFnxU-uDTBzqHFDTJE-MHaboXI":                 "thumbprint",
		"":            "",
		"my-key-2024": "other",
		"DECO:VDJ3":   "other",
	} {
		if got := KidForm(kid); got != want {
			t.Errorf("KidForm(%q) = %q, want %q", kid, got, want)
		}
	}
}

// TestKeyAdvice covers the tokens without x5c: what each registry
// generation needs.
func TestKeyAdvice(t *testing.T) {
	p := newTestPKI(t, "Advice CA", []string{"localhost"}, nil)
	for _, tc := range []struct {
		mode  token.KeyIDMode
		desc  []string
		trust []string
	}{
		{token.KeyIDLibtrust, []string{"no x5c, libtrust kid", "registry 3.x refuses it"}, []string{"disable_legacy_key_id: true", "its CA is not enough"}},
		{token.KeyIDThumbprint, []string{"RFC 7638 thumbprint kid", "registry 2.x refuses it"}, []string{"auth.token.jwks", "token.x5c: true"}},
	} {
		s, err := token.NewSigner(p.key, nil, token.SignerOptions{KeyID: tc.mode})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sign(token.NewClaims("i", "u", "s", time.Now(), time.Minute, nil))
		if err != nil {
			t.Fatal(err)
		}
		info, err := decodeToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.desc {
			if d := info.describeKey(); !strings.Contains(d, w) {
				t.Errorf("%s: describeKey() = %q, lacks %q", tc.mode, d, w)
			}
		}
		for _, w := range tc.trust {
			if a := info.keyAdvice(); !strings.Contains(a, w) {
				t.Errorf("%s: keyAdvice() = %q, lacks %q", tc.mode, a, w)
			}
		}
	}
}

func TestDecodeToken(t *testing.T) {
	for _, tc := range []struct{ tok, err string }{
		{"a.b", "got 2 part(s)"},
		{"!!.e30.x", "part 1 is not base64url"},
		{"e30.bm90IGpzb24.x", "part 2 is not the expected JSON"},
		{"eyJ4NWMiOlsiISEiXX0.e30.x", "x5c certificate 1 is not base64"},
	} {
		if _, err := decodeToken(tc.tok); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("decodeToken(%q) = %v, want %q", tc.tok, err, tc.err)
		}
	}
	info, err := decodeToken("e30.eyJhdWQiOlsiYSIsImIiXSwiZXhwIjoxLjVlOX0.x")
	if err != nil {
		t.Fatal(err)
	}
	if !info.claims.hasAudience("b") {
		t.Errorf("array audience not read: %v", info.claims.Audience)
	}
	if exp, ok := epoch(info.claims.Expiry); !ok || exp.Unix() != 1_500_000_000 {
		t.Errorf("exp = %v %v", exp, ok)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		o   Options
		err string
	}{
		{Options{}, "no registry"},
		{Options{Registry: "ftp://x"}, "https or http"},
		{Options{Registry: "https://x/some/path"}, "without a path"},
		{Options{Registry: "x", Password: "p"}, "needs a user"},
		{Options{Registry: "x", Repo: "Bad Name"}, "scope"},
		{Options{Registry: "x", CAFile: "/nonexistent/ca.crt"}, "--ca-file"},
	} {
		_, err := Run(context.Background(), tc.o, func(Result) { t.Error("a check ran") })
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Run(%+v) error = %v, want %q", tc.o, err, tc.err)
		}
	}
}

func TestSignedDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                "+0s",
		-1500 * time.Millisecond:         "+0s",
		3 * time.Second:                  "+3s",
		-40 * time.Second:                "-40s",
		4*time.Minute + 59*time.Second:   "+5m0s",
		-(5*time.Minute + 1*time.Second): "-5m0s",
		time.Hour + 2*time.Minute + 12*time.Second: "+1h2m10s",
	} {
		if got := signedDur(d); got != want {
			t.Errorf("signedDur(%s) = %s, want %s", d, got, want)
		}
	}
}
