package token

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVerifyCachesSignatureNotClaims(t *testing.T) {
	key := testKey(t, "rsa")
	cert := testCert(t, "token", key, false, nil, nil)
	now := testNow
	v := testVerifier(t, VerifierOptions{RootCerts: []*x509.Certificate{cert}, Leeway: -1, Now: func() time.Time { return now }})
	s := mustSigner(t, key, []*x509.Certificate{cert}, SignerOptions{X5C: true, KeyID: KeyIDLibtrust})
	tok := mustSign(t, s, NewClaims("auth", "alice", "registry", now, 10*time.Second,
		[]ResourceActions{{Type: "repository", Name: "a/b", Actions: []string{"pull", "push"}}}))

	first, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := v.sigs.len(); n != 1 {
		t.Fatalf("cache holds %d entries after one verified token, want 1", n)
	}
	second, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("cached token refused: %v", err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("cached claims differ (-first +second):\n%s", diff)
	}
	t.Run("each use gets its own copy", func(t *testing.T) {
		second.Access[0].Actions[0] = "delete"
		second.Subject = "mallory"
		third, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, third); diff != "" {
			t.Errorf("a caller's change reached the cache (-want +got):\n%s", diff)
		}
	})

	t.Run("tampered signature of a cached token", func(t *testing.T) {
		bad := tok[:len(tok)-2] + flip(tok[len(tok)-2]) + tok[len(tok)-1:]
		if _, err := v.Verify(bad); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("tampered token: got %v, want a signature error", err)
		}
	})
	t.Run("expiry checked on a cache hit", func(t *testing.T) {
		now = testNow.Add(20 * time.Second) // past exp, within the cache's minute
		if _, ok := v.sigs.get(sigKey(tok), now); !ok {
			t.Fatal("entry gone before its minute: the test would not exercise a cache hit")
		}
		if _, err := v.Verify(tok); !errors.Is(err, ErrExpired) {
			t.Fatalf("expired cached token: got %v, want ErrExpired", err)
		}
	})
	t.Run("other verifier does not share the cache", func(t *testing.T) {
		other := testVerifier(t, VerifierOptions{RootCerts: []*x509.Certificate{testCert(t, "other", testKey(t, "p256"), false, nil, nil)}})
		if _, err := other.Verify(tok); !errors.Is(err, ErrUntrustedKey) {
			t.Fatalf("got %v, want ErrUntrustedKey", err)
		}
	})
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestSigCacheLifetime(t *testing.T) {
	t0 := testNow
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		at       time.Duration
		want     bool
	}{
		{"fresh", time.Time{}, time.Second, true},
		{"just before the TTL", time.Time{}, sigCacheTTL - time.Nanosecond, true},
		{"at the TTL", time.Time{}, sigCacheTTL, false},
		{"before the certificate ends", t0.Add(10 * time.Second), 9 * time.Second, true},
		{"after the certificate ends", t0.Add(10 * time.Second), 11 * time.Second, false},
		{"certificate already ended", t0.Add(-time.Second), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c sigCache
			k := sigKey("a.b.c")
			c.put(k, &Claims{Subject: "alice"}, t0, tc.notAfter)
			got, ok := c.get(k, t0.Add(tc.at))
			if ok != tc.want {
				t.Fatalf("hit %v, want %v", ok, tc.want)
			}
			if ok && got.Subject != "alice" {
				t.Fatalf("claims %+v", got)
			}
		})
	}
}

func TestVerifyCachedNotYetValid(t *testing.T) {
	key := testKey(t, "p256")
	cert := testCert(t, "token", key, false, nil, nil)
	now := testNow
	v := testVerifier(t, VerifierOptions{RootCerts: []*x509.Certificate{cert}, Leeway: -1, Now: func() time.Time { return now }})
	c := NewClaims("auth", "alice", "registry", now, time.Hour, nil)
	c.NotBefore = now.Add(10 * time.Second).Unix()
	tok := mustSign(t, mustSigner(t, key, []*x509.Certificate{cert}, SignerOptions{X5C: true}), c)
	if _, err := v.Verify(tok); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("got %v, want ErrNotYetValid", err)
	}
	now = now.Add(11 * time.Second)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("once valid: %v", err)
	}
	now = testNow // a clock stepping back is checked on a cache hit too
	if _, err := v.Verify(tok); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("cached, clock back: got %v, want ErrNotYetValid", err)
	}
}

func TestSigCacheBounded(t *testing.T) {
	var c sigCache
	for i := range 3 * sigCacheSize {
		c.put(sha256.Sum256(fmt.Appendf(nil, "%d", i)), &Claims{}, testNow, time.Time{})
		if n := c.len(); n > sigCacheSize {
			t.Fatalf("%d entries after %d puts, want at most %d", n, i+1, sigCacheSize)
		}
	}
	c.reset()
	if n := c.len(); n != 0 {
		t.Fatalf("%d entries after reset", n)
	}
}
