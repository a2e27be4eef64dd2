package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// dirAuthn is a directory-like authenticator: it matches names ignoring
// case, as LDAP does, and reports the entry's own spelling.
type dirAuthn struct {
	entries   map[string]string // lower-cased name -> the entry's spelling
	password  string
	canonical func(entry string) string // what AuthenticateAccount returns; nil: the entry's spelling
	calls     atomic.Int64
}

func (d *dirAuthn) find(account string) (string, bool) {
	e, ok := d.entries[strings.ToLower(account)]
	return e, ok
}

func (d *dirAuthn) Authenticate(ctx context.Context, account string, password secret.Secret) (authn.Labels, error) {
	_, labels, err := d.AuthenticateAccount(ctx, account, password)
	return labels, err
}

func (d *dirAuthn) AuthenticateAccount(_ context.Context, account string, password secret.Secret) (string, authn.Labels, error) {
	d.calls.Add(1)
	e, ok := d.find(account)
	if !ok || account == "" {
		return "", nil, authn.ErrNoMatch
	}
	if password.Reveal() != d.password {
		return "", nil, authn.ErrWrongPass
	}
	if d.canonical != nil {
		e = d.canonical(e)
	}
	return e, authn.Labels{"groups": {"ops"}}, nil
}

func (d *dirAuthn) Name() string { return "ldap" }
func (d *dirAuthn) Close() error { return nil }

func newDirFixture(t *testing.T, mod func(*Chain)) (*fixture, *dirAuthn) {
	t.Helper()
	d := &dirAuthn{entries: map[string]string{"usera": "usera"}, password: "pw"}
	f := newFixture(t, func(c *Chain) {
		c.Authenticators = []authn.Authenticator{d}
		if mod != nil {
			mod(c)
		}
	})
	// A rule for one spelling of the account must not serve another.
	f.authz.rules = map[string][]string{
		"usera:team/app": {"pull"},
		"UserA:team/app": {"*"},
		"USERA:team/app": {"*"},
	}
	return f, d
}

// Every spelling the directory accepts is the directory's account: the
// token's sub, the ACL, refresh tokens and cached logins all use it.
func TestCanonicalAccountName(t *testing.T) {
	for _, typed := range []string{"usera", "UserA", "USERA"} {
		t.Run(typed, func(t *testing.T) {
			f, _ := newDirFixture(t, nil)
			for i := range 2 { // the second request is answered from the credential cache
				rec := f.get("/auth?service=registry.test&scope=repository:team/app:pull,push&client_id=docker&offline_token=true", typed, "pw")
				d := f.decode(rec)
				if d.claims.Subject != "usera" {
					t.Errorf("request %d: sub %q, want usera", i+1, d.claims.Subject)
				}
				if diff := cmp.Diff([]token.ResourceActions{ra("repository", "team/app", "pull")}, d.claims.Access); diff != "" {
					t.Errorf("request %d: access (-want +got):\n%s", i+1, diff)
				}
				rt := d.resp.RefreshToken
				rec = f.post("/auth", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"docker"},
					"service": {"registry.test"}, "scope": {"repository:team/app:pull,push"}})
				d = f.decode(rec)
				if d.claims.Subject != "usera" {
					t.Errorf("refresh %d: sub %q, want usera", i+1, d.claims.Subject)
				}
				if diff := cmp.Diff([]token.ResourceActions{ra("repository", "team/app", "pull")}, d.claims.Access); diff != "" {
					t.Errorf("refresh %d: access (-want +got):\n%s", i+1, diff)
				}
			}
			f.authz.mu.Lock()
			defer f.authz.mu.Unlock()
			for _, req := range f.authz.seen {
				if req.Account != "usera" {
					t.Errorf("the ACL was asked about %q, want usera", req.Account)
				}
			}
		})
	}
}

// Names with surrounding white space or control characters are refused
// with 400 before any authenticator is asked.
func TestAccountNameRefused(t *testing.T) {
	for _, name := range []string{" usera", "usera ", "usera\t", "\u00a0usera", "user\x00a", "user\na", "user\x7fa", "user\xffa"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			f, d := newDirFixture(t, nil)
			rec := f.get("/auth?service=registry.test", name, "pw")
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "account name") {
				t.Errorf("GET: status %d %q, want 400 naming the account name", rec.Code, rec.Body)
			}
			rec = f.post("/auth", url.Values{"grant_type": {"password"}, "username": {name}, "password": {"pw"}, "client_id": {"docker"}, "service": {"registry.test"}})
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != http.StatusBadRequest || e.Error != "invalid_request" || !strings.Contains(e.Description, "account name") {
				t.Errorf("password grant: status %d %q, want 400 invalid_request", rec.Code, rec.Body)
			}
			if n := d.calls.Load(); n != 0 {
				t.Errorf("the authenticator was asked %d times", n)
			}
		})
	}
}

// Spellings of one account share one failed-login budget, even before
// the directory has said they are one account.
func TestAccountVariantsShareFailureBudget(t *testing.T) {
	f, d := newDirFixture(t, func(c *Chain) { c.AccountFailures = 3 })
	for _, name := range []string{"usera", "UserA", "USERA"} {
		if rec := f.get("/auth?service=registry.test", name, "wrong"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401", name, rec.Code)
		}
	}
	for _, name := range []string{"uSeRa", "usera", "user\u00ada"} {
		rec := f.get("/auth?service=registry.test", name, "pw")
		if rec.Code != http.StatusTooManyRequests {
			t.Errorf("%q after three failures of other spellings: status %d, want 429", name, rec.Code)
		}
	}
	if n := d.calls.Load(); n != 3 {
		t.Errorf("the authenticator was asked %d times, want 3", n)
	}
}

// A name an authenticator returns that cannot be an account is an error,
// never a token: above all not an empty name, which is the anonymous one.
func TestCanonicalNameChecked(t *testing.T) {
	for name, canonical := range map[string]string{
		"empty":         "",
		"control":       "user\x00a",
		"trailing":      "usera ",
		"invalid UTF-8": "user\xff",
	} {
		t.Run(name, func(t *testing.T) {
			f, d := newDirFixture(t, nil)
			d.canonical = func(string) string { return canonical }
			rec := f.get("/auth?service=registry.test&scope=repository:team/app:pull", "usera", "pw")
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("status %d %q, want 500", rec.Code, rec.Body)
			}
		})
	}
}

func TestAccountKey(t *testing.T) {
	for in, want := range map[string]string{
		"usera":         "usera",
		"UserA":         "usera",
		"user\u00ada":   "usera",
		"user\u200ba":   "usera",
		"user   a":      "user a",
		"User \t A":     "user a",
		"JÜRGEN":        "jürgen",
		"":              "",
		"alice@EXAMPLE": "alice@example",
	} {
		if got := accountKey(in); got != want {
			t.Errorf("accountKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// staticEnv builds chains from auth_config.yml texts that share one token
// key, as reloads of one file do.
type staticEnv struct {
	t       *testing.T
	dir     string
	crt, ky string
	n       int
}

func newStaticEnv(t *testing.T) *staticEnv {
	t.Helper()
	e := &staticEnv{t: t, dir: t.TempDir()}
	ca, caKey, err := tlsutil.GenerateCA("Test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.crt, e.ky = filepath.Join(e.dir, "s.crt"), filepath.Join(e.dir, "s.key")
	if err := tlsutil.WriteCertPEM(e.crt, cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(e.ky, key); err != nil {
		t.Fatal(err)
	}
	return e
}

// chain builds a chain whose users section holds users (name -> hash).
func (e *staticEnv) chain(users map[string]string) *Chain {
	e.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  addr: 127.0.0.1:0\n  certificate: %s\n  key: %s\ntoken:\n  issuer: %q\n  expiration: 900\n  certificate: %s\n  key: %s\nusers:\n  \"\": {}\n",
		e.crt, e.ky, issuer, e.crt, e.ky)
	for name, h := range users {
		fmt.Fprintf(&b, "  %s:\n    password: %q\n", name, h)
	}
	b.WriteString("acl:\n  - match: {account: \"/.+/\"}\n    actions: [\"*\"]\n")
	e.n++
	file := filepath.Join(e.dir, fmt.Sprintf("auth_config-%d.yml", e.n))
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	cfg, err := authconfig.Load(file)
	if err != nil {
		e.t.Fatalf("config:\n%v", err)
	}
	c, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// A static user's refresh tokens die with the password hash they were
// issued under, and with the user's removal, even if the user comes back
// with the very same hash.
func TestStaticRefreshTokenRevoked(t *testing.T) {
	aliceHash := func(t *testing.T) string { return bcryptHash(t, "alicepw") }
	tests := []struct {
		name    string
		reloads func(t *testing.T, old string) []map[string]string
		want    string // "" means the refresh token still works
	}{
		{"unchanged", func(_ *testing.T, old string) []map[string]string {
			return []map[string]string{{"alice": old, "bob": old}}
		}, ""},
		{"password changed", func(t *testing.T, _ string) []map[string]string {
			return []map[string]string{{"alice": bcryptHash(t, "newpw")}}
		}, "password changed"},
		{"same password hashed again", func(t *testing.T, _ string) []map[string]string {
			return []map[string]string{{"alice": aliceHash(t)}}
		}, "password changed"},
		{"removed, then added with the same hash", func(_ *testing.T, old string) []map[string]string {
			return []map[string]string{{}, {"alice": old}}
		}, "removed and added again"},
		{"removed", func(_ *testing.T, _ string) []map[string]string {
			return []map[string]string{{}}
		}, "no longer exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newStaticEnv(t)
			old := aliceHash(t)
			now := time.Now()
			clock := func() time.Time { return now }
			srv, err := New(e.chain(map[string]string{"alice": old}), Options{Now: clock, CloseGrace: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			rec := newRecorder()
			srv.ServeHTTP(rec, postForm("/auth", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alicepw"},
				"client_id": {"docker"}, "access_type": {"offline"}, "service": {"registry.test"}}))
			var tr tokenResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || rec.Code != http.StatusOK || tr.RefreshToken == "" {
				t.Fatalf("login: %d %s", rec.Code, rec.Body)
			}
			for _, users := range tc.reloads(t, old) {
				now = now.Add(2 * time.Second)
				if err := srv.Swap(e.chain(users)); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(2 * time.Second)
			rec = newRecorder()
			srv.ServeHTTP(rec, postForm("/auth", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken},
				"client_id": {"docker"}, "service": {"registry.test"}}))
			if tc.want == "" {
				if rec.Code != http.StatusOK {
					t.Fatalf("refresh: %d %s, want 200", rec.Code, rec.Body)
				}
				return
			}
			var oe struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &oe)
			if rec.Code != http.StatusBadRequest || oe.Error != "invalid_grant" || !strings.Contains(oe.Description, tc.want) {
				t.Errorf("refresh: %d %s, want 400 invalid_grant mentioning %q", rec.Code, truncate(rec.Body.String(), 200), tc.want)
			}
			if strings.Contains(rec.Body.String(), "$2") {
				t.Error("the answer holds a bcrypt hash")
			}
		})
	}
}

// A user added by a reload gets working refresh tokens at once, and the
// token reveals nothing of the password hash.
func TestStaticRefreshAfterAdd(t *testing.T) {
	e := newStaticEnv(t)
	now := time.Now()
	srv, err := New(e.chain(map[string]string{}), Options{Now: func() time.Time { return now }, CloseGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	h := bcryptHash(t, "bobpw")
	if err := srv.Swap(e.chain(map[string]string{"bob": h})); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	srv.ServeHTTP(rec, postForm("/auth", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"bobpw"},
		"client_id": {"docker"}, "access_type": {"offline"}, "service": {"registry.test"}}))
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.RefreshToken == "" {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	payload, err := base64Decode(strings.Split(strings.TrimPrefix(tr.RefreshToken, refreshPrefix), ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(payload), h) || strings.Contains(string(payload), h[7:29]) {
		t.Errorf("the refresh token's payload holds the hash or its salt: %s", payload)
	}
	rec = newRecorder()
	srv.ServeHTTP(rec, postForm("/auth", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken},
		"client_id": {"docker"}, "service": {"registry.test"}}))
	if rec.Code != http.StatusOK {
		t.Errorf("refresh right after the user was added: %d %s", rec.Code, rec.Body)
	}
}

func postForm(target string, form url.Values) *http.Request {
	req := newRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
