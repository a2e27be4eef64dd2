// Package ratelimit limits failed login attempts with token buckets keyed
// by a string (an account name or a client IP), and holds the failed-login
// defaults the auth server and the registry's htpasswd mode share. Only
// failures take tokens;
// a request is refused while its bucket is empty. Memory is bounded: idle
// buckets (full again) are dropped, and at most MaxKeys are kept.
package ratelimit

import (
	"crypto/sha256"
	"math"
	"sync"
	"time"
)

// bucketKey is the map key for a caller's key: its SHA-256, so that a
// bucket costs the same few bytes whatever the key. Keys are account names
// from unauthenticated requests, up to the size of a request header or
// body; kept as they are, MaxKeys of them could hold gigabytes.
func bucketKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return string(sum[:])
}

// DefaultMaxKeys bounds the number of buckets a Limiter keeps.
const DefaultMaxKeys = 100_000

// Limiter allows limit failures per key within a window: a bucket of limit
// tokens, refilled continuously at limit per window.
// The zero value and a nil *Limiter allow everything. It is safe for
// concurrent use.
type Limiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// The failed-login limits used when the configuration sets none: per
// account and per client address, within DefaultWindow (also the window
// New uses when given none). authconfig fills them into server.rate_limit.
const (
	DefaultAccountFailures = 10
	DefaultIPFailures      = 50
	DefaultWindow          = 5 * time.Minute
)

// New returns a Limiter allowing limit failures per window (DefaultWindow
// when <= 0) per key, all of which may come at once. limit <= 0 returns
// nil, which allows everything. maxKeys <= 0 means DefaultMaxKeys.
func New(limit int, window time.Duration, maxKeys int) *Limiter {
	if limit <= 0 {
		return nil
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Limiter{
		rate:    float64(limit) / window.Seconds(),
		burst:   float64(limit),
		maxKeys: maxKeys,
		now:     time.Now,
		buckets: make(map[string]*bucket),
	}
}

// SetClock replaces time.Now, for tests.
func (l *Limiter) SetClock(now func() time.Time) {
	if l != nil {
		l.now = now
	}
}

// refill brings b up to date and reports whether it is full.
func (l *Limiter) refill(b *bucket, now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	return b.tokens >= l.burst
}

// Allow reports whether key may try again, and if not, how long until it
// may. It takes no token.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	key = bucketKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		return true, 0
	}
	if l.refill(b, l.now()) {
		delete(l.buckets, key)
		return true, 0
	}
	if b.tokens >= 1 {
		return true, 0
	}
	wait := time.Duration(math.Ceil((1-b.tokens)/l.rate*1000)) * time.Millisecond
	return false, wait
}

// Fail records one failure for key, taking a token from its bucket.
func (l *Limiter) Fail(key string) {
	if l == nil {
		return
	}
	key = bucketKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	} else {
		l.refill(b, now)
	}
	b.tokens = math.Max(0, b.tokens-1)
}

// evict drops full buckets; if none is full, it drops an arbitrary tenth
// of the buckets so memory stays bounded under a flood of new keys.
func (l *Limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if l.refill(b, now) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxKeys {
		return
	}
	n := l.maxKeys/10 + 1
	for k := range l.buckets {
		delete(l.buckets, k)
		if n--; n == 0 {
			break
		}
	}
}

// Len returns how many buckets are kept.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
