package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
)

func TestRateLimits(t *testing.T) {
	t.Run("account", func(t *testing.T) {
		f := newFixture(t, func(c *Chain) { c.AccountFailures = 3; c.IPFailures = 100 })
		for i := range 3 {
			if rec := f.get("/auth", "alice", "wrong"); rec.Code != 401 {
				t.Fatalf("attempt %d: status %d", i, rec.Code)
			}
		}
		calls := f.authn.calls.Load()
		rec := f.get("/auth", "alice", "wrong")
		if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("status %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
		}
		// The Docker engine prints "toomanyrequests: <message>" from this.
		if !strings.Contains(rec.Body.String(), `{"errors":[{"code":"TOOMANYREQUESTS","message":"Too many failed logins`) {
			t.Errorf("body %s, want a TOOMANYREQUESTS error", rec.Body)
		}
		if f.authn.calls.Load() != calls {
			t.Error("a refused request still reached the authenticator")
		}
		// Other accounts from the same address are not affected.
		if rec := f.get("/auth?service=registry.test", "bob", "bobpw"); rec.Code != 200 {
			t.Errorf("bob: status %d", rec.Code)
		}
		// Anonymous requests never consume or get refused.
		if rec := f.get("/auth?service=registry.test", "", ""); rec.Code != 200 {
			t.Errorf("anonymous: status %d", rec.Code)
		}
	})
	t.Run("cached success passes the account limit", func(t *testing.T) {
		f := newFixture(t, func(c *Chain) { c.AccountFailures = 2; c.IPFailures = 100 })
		if rec := f.get("/auth?service=registry.test", "alice", "alicepw"); rec.Code != 200 {
			t.Fatal(rec.Code)
		}
		for range 2 {
			req := newRequest(http.MethodGet, "/auth", nil)
			req.SetBasicAuth("alice", "guess")
			req.RemoteAddr = "203.0.113.9:1234"
			f.srv.ServeHTTP(newRecorder(), req)
		}
		if rec := f.get("/auth?service=registry.test", "alice", "alicepw"); rec.Code != 200 {
			t.Fatalf("alice's own cached login refused: %d", rec.Code)
		}
	})
	t.Run("ip", func(t *testing.T) {
		f := newFixture(t, func(c *Chain) { c.AccountFailures = 100; c.IPFailures = 2 })
		f.get("/auth", "alice", "wrong")
		f.get("/auth", "bob", "wrong")
		rec := f.get("/auth?service=registry.test", "bob", "bobpw")
		if rec.Code != 429 {
			t.Fatalf("status %d", rec.Code)
		}
		req := newRequest(http.MethodGet, "/auth?service=registry.test", nil)
		req.SetBasicAuth("bob", "bobpw")
		req.RemoteAddr = "198.51.100.20:1"
		rec = newRecorder()
		f.srv.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("other address refused: %d", rec.Code)
		}
	})
	t.Run("successes give their reservation back", func(t *testing.T) {
		f := newFixture(t, func(c *Chain) { c.AccountFailures = 2; c.IPFailures = 2; c.CacheTTL = -1 })
		for i := range 5 {
			if rec := f.get("/auth?service=registry.test", "alice", "alicepw"); rec.Code != 200 {
				t.Fatalf("login %d: status %d", i, rec.Code)
			}
		}
		for i := range 2 {
			if rec := f.get("/auth", "alice", "wrong"); rec.Code != 401 {
				t.Fatalf("wrong password %d after successes: status %d", i, rec.Code)
			}
		}
		if rec := f.get("/auth", "alice", "wrong"); rec.Code != 429 {
			t.Fatalf("third wrong password: status %d", rec.Code)
		}
	})
	t.Run("backend outage does not count", func(t *testing.T) {
		f := newFixture(t, func(c *Chain) { c.AccountFailures = 1; c.IPFailures = 1 })
		f.authn.err = authn.ErrUnavailable
		for i := range 3 {
			if rec := f.get("/auth", "alice", "alicepw"); rec.Code != 503 {
				t.Fatalf("attempt %d during outage: status %d", i, rec.Code)
			}
		}
		f.authn.err = nil
		if rec := f.get("/auth?service=registry.test", "alice", "alicepw"); rec.Code != 200 {
			t.Fatalf("after outage: status %d", rec.Code)
		}
	})
	t.Run("forged refresh tokens count per address", func(t *testing.T) {
		f := newFixture(t, func(c *Chain) { c.IPFailures = 2 })
		form := map[string][]string{"grant_type": {"refresh_token"}, "client_id": {"docker"}, "refresh_token": {"garbage"}}
		for i := range 2 {
			if rec := f.post("/auth", form); rec.Code != 400 {
				t.Fatalf("forged token %d: status %d", i, rec.Code)
			}
		}
		if rec := f.post("/auth", form); rec.Code != 429 {
			t.Fatalf("third forged token: status %d", rec.Code)
		}
	})
	t.Run("oauth style", func(t *testing.T) {
		f := newFixture(t, func(c *Chain) { c.AccountFailures = 1 })
		f.get("/auth", "alice", "wrong")
		rec := f.post("/auth", map[string][]string{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}, "client_id": {"c"}})
		if rec.Code != 429 || !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
			t.Fatalf("status %d body %s", rec.Code, rec.Body)
		}
	})
}

// TestRateLimitsParallel: wrong passwords sent all at once get no more
// than the limit's worth of password checks. The authenticator holds every
// check until each request has either reached it or been answered, so a
// limiter that only counts failures after the check lets them all through.
func TestRateLimitsParallel(t *testing.T) {
	const n = 100
	tests := []struct {
		name             string
		accountLimit     int
		ipLimit          int
		accounts         int // requests cycle through this many accounts
		want401, want429 int
	}{
		{"one account, one address", 10, 50, 1, 10, n - 10},
		{"many accounts, one address", 100, 7, 20, 7, n - 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Chain) { c.AccountFailures = tt.accountLimit; c.IPFailures = tt.ipLimit })
			block := make(chan struct{})
			f.authn.block = block
			var (
				wg       sync.WaitGroup
				answered atomic.Int64
				mu       sync.Mutex
				codes    = map[int]int{}
			)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					account := "alice"
					if tt.accounts > 1 {
						account = fmt.Sprint("user", i%tt.accounts)
					}
					rec := f.get("/auth?service=registry.test", account, "wrong")
					answered.Add(1)
					mu.Lock()
					codes[rec.Code]++
					mu.Unlock()
				}()
			}
			deadline := time.Now().Add(20 * time.Second)
			for f.authn.calls.Load()+answered.Load() < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			close(block)
			wg.Wait()
			if codes[401] != tt.want401 || codes[429] != tt.want429 || codes[401]+codes[429] != n {
				t.Errorf("statuses %v, want %d × 401 and %d × 429", codes, tt.want401, tt.want429)
			}
			if got := f.authn.calls.Load(); got != int64(tt.want401) {
				t.Errorf("%d password checks, want %d", got, tt.want401)
			}
		})
	}
}

func TestCredentialCache(t *testing.T) {
	f := newFixture(t, nil)
	for range 3 {
		if rec := f.get("/auth?service=registry.test", "alice", "alicepw"); rec.Code != 200 {
			t.Fatal(rec.Code)
		}
	}
	if got := f.authn.calls.Load(); got != 1 {
		t.Fatalf("authenticator called %d times, want 1", got)
	}
	// A wrong password is never answered from the cache, and never cached.
	for range 2 {
		if rec := f.get("/auth", "alice", "wrong"); rec.Code != 401 {
			t.Fatalf("wrong password: %d", rec.Code)
		}
	}
	if got := f.authn.calls.Load(); got != 3 {
		t.Fatalf("authenticator called %d times, want 3", got)
	}
	// A password that turns wrong after a reload is not served from the old cache.
	if err := f.srv.Swap(newChain(t, f.authn, f.authz)); err != nil {
		t.Fatal(err)
	}
	f.authn.users["alice"] = "newpw"
	if rec := f.get("/auth", "alice", "alicepw"); rec.Code != 401 {
		t.Fatalf("old password after reload: %d", rec.Code)
	}
	m := scrape(t, f)
	for _, want := range []string{`gatehouse_auth_credential_cache_total{result="hit"} 2`, `gatehouse_auth_credential_cache_total{result="miss"} 4`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newFixture(t, func(c *Chain) { c.CacheTTL = -1 })
	for range 3 {
		f.get("/auth?service=registry.test", "alice", "alicepw")
	}
	if got := f.authn.calls.Load(); got != 3 {
		t.Fatalf("authenticator called %d times, want 3", got)
	}
}

func scrape(t *testing.T, f *fixture) string {
	t.Helper()
	rec := f.get("/metrics", "", "")
	if rec.Code != 200 {
		t.Fatalf("metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

func TestReload(t *testing.T) {
	f := newFixture(t, nil)
	old := f.srv.Chain()
	err := f.srv.Reload(context.Background(), func(context.Context) (*Chain, error) {
		return nil, errors.New("acl.0.match: unknown key gidNumber\nusers.bob: password is not a bcrypt hash")
	})
	if err == nil {
		t.Fatal("want the build error")
	}
	if f.srv.Chain() != old {
		t.Fatal("chain replaced by a failed reload")
	}
	if rec := f.get("/auth?service=registry.test", "alice", "alicepw"); rec.Code != 200 {
		t.Fatalf("not serving after a failed reload: %d", rec.Code)
	}
	// A chain that fails validation is refused and closed.
	bad := &fakeAuthn{name: "bad"}
	err = f.srv.Reload(context.Background(), func(context.Context) (*Chain, error) {
		c := newChain(t, bad, f.authz)
		c.Issuer = ""
		return c, nil
	})
	if err == nil || !bad.closed.Load() || f.srv.Chain() != old {
		t.Fatalf("invalid chain: err %v closed %v", err, bad.closed.Load())
	}
	// A good reload swaps, and the old chain gets closed.
	next := &fakeAuthn{name: "static", users: map[string]string{"zed": "zpw"}}
	if err := f.srv.Reload(context.Background(), func(context.Context) (*Chain, error) { return newChain(t, next, f.authz), nil }); err != nil {
		t.Fatal(err)
	}
	if rec := f.get("/auth?service=registry.test", "zed", "zpw"); rec.Code != 200 {
		t.Fatalf("new user: %d", rec.Code)
	}
	if rec := f.get("/auth?service=registry.test", "alice", "alicepw"); rec.Code != 401 {
		t.Fatalf("removed user: %d", rec.Code)
	}
	waitFor(t, f.authn.closed.Load)
	m := scrape(t, f)
	for _, want := range []string{`gatehouse_auth_reloads_total{result="failure"} 2`, `gatehouse_auth_reloads_total{result="success"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInFlightRequestSurvivesReload(t *testing.T) {
	f := newFixture(t, func(c *Chain) { c.CacheTTL = -1 })
	f.authn.block = make(chan struct{})
	done := make(chan int)
	go func() { done <- f.get("/auth?service=registry.test", "alice", "alicepw").Code }()
	waitFor(t, func() bool { return f.authn.calls.Load() == 1 })

	next := &fakeAuthn{name: "static", users: map[string]string{"zed": "zpw"}}
	if err := f.srv.Swap(newChain(t, next, f.authz)); err != nil {
		t.Fatal(err)
	}
	// The check is that something does not happen, so there is no event to
	// wait for: give a wrong close time to happen (three of retire's 50 ms
	// polls) before looking.
	time.Sleep(150 * time.Millisecond)
	if f.authn.closed.Load() {
		t.Fatal("old chain closed while a request was still using it")
	}
	close(f.authn.block)
	if code := <-done; code != 200 {
		t.Fatalf("in-flight request: %d", code)
	}
	waitFor(t, f.authn.closed.Load)
}

func TestNoSecretsInLogs(t *testing.T) {
	f := newFixture(t, nil)
	const pw = "S3cr3t-Pa55"
	f.authn.users["carol"] = pw
	f.get("/auth?service=registry.test&scope=repository:alice/app:pull&password="+pw, "carol", pw)
	f.get("/auth", "carol", pw+"x")
	f.authn.err = fmt.Errorf("backend said %w", authn.ErrUnavailable)
	f.get("/auth", "carol", pw)
	f.authn.err = nil
	rec := f.post("/auth", map[string][]string{"grant_type": {"password"}, "username": {"carol"}, "password": {pw}, "client_id": {"d"}, "access_type": {"offline"}, "service": {"registry.test"}})
	rt := f.decode(rec).resp.RefreshToken
	f.srv.ServeHTTP(newRecorder(), newRequest(http.MethodGet, "/auth?refresh_token="+rt, nil))
	logs := f.logs.String()
	if !strings.Contains(logs, `"account":"carol"`) || !strings.Contains(logs, "request_id") {
		t.Fatalf("access log missing:\n%s", logs)
	}
	for _, s := range []string{pw, "Basic ", rt[10:30], "Authorization"} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}

func TestRoutesAndHeaders(t *testing.T) {
	f := newFixture(t, func(c *Chain) { c.PathPrefix = "/x"; c.HSTS = true })
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/x/auth?service=registry.test", 200, `"token"`},
		{"/x/auth/token?service=registry.test", 200, `"token"`},
		{"/auth", 404, "Not found"},
		{"/healthz", 200, "ok"},
		{"/x/healthz", 200, "ok"},
		{"/readyz", 200, "ready"},
		{"/x/readyz", 200, "ready"},
		{"/metrics", 200, "gatehouse_auth_requests_total"},
		{"/x/metrics", 200, "go_goroutines"},
		{"/.well-known/jwks.json", 200, `"kty": "EC"`},
		{"/x/.well-known/jwks.json", 200, `"use": "sig"`},
		{"/", 200, "<h1>Test auth server</h1>"},
		{"/x/", 200, "<h1>Test auth server</h1>"},
		{"/v2/", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := f.get(tc.path, "", "", "X-Request-Id", "req-42")
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("status %d body %q", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
				t.Errorf("HSTS %q", got)
			}
			if got := rec.Header().Get("X-Request-Id"); got != "req-42" {
				t.Errorf("request id %q", got)
			}
		})
	}
	rec := f.get("/healthz", "", "", "X-Request-Id", "bad id\x01")
	if id := rec.Header().Get("X-Request-Id"); len(id) != 24 {
		t.Errorf("generated request id %q", id)
	}
	if rec := f.get("/healthz", "", ""); rec.Header().Get("X-Request-Id") == "" {
		t.Error("no request id generated")
	}
}

func TestReadiness(t *testing.T) {
	f := newFixture(t, nil)
	ra := readyAuthn{&fakeAuthn{name: "ldap", ready: errors.New("dial tcp: connection refused")}}
	if err := f.srv.Swap(newChain(t, ra, f.authz)); err != nil {
		t.Fatal(err)
	}
	rec := f.get("/readyz", "", "")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "authenticator ldap: not ready") {
		t.Fatalf("status %d body %q", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "dial tcp") {
		t.Errorf("/readyz shows the backend's error to the client: %q", rec.Body)
	}
	ra.ready = nil
	if rec := f.get("/readyz", "", ""); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestRequestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	f.get("/auth?service=registry.test", "alice", "alicepw")
	f.get("/auth", "alice", "nope")
	m := scrape(t, f)
	for _, want := range []string{
		`gatehouse_auth_requests_total{endpoint="token",outcome="issued"} 1`,
		`gatehouse_auth_requests_total{endpoint="token",outcome="denied_credentials"} 1`,
		`gatehouse_auth_request_duration_seconds_count{endpoint="token"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNewRefusesBadChains(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Chain)
		want string
	}{
		{"issuer", func(c *Chain) { c.Issuer = "" }, "issuer"},
		{"expiration", func(c *Chain) { c.Expiration = 0 }, "expiration"},
		{"signer", func(c *Chain) { c.Signer = nil }, "signer"},
		{"authenticators", func(c *Chain) { c.Authenticators = nil }, "authenticator"},
		{"prefix", func(c *Chain) { c.PathPrefix = "x" }, "prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, defaultAuthn(), defaultAuthz())
			tc.mod(c)
			if _, err := New(c, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one about %s", err, tc.want)
			}
		})
	}
}

func TestConcurrentRequestsAndReloads(t *testing.T) {
	f := newFixture(t, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if rec := f.get("/auth?service=registry.test&scope=repository:alice/app:pull", "alice", "alicepw"); rec.Code != 200 {
					t.Errorf("worker %d: %d", i, rec.Code)
					return
				}
			}
		})
	}
	for range 5 {
		if err := f.srv.Swap(newChain(t, f.authn, f.authz)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
