// Package ratelimit limits failed login attempts with token buckets keyed
// by a string (an account name or a client IP), and holds the failed-login
// defaults the auth server and the registry's htpasswd mode share.
//
// An attempt reserves a token before the password is checked and gives it
// back if the password was right, so only failures keep their tokens, and
// attempts running at the same time cannot together exceed the limit. A
// request is refused while its bucket is empty. Memory is bounded: idle
// buckets (full again) are dropped, and at most MaxKeys are kept.
//
// Limiters that join a Shared keep their buckets in Redis instead, so that
// several processes share one budget per key; see Shared.
package ratelimit

import (
	"context"
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
// tokens, refilled continuously at limit per window. Make one with New; a
// nil *Limiter allows everything. It is safe for concurrent use.
type Limiter struct {
	rate    float64 // tokens per second
	burst   float64
	window  time.Duration
	maxKeys int
	now     func() time.Time

	// shared, when not nil, holds the buckets while Redis answers; name
	// tells this Limiter's keys there from another's.
	shared *Shared
	name   string

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// The failed-login limits used when the configuration sets none: per
// account and per client address, within DefaultWindow (also the window
// New uses when given none). authconfig fills them into server.rate_limit;
// the registry's htpasswd mode, which has no such setting, uses them as
// they are.
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
		window:  window,
		maxKeys: maxKeys,
		now:     time.Now,
		buckets: make(map[string]*bucket),
	}
}

// Share makes l keep its buckets in s, under name (which must differ
// between the Limiters sharing s, and be the same in every process that
// should share them: "account", "ip"). The in-process buckets serve while
// s cannot reach Redis. Call it before l is used; on a nil *Limiter or
// with a nil s it does nothing.
func (l *Limiter) Share(s *Shared, name string) {
	if l != nil && s != nil {
		l.shared, l.name = s, name
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

// Reservation is one token taken by Reserve for an attempt whose outcome
// is not known yet. Keep it (do nothing) when the attempt failed; Release
// it when the attempt succeeded or was never judged. The zero Reservation
// holds nothing.
type Reservation struct {
	l      *Limiter
	key    string // bucketKey of the caller's key
	shared bool   // the token was taken in Redis
}

// Reserve takes a token from key's bucket for one attempt, before the
// attempt is checked. It returns ok=false, and how long until a token is
// back, when the bucket is empty; then nothing is taken. A nil *Limiter
// always reserves (an empty Reservation).
func (l *Limiter) Reserve(key string) (res Reservation, ok bool, retryAfter time.Duration) {
	return l.ReserveContext(context.Background(), key)
}

// ReserveContext is Reserve for a Limiter that may ask Redis (see Share):
// ctx carries the request's values; the Redis call is bounded by the
// Shared's timeout, not by ctx's cancellation. When Redis does not answer
// in time, the in-process bucket decides.
func (l *Limiter) ReserveContext(ctx context.Context, key string) (res Reservation, ok bool, retryAfter time.Duration) {
	if l == nil {
		return Reservation{}, true, 0
	}
	key = bucketKey(key)
	if ok, wait, err := l.reserveShared(ctx, key); err == nil {
		if !ok {
			return Reservation{}, false, wait
		}
		return Reservation{l: l, key: key, shared: true}, true, 0
	}
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
	if b.tokens < 1 {
		wait := time.Duration(math.Ceil((1-b.tokens)/l.rate*1000)) * time.Millisecond
		return Reservation{}, false, wait
	}
	b.tokens--
	return Reservation{l: l, key: key}, true, 0
}

// Release gives the token back: the attempt succeeded, or ended without a
// verdict on the password (a backend was down). Releasing twice, or
// releasing the zero Reservation, does nothing more.
func (r *Reservation) Release() {
	if r == nil || r.l == nil {
		return
	}
	l := r.l
	r.l = nil
	if r.shared {
		l.releaseShared(r.key)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[r.key]
	if !found {
		// Evicted meanwhile: a missing bucket is a full one.
		return
	}
	l.refill(b, l.now())
	b.tokens = math.Min(l.burst, b.tokens+1)
	if b.tokens >= l.burst {
		delete(l.buckets, r.key)
	}
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
