package authserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/token"
	"github.com/google/go-cmp/cmp"
)

func ra(typ, name string, actions ...string) token.ResourceActions {
	if actions == nil {
		actions = []string{}
	}
	return token.ResourceActions{Type: typ, Name: name, Actions: actions}
}

func TestGetToken(t *testing.T) {
	const svc = "service=registry.test"
	tests := []struct {
		name       string
		target     string
		user, pass string
		wantSub    string
		wantAccess []token.ResourceActions
	}{
		{"anonymous pull", "/auth?" + svc + "&scope=repository:library/base:pull,push", "", "", "", []token.ResourceActions{ra("repository", "library/base", "pull")}},
		{"user granted all requested", "/auth?" + svc + "&scope=repository:alice/app:pull,push", "alice", "alicepw", "alice", []token.ResourceActions{ra("repository", "alice/app", "pull", "push")}},
		{"token path", "/auth/token?" + svc + "&scope=repository:alice/app:pull", "alice", "alicepw", "alice", []token.ResourceActions{ra("repository", "alice/app", "pull")}},
		{"no scope means login", "/auth?" + svc + "&account=alice&client_id=docker&offline_token=false", "alice", "alicepw", "alice", []token.ResourceActions{}},
		{"denied scope is 200 with no actions", "/auth?" + svc + "&scope=repository:bob/secret:pull", "alice", "alicepw", "alice", []token.ResourceActions{ra("repository", "bob/secret")}},
		{"labels reach the authorizer", "/auth?" + svc + "&scope=repository:x:pull", "mallory", "mpw", "mallory", []token.ResourceActions{ra("repository", "x")}},
		{"repeated and space separated scopes", "/auth?" + svc + "&scope=repository:alice/app:pull&scope=" + url.QueryEscape("repository:library/base:pull,push registry:catalog:*"), "alice", "alicepw", "alice",
			[]token.ResourceActions{ra("repository", "alice/app", "pull"), ra("repository", "library/base", "pull"), ra("registry", "catalog")}},
		{"registry host in name", "/auth?" + svc + "&scope=repository:localhost:5000/alice/app:pull", "alice", "alicepw", "alice", []token.ResourceActions{ra("repository", "localhost:5000/alice/app")}},
		{"user without password accepts any", "/auth?" + svc, "", "whatever", "", []token.ResourceActions{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rec := f.get(tc.target, tc.user, tc.pass)
			d := f.decode(rec)
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}
			if d.claims.Subject != tc.wantSub {
				t.Errorf("sub %q, want %q", d.claims.Subject, tc.wantSub)
			}
			if d.claims.Audience != "registry.test" || d.claims.Issuer != issuer {
				t.Errorf("aud %q iss %q", d.claims.Audience, d.claims.Issuer)
			}
			if diff := cmp.Diff(tc.wantAccess, d.claims.Access); diff != "" {
				t.Errorf("access (-want +got):\n%s", diff)
			}
			if d.resp.ExpiresIn != 900 {
				t.Errorf("expires_in %d", d.resp.ExpiresIn)
			}
			if _, err := time.Parse(time.RFC3339, d.resp.IssuedAt); err != nil {
				t.Errorf("issued_at %q: %v", d.resp.IssuedAt, err)
			}
			if d.resp.RefreshToken != "" {
				t.Error("refresh token without offline_token")
			}
			if !strings.Contains(rec.Body.String(), `"access_token"`) || !strings.Contains(rec.Body.String(), `"token"`) {
				t.Errorf("body %s", rec.Body)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name       string
		mod        func(*fixture)
		target     string
		user, pass string
		hdr        []string
		status     int
		body       string // substring of the message
		code       string // distribution error code
		header     map[string]string
	}{
		{name: "wrong password", target: "/auth?service=s", user: "alice", pass: "nope", status: 401, body: "Auth failed.", code: "UNAUTHORIZED",
			header: map[string]string{"WWW-Authenticate": `Basic realm="Test auth server"`}},
		{name: "unknown user", target: "/auth?service=s", user: "eve", pass: "x", status: 401, body: "Auth failed.", code: "UNAUTHORIZED"},
		{name: "no anonymous account", mod: func(f *fixture) { delete(f.authn.users, "") }, target: "/auth", status: 401, code: "UNAUTHORIZED"},
		{name: "account differs from user", target: "/auth?account=bob", user: "alice", pass: "alicepw", status: 400,
			body: `Bad request: user and account are not the same ("alice" vs "bob")`, code: "UNKNOWN"},
		{name: "account without credentials", target: "/auth?account=bob", status: 400, body: `("" vs "bob")`},
		{name: "malformed scope", target: "/auth?scope=repository:a:b:c:pull", user: "alice", pass: "alicepw", status: 400, body: "invalid scope"},
		{name: "upper-case type", target: "/auth?scope=Repository:alpine:pull", status: 400, body: `resource type "Repository"`},
		{name: "bad basic header", target: "/auth", hdr: []string{"Authorization", "Basic !!!"}, status: 400, body: "not base64"},
		{name: "backend unavailable", mod: func(f *fixture) { f.authn.err = fmt.Errorf("ldap dial: %w", authn.ErrUnavailable) },
			target: "/auth", user: "alice", pass: "alicepw", status: 503, code: "UNAVAILABLE", header: map[string]string{"Retry-After": "5"}},
		{name: "backend error is generic", mod: func(f *fixture) { f.authn.err = fmt.Errorf("secret detail 42") },
			target: "/auth", user: "alice", pass: "alicepw", status: 500, body: "Internal error"},
		{name: "authorizer error", mod: func(f *fixture) { f.authz.err = fmt.Errorf("boom") },
			target: "/auth?scope=repository:alice/app:pull", user: "alice", pass: "alicepw", status: 500},
		{name: "method", target: "/auth", status: 405, code: "UNSUPPORTED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if tc.mod != nil {
				tc.mod(f)
			}
			var rec = f.get(tc.target, tc.user, tc.pass, tc.hdr...)
			if tc.name == "method" {
				req, _ := http.NewRequest(http.MethodPut, tc.target, nil)
				rec.Body.Reset()
				rec = newRecorder()
				f.srv.ServeHTTP(rec, req)
			}
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tc.status, rec.Body)
			}
			// Registry clients parse the distribution error envelope.
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var body struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("body %q is not one distribution error (%v)", rec.Body, err)
			}
			if !strings.Contains(body.Errors[0].Message, tc.body) {
				t.Errorf("message %q does not contain %q", body.Errors[0].Message, tc.body)
			}
			if tc.code != "" && body.Errors[0].Code != tc.code {
				t.Errorf("code %q, want %q", body.Errors[0].Code, tc.code)
			}
			if strings.Contains(rec.Body.String(), "secret detail") {
				t.Errorf("internal error text leaked: %q", rec.Body)
			}
			for k, v := range tc.header {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestChainOrder(t *testing.T) {
	second := &fakeAuthn{name: "ldap", users: map[string]string{"carol": "cpw", "alice": "ldap-alice"}}
	tests := []struct {
		name       string
		user, pass string
		status     int
		calls2     int64
	}{
		{"no match falls through", "carol", "cpw", 200, 1},
		{"wrong static password never falls through", "alice", "ldap-alice", 401, 0},
		{"nobody matches", "dave", "x", 401, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			second.calls.Store(0)
			f := newFixture(t, func(c *Chain) {
				c.Authenticators = append(c.Authenticators, second)
				c.CacheTTL = -1
			})
			rec := f.get("/auth?service=registry.test", tc.user, tc.pass)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := second.calls.Load(); got != tc.calls2 {
				t.Errorf("second authenticator called %d times, want %d", got, tc.calls2)
			}
		})
	}
}

func TestRealIP(t *testing.T) {
	tests := []struct {
		name   string
		header string
		pos    int
		value  string
		remote string
		status int
		wantIP string
	}{
		{"remote addr", "", 0, "", "192.0.2.7:5555", 200, "192.0.2.7"},
		{"first entry", "X-Forwarded-For", 0, "198.51.100.1, 10.0.0.1", "", 200, "198.51.100.1"},
		{"last entry", "X-Forwarded-For", -1, "198.51.100.1, 10.0.0.1", "", 200, "10.0.0.1"},
		{"ipv6 with port", "X-Real-Ip", 0, "[2001:db8::1]:443", "", 200, "2001:db8::1"},
		{"missing header", "X-Forwarded-For", 0, "", "", 400, ""},
		{"position beyond list", "X-Forwarded-For", 3, "198.51.100.1", "", 400, ""},
		{"negative beyond list", "X-Forwarded-For", -3, "198.51.100.1, 10.0.0.1", "", 400, ""},
		{"garbage", "X-Forwarded-For", 0, "not-an-ip", "", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Chain) { c.RealIPHeader, c.RealIPPos = tc.header, tc.pos })
			req := newRequest(http.MethodGet, "/auth?service=registry.test&scope=repository:alice/app:pull", nil)
			req.SetBasicAuth("alice", "alicepw")
			if tc.remote != "" {
				req.RemoteAddr = tc.remote
			}
			if tc.value != "" {
				req.Header.Set(tc.header, tc.value)
			}
			rec := newRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				return
			}
			seen := f.authz.seen[len(f.authz.seen)-1]
			if seen.IP.String() != tc.wantIP {
				t.Errorf("authorizer saw IP %v, want %s", seen.IP, tc.wantIP)
			}
		})
	}
}

func TestPostPasswordGrant(t *testing.T) {
	tests := []struct {
		name   string
		form   url.Values
		status int
		oauth  string
	}{
		{"ok", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alicepw"}, "client_id": {"docker"}, "service": {"registry.test"}, "scope": {"repository:alice/app:pull"}}, 200, ""},
		{"missing client_id", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alicepw"}}, 400, "invalid_request"},
		{"missing username", url.Values{"grant_type": {"password"}, "client_id": {"docker"}}, 400, "invalid_request"},
		{"wrong password", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}, "client_id": {"docker"}}, 401, "invalid_grant"},
		{"unsupported grant", url.Values{"grant_type": {"client_credentials"}, "client_id": {"docker"}}, 400, "unsupported_grant_type"},
		{"bad scope", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alicepw"}, "client_id": {"docker"}, "scope": {"repository::pull"}}, 400, "invalid_scope"},
		{"missing refresh token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"docker"}}, 400, "invalid_request"},
		{"garbage refresh token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"docker"}, "refresh_token": {"abc"}}, 400, "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rec := f.post("/auth", tc.form)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 {
				d := f.decode(rec)
				if d.claims.Subject != "alice" || len(d.claims.Access) != 1 || d.resp.RefreshToken != "" {
					t.Errorf("claims %+v resp %+v", d.claims, d.resp)
				}
				return
			}
			var e struct{ Error, ErrorDescription string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if e.Error != tc.oauth {
				t.Errorf("error %q, want %q", e.Error, tc.oauth)
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestPostLegacyForm(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.post("/auth", url.Values{"username": {"alice"}, "password": {"alicepw"}, "service": {"registry.test"}, "scope": {"repository:alice/app:push"}})
	d := f.decode(rec)
	if d.claims.Subject != "alice" || cmp.Diff([]string{"push"}, d.claims.Access[0].Actions) != "" {
		t.Fatalf("claims %+v", d.claims)
	}
	rec = f.post("/auth", url.Values{"username": {"alice"}, "password": {"bad"}})
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "Auth failed.") {
		t.Fatalf("status %d body %q", rec.Code, rec.Body)
	}
}

func TestPostBodyLimit(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.post("/auth", url.Values{"grant_type": {"password"}, "junk": {strings.Repeat("a", maxBodyBytes)}})
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestRefreshTokenRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	login := f.get("/auth?service=registry.test&account=alice&client_id=docker&offline_token=true", "alice", "alicepw")
	rt := f.decode(login).resp.RefreshToken
	if !strings.HasPrefix(rt, refreshPrefix) {
		t.Fatalf("refresh token %q", rt)
	}
	calls := f.authn.calls.Load()
	rec := f.post("/auth", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"docker"}, "service": {"registry.test"}, "scope": {"repository:alice/app:pull,push"}})
	d := f.decode(rec)
	if d.claims.Subject != "alice" {
		t.Errorf("sub %q", d.claims.Subject)
	}
	if diff := cmp.Diff([]token.ResourceActions{ra("repository", "alice/app", "pull", "push")}, d.claims.Access); diff != "" {
		t.Errorf("access (-want +got):\n%s", diff)
	}
	if d.resp.RefreshToken != rt {
		t.Errorf("refresh grant should return the same refresh token")
	}
	if f.authn.calls.Load() != calls {
		t.Errorf("refresh called the authenticator")
	}
	// Password grant with access_type=offline also yields one.
	rec = f.post("/auth/token", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"bobpw"}, "client_id": {"docker"}, "access_type": {"offline"}, "service": {"registry.test"}})
	if f.decode(rec).resp.RefreshToken == "" {
		t.Error("no refresh token for access_type=offline")
	}
	// Labels recorded at login are used: mallory stays denied.
	login = f.get("/auth?service=registry.test&client_id=docker&offline_token=true", "mallory", "mpw")
	mrt := f.decode(login).resp.RefreshToken
	rec = f.post("/auth", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {mrt}, "client_id": {"docker"}, "service": {"registry.test"}, "scope": {"repository:x:pull"}})
	if diff := cmp.Diff([]token.ResourceActions{ra("repository", "x")}, f.decode(rec).claims.Access); diff != "" {
		t.Errorf("mallory access (-want +got):\n%s", diff)
	}
}

func TestRefreshTokenRefused(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *fixture, rt string, form url.Values) string
		want   string
	}{
		{"expired", func(f *fixture, rt string, _ url.Values) string {
			f.advance(DefaultRefreshExpiration + time.Second)
			return rt
		}, "expired"},
		{"other service", func(_ *fixture, rt string, form url.Values) string { form.Set("service", "other"); return rt }, "another service"},
		{"other client", func(_ *fixture, rt string, form url.Values) string { form.Set("client_id", "evil"); return rt }, "another client_id"},
		{"tampered payload", func(_ *fixture, rt string, _ url.Values) string {
			parts := strings.Split(strings.TrimPrefix(rt, refreshPrefix), ".")
			b, _ := base64Decode(parts[0])
			b = []byte(strings.Replace(string(b), `"sub":"alice"`, `"sub":"admin"`, 1))
			return refreshPrefix + base64Encode(b) + "." + parts[1]
		}, "signature"},
		{"changed signature", func(_ *fixture, rt string, _ url.Values) string {
			i := strings.LastIndexByte(rt, '.') + 1
			c := byte('A')
			if rt[i] == 'A' {
				c = 'B'
			}
			return rt[:i] + string(c) + rt[i+1:]
		}, "signature"},
		{"truncated signature", func(_ *fixture, rt string, _ url.Values) string { return rt[:len(rt)-2] }, "malformed"},
		{"other key", func(f *fixture, rt string, _ url.Values) string {
			other := newChain(f.t, f.authn, f.authz)
			other.RefreshKey = []byte("another key, as after a signing key change")
			if err := f.srv.Swap(other); err != nil {
				f.t.Fatal(err)
			}
			return rt
		}, "signing key changed"},
		{"account gone", func(f *fixture, rt string, _ url.Values) string {
			la := lookupAuthn{f.authn}
			c := newChain(f.t, la, f.authz)
			delete(f.authn.users, "alice")
			if err := f.srv.Swap(c); err != nil {
				f.t.Fatal(err)
			}
			return rt
		}, "no longer exists"},
		{"authenticator removed", func(f *fixture, rt string, _ url.Values) string {
			c := newChain(f.t, &fakeAuthn{name: "other"}, f.authz)
			if err := f.srv.Swap(c); err != nil {
				f.t.Fatal(err)
			}
			return rt
		}, "no longer configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rt := f.decode(f.get("/auth?service=registry.test&client_id=docker&offline_token=true", "alice", "alicepw")).resp.RefreshToken
			form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"docker"}, "service": {"registry.test"}}
			rt = tc.mutate(f, rt, form)
			form.Set("refresh_token", rt)
			rec := f.post("/auth", form)
			if rec.Code != 400 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				Errors      []struct{ Code, Message string }
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if e.Error != "invalid_grant" || !strings.Contains(e.Description, tc.want) {
				t.Errorf("error %+v, want invalid_grant mentioning %q", e, tc.want)
			}
			// The Docker engine reads only the errors array: it prints
			// "unauthorized: <message>".
			if len(e.Errors) != 1 || e.Errors[0].Code != "UNAUTHORIZED" || e.Errors[0].Message != e.Description {
				t.Errorf("errors %+v, want one UNAUTHORIZED with the description", e.Errors)
			}
		})
	}
}

func TestRefreshUsesCurrentLabelsWhenLookupExists(t *testing.T) {
	f := newFixture(t, nil)
	la := lookupAuthn{f.authn}
	if err := f.srv.Swap(newChain(t, la, f.authz)); err != nil {
		t.Fatal(err)
	}
	rt := f.decode(f.get("/auth?service=registry.test&client_id=docker&offline_token=true", "alice", "alicepw")).resp.RefreshToken
	f.authn.labels["alice"] = authn.Labels{"deny": {"all"}}
	rec := f.post("/auth", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"docker"}, "service": {"registry.test"}, "scope": {"repository:alice/app:pull"}})
	if diff := cmp.Diff([]token.ResourceActions{ra("repository", "alice/app")}, f.decode(rec).claims.Access); diff != "" {
		t.Errorf("access (-want +got):\n%s", diff)
	}
}
