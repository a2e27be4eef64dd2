package token

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// Limits of the verified-signature cache: a registry under load sees the
// same few tokens thousands of times a second, and the signature check (an
// RSA or ECDSA verification, plus an x5c chain verification) is most of the
// cost of a small request.
const (
	sigCacheSize = 4096
	sigCacheTTL  = time.Minute
)

// sigCache remembers the claims of tokens whose signing key, signature,
// issuer and audience were verified, keyed by the SHA-256 of the whole
// compact token, so that only the exact bytes that passed are accepted
// again. exp and nbf are still checked on every use, and every use gets its
// own copy of the claims. An entry lives at most
// sigCacheTTL and never past the NotAfter of a certificate in the token's
// x5c chain. A Verifier is built for one set of trust anchors, so a change
// of rootcertbundle or JWKS (a new Verifier) starts with an empty cache.
type sigCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]sigEntry
}

type sigEntry struct {
	claims Claims
	until  time.Time
}

func sigKey(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// get returns a copy of the verified claims of the token with this key, if
// any.
func (c *sigCache) get(key [sha256.Size]byte, now time.Time) (*Claims, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return cloneClaims(&e.claims), true
}

func cloneClaims(c *Claims) *Claims {
	out := *c
	if c.Access != nil {
		out.Access = make([]ResourceActions, len(c.Access))
		for i, ra := range c.Access {
			ra.Actions = slices.Clone(ra.Actions)
			out.Access[i] = ra
		}
	}
	return &out
}

// put remembers a copy of verified claims until the earlier of now+sigCacheTTL
// and notAfter (ignored when zero). When the cache is full, expired entries
// go first, and everything if none has expired.
func (c *sigCache) put(key [sha256.Size]byte, claims *Claims, now, notAfter time.Time) {
	until := now.Add(sigCacheTTL)
	if !notAfter.IsZero() && notAfter.Before(until) {
		until = notAfter
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= sigCacheSize {
		c.evict(now)
	}
	c.entries[key] = sigEntry{claims: *cloneClaims(claims), until: until}
}

func (c *sigCache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, k)
		}
	}
	if c.entries == nil || len(c.entries) >= sigCacheSize {
		c.entries = make(map[[sha256.Size]byte]sigEntry)
	}
}

// len returns the number of entries, for tests.
func (c *sigCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// reset empties the cache.
func (c *sigCache) reset() {
	c.mu.Lock()
	c.entries = nil
	c.mu.Unlock()
}
