package authserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/token"
	"golang.org/x/crypto/bcrypt"
)

// fakeAuthn knows users by plain or bcrypt password.
type fakeAuthn struct {
	name   string
	users  map[string]string // account -> password ("" accepts any)
	hashes map[string][]byte // account -> bcrypt hash
	labels map[string]authn.Labels
	err    error         // returned for every call when set
	block  chan struct{} // when set, Authenticate waits for it
	calls  atomic.Int64
	closed atomic.Bool
	ready  error
}

func (f *fakeAuthn) Authenticate(ctx context.Context, account string, password secret.Secret) (authn.Labels, error) {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	if h, ok := f.hashes[account]; ok {
		if bcrypt.CompareHashAndPassword(h, []byte(password.Reveal())) != nil {
			return nil, authn.ErrWrongPass
		}
		return f.labels[account].Clone(), nil
	}
	pw, ok := f.users[account]
	if !ok {
		return nil, authn.ErrNoMatch
	}
	if pw != "" && pw != password.Reveal() {
		return nil, authn.ErrWrongPass
	}
	return f.labels[account].Clone(), nil
}

func (f *fakeAuthn) Name() string { return f.name }
func (f *fakeAuthn) Close() error { f.closed.Store(true); return nil }

type readyAuthn struct{ *fakeAuthn }

func (r readyAuthn) Ready(context.Context) error { return r.ready }

type lookupAuthn struct{ *fakeAuthn }

func (l lookupAuthn) Lookup(_ context.Context, account string) (authn.Labels, error) {
	if _, ok := l.users[account]; !ok {
		return nil, authn.ErrNoMatch
	}
	return l.labels[account].Clone(), nil
}

// fakeAuthz grants what rules say: "account:name" -> actions. An account
// not in any rule is NoMatch. Label "deny" with value "all" denies.
type fakeAuthz struct {
	name  string
	rules map[string][]string
	err   error
	seen  []authz.Request
	mu    sync.Mutex
}

func (f *fakeAuthz) Authorize(_ context.Context, req *authz.Request) ([]string, error) {
	f.mu.Lock()
	f.seen = append(f.seen, *req)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if slices.Contains(req.Labels["deny"], "all") {
		return []string{}, nil
	}
	acts, ok := f.rules[req.Account+":"+req.Name]
	if !ok {
		return nil, authz.ErrNoMatch
	}
	if len(acts) == 1 && acts[0] == "*" {
		return slices.Clone(req.Actions), nil
	}
	var out []string
	for _, a := range req.Actions {
		if slices.Contains(acts, a) {
			out = append(out, a)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func (f *fakeAuthz) Name() string { return f.name }
func (f *fakeAuthz) Close() error { return nil }

// fixture is a Server with fakes, a real signer and a verifier.
type fixture struct {
	t        *testing.T
	srv      *Server
	authn    *fakeAuthn
	authz    *fakeAuthz
	verifier *token.Verifier
	logs     *syncBuffer
	now      time.Time
	mu       sync.Mutex
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const issuer = "Test auth server"

var testKey = func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

func testSigner(t testing.TB, key *ecdsa.PrivateKey) *token.Signer {
	t.Helper()
	s, err := token.NewSigner(key, nil, token.SignerOptions{KeyID: token.KeyIDThumbprint})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func defaultAuthn() *fakeAuthn {
	return &fakeAuthn{
		name:  "static",
		users: map[string]string{"alice": "alicepw", "bob": "bobpw", "": "", "mallory": "mpw"},
		labels: map[string]authn.Labels{
			"alice":   {"groups": {"dev"}},
			"mallory": {"deny": {"all"}},
		},
	}
}

func defaultAuthz() *fakeAuthz {
	return &fakeAuthz{name: "acl", rules: map[string][]string{
		"alice:alice/app":    {"*"},
		"alice:library/base": {"pull"},
		":library/base":      {"pull"},
		"bob:library/base":   {"pull"},
		"mallory:x":          {"*"},
	}}
}

func newChain(t testing.TB, an authn.Authenticator, az authz.Authorizer) *Chain {
	t.Helper()
	key, err := RefreshKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Chain{
		Issuer:         issuer,
		Expiration:     15 * time.Minute,
		Authenticators: []authn.Authenticator{an},
		Authorizers:    []authz.Authorizer{az},
		Signer:         testSigner(t, testKey),
		RefreshKey:     key,
	}
}

func newFixture(t *testing.T, mod func(*Chain)) *fixture {
	t.Helper()
	f := &fixture{t: t, authn: defaultAuthn(), authz: defaultAuthz(), logs: &syncBuffer{}, now: time.Now()}
	c := newChain(t, f.authn, f.authz)
	if mod != nil {
		mod(c)
	}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(c, Options{Logger: log, CloseGrace: 5 * time.Second, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f.srv = srv
	jwks, err := testSigner(t, testKey).PublicJWKS()
	if err != nil {
		t.Fatal(err)
	}
	f.verifier, err = token.NewVerifier(token.VerifierOptions{Issuer: issuer, Service: "registry.test", Services: []string{"other"}, JWKS: jwks, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// get issues GET target with optional Basic credentials ("" user and
// password means none).
func (f *fixture) get(target, user, pass string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) post(target string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

type decoded struct {
	resp   tokenResponse
	claims *token.Claims
}

// decode parses a 200 token response and verifies its JWT.
func (f *fixture) decode(rec *httptest.ResponseRecorder) decoded {
	f.t.Helper()
	if rec.Code != http.StatusOK {
		f.t.Fatalf("status %d, body %q", rec.Code, rec.Body.String())
	}
	var d decoded
	if err := json.Unmarshal(rec.Body.Bytes(), &d.resp); err != nil {
		f.t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	if d.resp.Token != d.resp.AccessToken {
		f.t.Fatal("token and access_token differ")
	}
	c, err := f.verifier.Verify(d.resp.Token)
	if err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	d.claims = c
	return d
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func newRequest(method, target string, body io.Reader) *http.Request {
	return httptest.NewRequest(method, target, body)
}

func base64Decode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
func base64Encode(b []byte) string          { return base64.RawURLEncoding.EncodeToString(b) }
