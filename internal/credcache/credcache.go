// Package credcache remembers recently verified credentials so that a
// client asking for tokens again and again does not pay for bcrypt or an
// LDAP round trip each time.
//
// Entries are keyed by HMAC-SHA256(per-process random secret, account ||
// 0x00 || password): neither the password nor a plain hash of it is kept,
// and the key is useless outside the process. Only successes are stored;
// a wrong password is never remembered, so it can never be mistaken for a
// right one. Entries expire after a TTL, the cache holds at most MaxEntries,
// and Purge empties it (on config reload).
package credcache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Defaults.
const (
	DefaultTTL        = 5 * time.Minute
	DefaultMaxEntries = 10_000
)

// Entry is what a successful authentication produced.
type Entry struct {
	// Account is the account's name as the authenticator spells it, which
	// may differ from the name the client typed (a directory matches
	// "UserA" to the entry of "usera"). Empty for the anonymous account.
	Account string
	// Labels are the account's labels.
	Labels authn.Labels
	// Authenticator is the Name of the authenticator that accepted.
	Authenticator string
}

type item struct {
	entry   Entry
	expires time.Time
}

type key [sha256.Size]byte

// Cache is a bounded, expiring map of verified credentials. A nil *Cache
// caches nothing. It is safe for concurrent use.
type Cache struct {
	ttl  time.Duration
	max  int
	now  func() time.Time
	macs sync.Pool // of hash.Hash keyed with the secret

	mu    sync.Mutex
	items map[key]item
}

// New returns a cache keeping entries for ttl, at most maxEntries of them
// (DefaultMaxEntries when <= 0). ttl <= 0 returns nil: caching disabled.
func New(ttl time.Duration, maxEntries int) *Cache {
	if ttl <= 0 {
		return nil
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	var sec [32]byte
	_, _ = rand.Read(sec[:]) // crypto/rand.Read never returns an error.
	c := &Cache{ttl: ttl, max: maxEntries, now: time.Now, items: make(map[key]item)}
	c.macs.New = func() any { return hmac.New(sha256.New, sec[:]) }
	return c
}

// SetClock replaces time.Now, for tests.
func (c *Cache) SetClock(now func() time.Time) {
	if c != nil {
		c.now = now
	}
}

// key is the HMAC of the account's length, the account and the password.
// The length prefix keeps the encoding unambiguous: accounts and passwords
// may both contain NUL, so a separator byte alone would let ("a\x00b", "c")
// and ("a", "b\x00c") share an entry.
func (c *Cache) key(account string, password secret.Secret) key {
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(account)))
	m.Write(n[:])
	m.Write([]byte(account))
	m.Write([]byte(password.Reveal()))
	var k key
	m.Sum(k[:0])
	c.macs.Put(m)
	return k
}

// Get returns the entry stored for these exact credentials, if it has not
// expired. The labels are a copy the caller may keep.
func (c *Cache) Get(account string, password secret.Secret) (Entry, bool) {
	if c == nil {
		return Entry{}, false
	}
	k := c.key(account, password)
	c.mu.Lock()
	it, ok := c.items[k]
	if ok && !c.now().Before(it.expires) {
		delete(c.items, k)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return Entry{}, false
	}
	e := it.entry
	e.Labels = e.Labels.Clone()
	return e, true
}

// Put remembers that these credentials were verified. Call it only after a
// successful authentication.
func (c *Cache) Put(account string, password secret.Secret, e Entry) {
	if c == nil {
		return
	}
	k := c.key(account, password)
	e.Labels = e.Labels.Clone()
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.items[k]; !exists && len(c.items) >= c.max {
		c.evict(now)
	}
	c.items[k] = item{entry: e, expires: now.Add(c.ttl)}
}

// evict drops expired entries, then arbitrary ones until there is room.
func (c *Cache) evict(now time.Time) {
	for k, it := range c.items {
		if !now.Before(it.expires) {
			delete(c.items, k)
		}
	}
	for k := range c.items {
		if len(c.items) < c.max {
			break
		}
		delete(c.items, k)
	}
}

// Purge forgets every entry.
func (c *Cache) Purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.items)
	c.mu.Unlock()
}

// Len returns the number of entries (expired ones included until evicted).
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
