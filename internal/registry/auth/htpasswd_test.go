package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
)

func bcryptHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// basic authorizes a request from addr with Basic credentials.
func basic(h *Htpasswd, addr, user, pass string) error {
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	r.RemoteAddr = addr
	r.SetBasicAuth(user, pass)
	_, err := h.CheckAccess(context.Background(), r, nil)
	return err
}

func TestHtpasswd(t *testing.T) {
	h, err := ParseHtpasswd("reg", []byte("# users\n\nalice:"+bcryptHash(t, "s3cret")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, pass string
		basic            bool
		ok               bool
	}{
		{"right", "alice", "s3cret", true, true},
		{"right again (cached)", "alice", "s3cret", true, true},
		{"wrong after cache", "alice", "s3cret2", true, false},
		{"wrong", "alice", "nope", true, false},
		{"empty password", "alice", "", true, false},
		{"unknown", "bob", "s3cret", true, false},
		{"empty user", "", "s3cret", true, false},
		{"none", "", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			if tt.basic {
				r.SetBasicAuth(tt.user, tt.pass)
			}
			u, err := h.CheckAccess(context.Background(), r, nil)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && u.Name != tt.user {
				t.Errorf("user = %q", u.Name)
			}
			if !tt.ok {
				c, isC := IsChallenge(err)
				if !isC || c.Header != `Basic realm="reg",charset="UTF-8"` {
					t.Errorf("challenge = %v", err)
				}
				if strings.Contains(err.Error(), tt.pass) && tt.pass != "" {
					t.Errorf("error leaks the password: %v", err)
				}
			}
		})
	}
}

func TestParseHtpasswdErrors(t *testing.T) {
	good := "alice:" + bcryptHash(t, "pw")
	tests := []struct{ name, data, want string }{
		{"md5", "bob:$apr1$abc$defghijklmnopqrstuv", `line 1: the hash for user "bob" is not bcrypt`},
		{"sha1", "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", `line 1: the hash for user "bob" is not bcrypt`},
		{"plain", "bob:password", `line 1: the hash for user "bob" is not bcrypt`},
		{"crypt_blowfish bug variant", "bob:$2x$" + strings.TrimPrefix(bcryptHash(t, "pw"), "$2a$"), `line 1: the hash for user "bob" is not bcrypt`},
		{"no colon", "bob", "line 1: want user:bcrypt-hash"},
		{"empty user", ":" + bcryptHash(t, "pw"), "line 1: want user:bcrypt-hash"},
		{"after comments and blanks", "# users\n\n" + good + "\ncarol:{SHA}x", `line 4: the hash for user "carol" is not bcrypt`},
		{"duplicate", good + "\n# again\n" + good, `line 3: user "alice" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHtpasswd("r", []byte(tt.data+"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "$2") {
				t.Errorf("error shows a hash: %v", err)
			}
		})
	}
}

// TestHtpasswdCache: verified credentials are remembered, wrong ones never,
// and an entry is bound to the exact account and password, however NUL
// bytes split them.
func TestHtpasswdCache(t *testing.T) {
	data := "alice:" + bcryptHash(t, "s3cret") + "\na\x00b:" + bcryptHash(t, "c") + "\na:" + bcryptHash(t, "b\x00c") + "\n"
	tests := []struct {
		name, user, pass string
		ok               bool
		wantLen          int
	}{
		{"first login is cached", "alice", "s3cret", true, 1},
		{"second login hits", "alice", "s3cret", true, 1},
		{"wrong password is not cached", "alice", "s3cret!", false, 1},
		{"NUL in the password", "a", "b\x00c", true, 2},
		{"NUL in the account", "a\x00b", "c", true, 3},
		{"NUL moved: not the cached entry", "a\x00b", "\x00c", false, 3},
	}
	h, err := ParseHtpasswd("reg", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := basic(h, "192.0.2.1:1", tt.user, tt.pass)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if n := h.cache.Len(); n != tt.wantLen {
				t.Errorf("cache holds %d entries, want %d", n, tt.wantLen)
			}
		})
	}
}

func TestHtpasswdRateLimits(t *testing.T) {
	users := "alice:" + bcryptHash(t, "alicepw") + "\nbob:" + bcryptHash(t, "bobpw") + "\n"
	const ip1, ip2 = "192.0.2.1:1000", "198.51.100.7:2000"
	type attempt struct {
		advance          time.Duration
		addr, user, pass string // a user ending in # gets the repetition's number
		repeat           int    // this many times (1 when 0)
		want             string // "ok", "401", "429 account", "429 address"
	}
	tests := []struct {
		name     string
		attempts []attempt
	}{
		{"account limit", []attempt{
			{addr: ip1, user: "alice", pass: "guess", repeat: ratelimit.DefaultAccountFailures, want: "401"},
			{addr: ip1, user: "alice", pass: "guess", want: "429 account"},
			{addr: ip2, user: "alice", pass: "alicepw", want: "429 account"},
			{addr: ip1, user: "bob", pass: "bobpw", want: "ok"},
		}},
		{"address limit", []attempt{
			{addr: ip1, user: "nobody#", pass: "x", repeat: ratelimit.DefaultIPFailures - 1, want: "401"},
			{addr: ip1, user: "alice", pass: "guess", want: "401"},
			{addr: ip1, user: "bob", pass: "bobpw", want: "429 address"},
			{addr: ip2, user: "bob", pass: "bobpw", want: "ok"},
		}},
		{"IPv4-mapped address is the same address", []attempt{
			{addr: ip1, user: "ghost#", pass: "x", repeat: ratelimit.DefaultIPFailures / 2, want: "401"},
			{addr: "[::ffff:192.0.2.1]:3000", user: "nobody#", pass: "x", repeat: ratelimit.DefaultIPFailures - ratelimit.DefaultIPFailures/2, want: "401"},
			{addr: ip1, user: "bob", pass: "bobpw", want: "429 address"},
		}},
		{"successes give their slot back", []attempt{
			{addr: ip1, user: "alice", pass: "alicepw", repeat: 30, want: "ok"},
			{addr: ip1, user: "alice", pass: "guess", repeat: ratelimit.DefaultAccountFailures, want: "401"},
			{addr: ip1, user: "alice", pass: "guess", want: "429 account"},
		}},
		{"cached login passes the account limit", []attempt{
			{addr: ip1, user: "alice", pass: "alicepw", want: "ok"},
			{addr: ip2, user: "alice", pass: "guess", repeat: ratelimit.DefaultAccountFailures, want: "401"},
			{addr: ip1, user: "alice", pass: "alicepw", want: "ok"},
			{addr: ip1, user: "alice", pass: "other", want: "429 account"},
		}},
		{"the limit refills over the window", []attempt{
			{addr: ip1, user: "alice", pass: "guess", repeat: ratelimit.DefaultAccountFailures, want: "401"},
			{addr: ip1, user: "alice", pass: "alicepw", want: "429 account"},
			{advance: ratelimit.DefaultWindow / ratelimit.DefaultAccountFailures, addr: ip1, user: "alice", pass: "alicepw", want: "ok"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHtpasswd("reg", []byte(users))
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1_700_000_000, 0)
			h.setClock(func() time.Time { return now })
			for i, a := range tt.attempts {
				now = now.Add(a.advance)
				for j := range max(1, a.repeat) {
					user := a.user
					if base, ok := strings.CutSuffix(user, "#"); ok {
						user = fmt.Sprint(base, j)
					}
					err := basic(h, a.addr, user, a.pass)
					if got := outcome(err); got != a.want {
						t.Fatalf("attempt %d.%d (%s from %s): %s (%v), want %s", i, j, a.user, a.addr, got, err, a.want)
					}
					if rl, ok := IsRateLimited(err); ok && (rl.RetryAfter <= 0 || rl.RetryAfter > ratelimit.DefaultWindow) {
						t.Errorf("RetryAfter = %v", rl.RetryAfter)
					}
				}
			}
		})
	}
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if _, ok := IsChallenge(err); ok {
		return "401"
	}
	if rl, ok := IsRateLimited(err); ok {
		return "429 " + rl.Limit
	}
	return "error"
}

// TestHtpasswdCancelled: a request cancelled before its password is
// checked gets no verdict and does not count as a failure.
func TestHtpasswdCancelled(t *testing.T) {
	h, err := ParseHtpasswd("reg", []byte("alice:"+bcryptHash(t, "pw")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range ratelimit.DefaultAccountFailures + 1 {
		r := httptest.NewRequest(http.MethodGet, "/v2/", nil).WithContext(ctx)
		r.SetBasicAuth("alice", "wrong")
		_, err := h.CheckAccess(ctx, r, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: err = %v, want context.Canceled", i, err)
		}
	}
	if err := basic(h, "192.0.2.1:1", "alice", "pw"); err != nil {
		t.Fatalf("after cancelled attempts: %v", err)
	}
}

func TestRateLimitedRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		wait time.Duration
		want int
	}{
		{0, 1},
		{time.Millisecond, 1},
		{time.Second, 1},
		{time.Second + time.Millisecond, 2},
		{30 * time.Second, 30},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.wait), func(t *testing.T) {
			if got := (&RateLimited{RetryAfter: tt.wait}).RetryAfterSeconds(); got != tt.want {
				t.Errorf("RetryAfterSeconds() = %d, want %d", got, tt.want)
			}
		})
	}
}
