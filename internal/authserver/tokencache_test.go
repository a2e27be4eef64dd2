package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// credAuthn reports a credential version per account, as static users
// do, from a map the test may change without a reload.
type credAuthn struct {
	*fakeAuthn
	versions map[string]string
	err      error
}

func (c *credAuthn) CredentialVersion(_ context.Context, account string) (secret.Secret, error) {
	if c.err != nil {
		return "", c.err
	}
	v, ok := c.versions[account]
	if !ok {
		return "", authn.ErrNoMatch
	}
	return secret.Secret(v), nil
}

var _ CredentialVersion = (*credAuthn)(nil)

const (
	pullBase  = "/auth?service=registry.test&scope=repository:library/base:pull"
	pullAlice = "/auth?service=registry.test&scope=repository:alice/app:pull"
)

func TestTokenCacheReusesWithRemainingLifetime(t *testing.T) {
	f := newFixture(t, nil)
	first := f.decode(f.get(pullBase, "", ""))
	f.advance(30 * time.Second)
	again := f.decode(f.get(pullBase, "", ""))
	if again.resp.Token != first.resp.Token {
		t.Fatal("an identical anonymous request 30 s later got a new token")
	}
	if again.resp.IssuedAt != first.resp.IssuedAt {
		t.Errorf("issued_at %q, want the original %q", again.resp.IssuedAt, first.resp.IssuedAt)
	}
	// The token expires 900 s after it was issued; 30 s have passed. The
	// exp claim is whole seconds, so the remainder is 869 or 870 s.
	wantLeft := time.Unix(first.claims.Expiry, 0).Sub(f.clock())
	if again.resp.ExpiresIn != int64(wantLeft/time.Second) || again.resp.ExpiresIn > 870 || again.resp.ExpiresIn < 869 {
		t.Errorf("expires_in %d, want the %v left", again.resp.ExpiresIn, wantLeft)
	}
	if first.resp.ExpiresIn != 900 {
		t.Errorf("fresh token: expires_in %d, want 900", first.resp.ExpiresIn)
	}

	// A minute after issue (the default TTL, under a tenth of 15 min) a
	// new token is signed.
	f.advance(31 * time.Second)
	fresh := f.decode(f.get(pullBase, "", ""))
	if fresh.resp.Token == first.resp.Token {
		t.Fatal("token handed out again after the TTL")
	}
	if fresh.resp.ExpiresIn != 900 || fresh.claims.IssuedAt != f.clock().Unix() {
		t.Errorf("new token: expires_in %d, iat %d, want 900 and %d", fresh.resp.ExpiresIn, fresh.claims.IssuedAt, f.clock().Unix())
	}
	m := scrape(t, f)
	for _, want := range []string{`gatehouse_auth_token_cache_total{result="hit"} 1`, `gatehouse_auth_token_cache_total{result="miss"} 2`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestTokenCacheFloor(t *testing.T) {
	// With a 5-minute lifetime and a TTL of an hour, a token is reused
	// only while 90% of its lifetime is left: for 30 s.
	f := newFixture(t, func(c *Chain) { c.Expiration = 5 * time.Minute; c.TokenCacheTTL = time.Hour })
	first := f.decode(f.get(pullBase, "", "")).resp.Token
	f.advance(29 * time.Second)
	if got := f.decode(f.get(pullBase, "", "")); got.resp.Token != first || got.resp.ExpiresIn*10 < 300*9 {
		t.Fatalf("within the window: same token %v, expires_in %d", got.resp.Token == first, got.resp.ExpiresIn)
	}
	f.advance(2 * time.Second)
	if got := f.decode(f.get(pullBase, "", "")); got.resp.Token == first || got.resp.ExpiresIn != 300 {
		t.Fatalf("past 10%% of the lifetime: same token %v, expires_in %d", got.resp.Token == first, got.resp.ExpiresIn)
	}
	// A lifetime under 10 s leaves a window under a second: no cache.
	f = newFixture(t, func(c *Chain) { c.Expiration = 9 * time.Second })
	if f.srv.Chain().tokens != nil {
		t.Fatal("token cache on for a 9 s lifetime")
	}
}

func TestTokenCacheNeverForWrongPassword(t *testing.T) {
	for _, credTTL := range []time.Duration{0, -1} { // credential cache on, off
		t.Run(fmt.Sprintf("credential cache TTL %d", credTTL), func(t *testing.T) {
			f := newFixture(t, func(c *Chain) { c.CacheTTL = credTTL })
			good := f.decode(f.get(pullAlice, "alice", "alicepw")).resp.Token
			for _, pw := range []string{"wrong", "", "alicepw "} {
				rec := f.get(pullAlice, "alice", pw)
				if rec.Code != 401 {
					t.Fatalf("password %q: status %d", pw, rec.Code)
				}
				if strings.Contains(rec.Body.String(), good) {
					t.Fatalf("password %q got the cached token", pw)
				}
			}
			// Nor for the same account name typed by someone else with no
			// password at all.
			if rec := f.get(pullAlice, "alice", ""); rec.Code == 200 {
				t.Fatal("no password: 200")
			}
		})
	}
}

func TestTokenCacheKey(t *testing.T) {
	tests := []struct {
		name        string
		first, then func(f *fixture) string // return a token
		same        bool
	}{
		{name: "identical user request", same: true,
			first: func(f *fixture) string { return f.token(pullAlice, "alice", "alicepw") },
			then:  func(f *fixture) string { return f.token(pullAlice, "alice", "alicepw") }},
		{name: "same grant asked differently", same: true, // pull,push on library/base grants alice pull only
			first: func(f *fixture) string { return f.token(pullBase, "alice", "alicepw") },
			then:  func(f *fixture) string { return f.token(pullBase+",push", "alice", "alicepw") }},
		{name: "GET and password grant", same: true,
			first: func(f *fixture) string { return f.token(pullAlice, "alice", "alicepw") },
			then: func(f *fixture) string {
				return f.postToken(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alicepw"}, "client_id": {"docker"}, "service": {"registry.test"}, "scope": {"repository:alice/app:pull"}})
			}},
		{name: "different granted actions",
			first: func(f *fixture) string { return f.token(pullAlice, "alice", "alicepw") },
			then:  func(f *fixture) string { return f.token(pullAlice+",push", "alice", "alicepw") }},
		{name: "different repository",
			first: func(f *fixture) string { return f.token(pullBase, "alice", "alicepw") },
			then:  func(f *fixture) string { return f.token(pullAlice, "alice", "alicepw") }},
		{name: "more scopes",
			first: func(f *fixture) string { return f.token(pullAlice, "alice", "alicepw") },
			then: func(f *fixture) string {
				return f.token(pullAlice+"&scope=repository:library/base:pull", "alice", "alicepw")
			}},
		{name: "different service",
			first: func(f *fixture) string { return f.token(pullBase, "", "") },
			then: func(f *fixture) string {
				return f.token(strings.Replace(pullBase, "registry.test", "other", 1), "", "")
			}},
		{name: "another account with the same grant",
			first: func(f *fixture) string { return f.token(pullBase, "alice", "alicepw") },
			then:  func(f *fixture) string { return f.token(pullBase, "bob", "bobpw") }},
		{name: "labels changed at the backend",
			first: func(f *fixture) string { return f.token(pullAlice, "alice", "alicepw") },
			then: func(f *fixture) string {
				f.authn.labels["alice"] = authn.Labels{"groups": {"ops"}}
				return f.token(pullAlice, "alice", "alicepw")
			}},
		{name: "after a reload",
			first: func(f *fixture) string { return f.token(pullBase, "", "") },
			then: func(f *fixture) string {
				if err := f.srv.Swap(newChain(f.t, f.authn, f.authz)); err != nil {
					f.t.Fatal(err)
				}
				return f.token(pullBase, "", "")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Without the credential cache, so that every request asks the
			// authenticator for the labels.
			f := newFixture(t, func(c *Chain) { c.CacheTTL = -1 })
			a, b := tc.first(f), tc.then(f)
			if (a == b) != tc.same {
				t.Fatalf("same token: %v, want %v", a == b, tc.same)
			}
		})
	}
}

// token fetches a token and fails the test unless it is issued.
func (f *fixture) token(target, user, pass string) string {
	f.t.Helper()
	return f.decode(f.get(target, user, pass)).resp.Token
}

func (f *fixture) postToken(form url.Values) string {
	f.t.Helper()
	return f.decode(f.post("/auth/token", form)).resp.Token
}

func TestTokenCacheCredentialChange(t *testing.T) {
	ca := &credAuthn{fakeAuthn: defaultAuthn(), versions: map[string]string{"alice": "hash-1", "": ""}}
	f := newFixture(t, func(c *Chain) {
		c.Authenticators = []authn.Authenticator{ca}
		c.CacheTTL = -1
	})
	first := f.token(pullAlice, "alice", "alicepw")
	if again := f.token(pullAlice, "alice", "alicepw"); again != first {
		t.Fatal("same credential version: new token")
	}
	// The password changes at the backend: the old one is refused and the
	// new one gets a token of its own.
	ca.users["alice"], ca.versions["alice"] = "newpw", "hash-2"
	if rec := f.get(pullAlice, "alice", "alicepw"); rec.Code != 401 || strings.Contains(rec.Body.String(), first) {
		t.Fatalf("old password after the change: %d", rec.Code)
	}
	if next := f.token(pullAlice, "alice", "newpw"); next == first {
		t.Fatal("new credential got the token of the old one")
	}
	// When the version cannot be read, tokens are signed and not kept.
	ca.err = errors.New("backend down")
	a, b := f.token(pullAlice, "alice", "newpw"), f.token(pullAlice, "alice", "newpw")
	if a == b {
		t.Fatal("token cached without a credential version")
	}
}

func TestTokenCacheOff(t *testing.T) {
	f := newFixture(t, func(c *Chain) { c.TokenCacheTTL = -1 })
	if a, b := f.token(pullBase, "", ""), f.token(pullBase, "", ""); a == b {
		t.Fatal("two requests got the same token with the token cache off")
	}
}

func TestTokenCacheRefreshTokensNotShared(t *testing.T) {
	f := newFixture(t, nil)
	login := "/auth?service=registry.test&scope=repository:alice/app:pull&client_id=docker&offline_token=true"
	a, b := f.decode(f.get(login, "alice", "alicepw")), f.decode(f.get(login, "alice", "alicepw"))
	if a.resp.Token != b.resp.Token {
		t.Error("access tokens of identical logins differ")
	}
	if a.resp.RefreshToken == "" || a.resp.RefreshToken == b.resp.RefreshToken {
		t.Fatal("two logins share a refresh token")
	}
	// A refresh grant for the same account and access is an identical
	// request too, and returns its own refresh token.
	rec := f.post("/auth", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b.resp.RefreshToken}, "client_id": {"docker"}, "service": {"registry.test"}, "scope": {"repository:alice/app:pull"}})
	c := f.decode(rec)
	if c.resp.Token != a.resp.Token || c.resp.RefreshToken != b.resp.RefreshToken {
		t.Errorf("refresh grant: same access token %v, own refresh token %v", c.resp.Token == a.resp.Token, c.resp.RefreshToken == b.resp.RefreshToken)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	now := time.Now()
	c := newTokenCache(time.Minute, 15*time.Minute, 10)
	for i := range 100 {
		id := tokenIdentity{account: fmt.Sprint(i)}
		c.put(c.key(&id), cachedToken{jwt: fmt.Sprint(i), issued: now, expiry: now.Add(15 * time.Minute)}, now)
		if n := c.size(); n > 10 {
			t.Fatalf("%d entries after %d puts, max 10", n, i+1)
		}
	}
	id := tokenIdentity{account: "99"}
	if got, ok := c.get(c.key(&id), now); !ok || got.jwt != "99" {
		t.Fatal("the newest entry was evicted")
	}
	// A clock stepped back finds nothing.
	if _, ok := c.get(c.key(&id), now.Add(-time.Second)); ok {
		t.Fatal("token handed out before its issue time")
	}
	c.purge()
	if c.size() != 0 {
		t.Fatal("purge left entries")
	}
}

func TestTokenCacheKeyEncoding(t *testing.T) {
	c := newTokenCache(time.Minute, 15*time.Minute, 0)
	acc := func(names ...string) []token.ResourceActions {
		var out []token.ResourceActions
		for _, n := range names {
			out = append(out, token.ResourceActions{Type: "repository", Name: n, Actions: []string{"pull"}})
		}
		return out
	}
	ids := []tokenIdentity{
		{authenticator: "static", account: "alice", service: "r", access: acc("a")},
		{authenticator: "ldap", account: "alice", service: "r", access: acc("a")},
		{authenticator: "static", account: "alic", service: "er", access: acc("a")},
		{authenticator: "static", account: "alice", service: "r", access: acc("a", "b")},
		{authenticator: "static", account: "alice", service: "r", access: []token.ResourceActions{{Type: "repository", Name: "a", Actions: []string{"pull", "push"}}}},
		{authenticator: "static", account: "alice", service: "r", access: []token.ResourceActions{{Type: "repository", Class: "plugin", Name: "a", Actions: []string{"pull"}}}},
		{authenticator: "static", account: "alice", service: "r", access: acc("a"), labels: authn.Labels{"g": {"x", "y"}}},
		{authenticator: "static", account: "alice", service: "r", access: acc("a"), labels: authn.Labels{"g": {"x"}, "y": nil}},
		{authenticator: "static", account: "alice", service: "r", access: acc("a"), hasCredential: true},
		{authenticator: "static", account: "alice", service: "r", access: acc("a"), hasCredential: true, credential: "h1"},
		{authenticator: "static", account: "alice", service: "r", access: acc("a"), hasCredential: true, credential: "h2"},
	}
	seen := map[tokenKey]int{}
	for i := range ids {
		k := c.key(&ids[i])
		if j, dup := seen[k]; dup {
			t.Errorf("identities %d and %d share a key", j, i)
		}
		seen[k] = i
		cp := ids[i]
		cp.labels = ids[i].labels.Clone()
		if c.key(&cp) != k {
			t.Errorf("identity %d: a copy has another key", i)
		}
	}
}
