package authserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// Token cache defaults and limits.
const (
	// DefaultTokenCacheTTL is how long an issued access token may be
	// handed out again to an identical request.
	DefaultTokenCacheTTL = time.Minute
	// DefaultTokenCacheEntries bounds the token cache.
	DefaultTokenCacheEntries = 4096
	// tokenReuseFraction is the most of a token's lifetime that may have
	// passed when it is handed out again: a reused token always has at
	// least 90% of token.expiration left.
	tokenReuseFraction = 10
)

// tokenCache remembers signed access tokens for a short while, so that
// identical token requests (a fleet of CI runners pulling the same image
// with the same robot or anonymous login) share one signature instead of
// paying for one each: about 1.15 ms of CPU for RSA-2048.
//
// The key is computed after authentication and authorization, from what
// decides the token's content and from who was let in: the authenticator,
// the account as it spells it, the account's labels, the account's
// credential version where the authenticator can tell it (static users:
// the bcrypt hash), the service, and the granted access. The password is
// never part of it. The key is an HMAC under a secret drawn when the cache
// is made, so nothing in memory identifies a credential outside the
// process.
//
// A token is handed out again only while at least 90% of its lifetime is
// left and for at most the TTL after it was signed. The cache belongs to a
// Chain: a reload starts an empty one. A nil *tokenCache caches nothing.
type tokenCache struct {
	// minLeft is the least lifetime a token must have left to be reused.
	minLeft time.Duration
	max     int
	macs    sync.Pool // of hash.Hash keyed with the cache's secret

	mu    sync.Mutex
	items map[tokenKey]cachedToken
}

type tokenKey [sha256.Size]byte

// cachedToken is a signed token and the times its response reports.
type cachedToken struct {
	jwt    string
	issued time.Time // the original issue time (issued_at)
	expiry time.Time // the exp claim
}

// newTokenCache returns a cache reusing tokens of lifetime for at most ttl
// (and never past 10% of lifetime), holding at most maxEntries (the
// default when <= 0). It returns nil, caching nothing, when ttl <= 0 or
// the reuse window would be under a second.
func newTokenCache(ttl, lifetime time.Duration, maxEntries int) *tokenCache {
	window := min(ttl, lifetime/tokenReuseFraction)
	if window < time.Second {
		return nil
	}
	if maxEntries <= 0 {
		maxEntries = DefaultTokenCacheEntries
	}
	var sec [32]byte
	_, _ = rand.Read(sec[:]) // crypto/rand.Read never returns an error.
	c := &tokenCache{minLeft: lifetime - window, max: maxEntries, items: make(map[tokenKey]cachedToken)}
	c.macs.New = func() any { return hmac.New(sha256.New, sec[:]) }
	return c
}

// tokenIdentity is what a token cache key is made of. Every field is
// known only after the request has been authenticated and authorized.
type tokenIdentity struct {
	authenticator string
	account       string
	labels        authn.Labels
	// credential is the account's credential version, with hasCredential
	// telling an empty version from none reported.
	credential    secret.Secret
	hasCredential bool
	service       string
	access        []token.ResourceActions
}

// key is the HMAC of id's fields, each length-prefixed so that no two
// different identities share an encoding. Labels are written in key order;
// their values, like the access list, in the order given.
func (c *tokenCache) key(id *tokenIdentity) tokenKey {
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	var n [8]byte
	num := func(v int) {
		binary.BigEndian.PutUint64(n[:], uint64(v)) //nolint:gosec // v is a length or a count, never negative
		m.Write(n[:])
	}
	str := func(s string) {
		num(len(s))
		m.Write([]byte(s))
	}
	str("gatehouse token cache v1")
	str(id.authenticator)
	str(id.account)
	names := make([]string, 0, len(id.labels))
	for k := range id.labels {
		names = append(names, k)
	}
	slices.Sort(names)
	num(len(names))
	for _, k := range names {
		str(k)
		num(len(id.labels[k]))
		for _, v := range id.labels[k] {
			str(v)
		}
	}
	if id.hasCredential {
		num(1)
		str(id.credential.Reveal())
	} else {
		num(0)
	}
	str(id.service)
	num(len(id.access))
	for _, ra := range id.access {
		str(ra.Type)
		str(ra.Class)
		str(ra.Name)
		num(len(ra.Actions))
		for _, a := range ra.Actions {
			str(a)
		}
	}
	var k tokenKey
	m.Sum(k[:0])
	c.macs.Put(m)
	return k
}

// usable reports whether t may be handed out at now: it was issued no
// later than now (a clock stepped back finds nothing) and has at least
// minLeft of its lifetime left.
func (c *tokenCache) usable(t cachedToken, now time.Time) bool {
	return !now.Before(t.issued) && t.expiry.Sub(now) >= c.minLeft
}

// get returns the token stored under k if it may still be handed out.
func (c *tokenCache) get(k tokenKey, now time.Time) (cachedToken, bool) {
	if c == nil {
		return cachedToken{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.items[k]
	if !ok {
		return cachedToken{}, false
	}
	if !c.usable(t, now) {
		delete(c.items, k)
		return cachedToken{}, false
	}
	return t, true
}

// put stores t under k. When the cache is full it first drops the tokens
// that can no longer be handed out, then, if that was not enough, a tenth
// of the rest, so that a stream of distinct requests does not pay for a
// scan on every insert.
func (c *tokenCache) put(k tokenKey, t cachedToken, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.items[k]; !exists && len(c.items) >= c.max {
		for key, it := range c.items {
			if !c.usable(it, now) {
				delete(c.items, key)
			}
		}
		for key := range c.items {
			if len(c.items) < c.max-c.max/10 {
				break
			}
			delete(c.items, key)
		}
	}
	c.items[k] = t
}

// purge forgets every token.
func (c *tokenCache) purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.items)
	c.mu.Unlock()
}

// size returns the number of tokens held.
func (c *tokenCache) size() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
