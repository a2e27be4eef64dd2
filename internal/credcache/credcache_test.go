package credcache

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/google/go-cmp/cmp"
)

func TestCache(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := New(time.Minute, 0)
	c.SetClock(func() time.Time { return now })
	want := Entry{Labels: authn.Labels{"groups": {"dev"}}, Authenticator: "static"}
	c.Put("alice", "right", want)

	tests := []struct {
		name     string
		account  string
		password secret.Secret
		after    time.Duration
		hit      bool
	}{
		{"same credentials", "alice", "right", 0, true},
		{"wrong password", "alice", "wrong", 0, false},
		{"other account", "bob", "right", 0, false},
		{"no separator confusion", "alic", "eright", 0, false},
		{"just before expiry", "alice", "right", 59 * time.Second, true},
		{"expired", "alice", "right", time.Minute, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saved := now
			now = now.Add(tc.after)
			defer func() { now = saved }()
			got, ok := c.Get(tc.account, tc.password)
			if ok != tc.hit {
				t.Fatalf("hit = %v, want %v", ok, tc.hit)
			}
			if ok {
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("entry (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestCacheReturnsCopies(t *testing.T) {
	c := New(time.Minute, 0)
	c.Put("a", "p", Entry{Labels: authn.Labels{"g": {"x"}}})
	e, _ := c.Get("a", "p")
	e.Labels["g"][0] = "changed"
	e2, _ := c.Get("a", "p")
	if e2.Labels["g"][0] != "x" {
		t.Fatal("cached labels were modified through a returned copy")
	}
}

func TestCacheDisabledAndPurge(t *testing.T) {
	off := New(0, 0)
	off.Put("a", "p", Entry{})
	if _, ok := off.Get("a", "p"); ok {
		t.Fatal("disabled cache returned a hit")
	}
	c := New(time.Minute, 0)
	c.Put("a", "p", Entry{})
	c.Purge()
	if _, ok := c.Get("a", "p"); ok || c.Len() != 0 {
		t.Fatal("entry survived Purge")
	}
}

func TestCacheBounded(t *testing.T) {
	c := New(time.Minute, 50)
	for i := range 1000 {
		c.Put(fmt.Sprint("u", i), "p", Entry{})
	}
	if n := c.Len(); n > 50 {
		t.Fatalf("Len = %d, want <= 50", n)
	}
	if _, ok := c.Get("u999", "p"); !ok {
		t.Fatal("the newest entry is missing")
	}
}

func BenchmarkGet(b *testing.B) {
	c := New(time.Minute, 0)
	c.Put("alice", "correct horse", Entry{Labels: authn.Labels{"g": {"a", "b"}}})
	for b.Loop() {
		if _, ok := c.Get("alice", "correct horse"); !ok {
			b.Fatal("miss")
		}
	}
}

// TestCacheKeyUnambiguous: credentials that split the same bytes
// differently between account and password (NUL included) never share an
// entry.
func TestCacheKeyUnambiguous(t *testing.T) {
	c := New(time.Minute, 0)
	c.Put("ops\x00admin", "pw", Entry{Labels: authn.Labels{"groups": {"ops"}}, Authenticator: "ext"})
	tests := []struct {
		name     string
		account  string
		password secret.Secret
		hit      bool
	}{
		{"same credentials", "ops\x00admin", "pw", true},
		{"NUL moved into the password", "ops", "admin\x00pw", false},
		{"NUL moved into the account", "ops\x00admin\x00pw", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := c.Get(tc.account, tc.password); ok != tc.hit {
				t.Errorf("Get(%q, ...) hit = %v, want %v", tc.account, ok, tc.hit)
			}
		})
	}
}
