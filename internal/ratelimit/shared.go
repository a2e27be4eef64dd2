package ratelimit

import (
	"context"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Defaults for SharedOptions.
const (
	// DefaultSharedTimeout bounds one Redis call made for a login: a slow
	// Redis costs an attempt at most this before the local limiter decides.
	DefaultSharedTimeout = 200 * time.Millisecond
	// DefaultRetryInterval is how often an unreachable Redis is tried
	// again (by one login; the others meanwhile use the local limiter).
	DefaultRetryInterval = time.Second
	// remindEvery is how often a still-unreachable Redis is logged again.
	remindEvery = time.Minute
	// SharedKeyPrefix starts every key the shared limits write. The
	// bucket's name (account, ip) and the hex SHA-256 of the caller's key
	// follow: account names and addresses are never stored as they are.
	SharedKeyPrefix = "gatehouse::auth::ratelimit::v1::"
)

// reserveScript and releaseScript run Reserve's and Release's token
// bucket arithmetic inside Redis, on Redis's clock, so that replicas
// share one bucket per key and concurrent attempts cannot together
// exceed it.
var (
	//go:embed reserve.lua
	reserveLua    string
	reserveScript = goredis.NewScript(reserveLua)
	//go:embed release.lua
	releaseLua    string
	releaseScript = goredis.NewScript(releaseLua)
)

// SharedOptions configures a Shared.
type SharedOptions struct {
	// Client is the connection: one address makes a plain client, several
	// a cluster client. ContextTimeoutEnabled is forced on.
	Client goredis.UniversalOptions
	// Timeout bounds each Redis call; 0: DefaultSharedTimeout.
	Timeout time.Duration
	// RetryInterval is how long an unreachable Redis is left alone before
	// it is tried again; 0: DefaultRetryInterval.
	RetryInterval time.Duration
	// Logger receives the changes of mode; nil: none. It never sees the
	// password.
	Logger *slog.Logger
}

// Shared keeps the buckets of Limiters in Redis, so that processes using
// the same Redis share their failed-login limits. Limiters join it with
// Share. When Redis fails or is slow, the Limiters fall back to their own
// in-process buckets (each process limits alone) and go back to Redis as
// soon as it answers again; no attempt ever fails because of Redis.
// A call that timed out may still run in Redis later (a stalled Redis
// works through what it was sent when it wakes up): an outage can count an
// attempt twice, in Redis and locally, never not at all.
//
// Create it with NewShared, release it with Close. It is safe for
// concurrent use.
type Shared struct {
	client  goredis.UniversalClient
	timeout time.Duration
	retry   time.Duration
	log     *slog.Logger
	now     func() time.Time

	up      atomic.Bool
	nextTry atomic.Int64 // unix nanoseconds: when a down Redis is tried again

	mu       sync.Mutex
	lastWarn time.Time
}

// NewShared returns a Shared on the Redis opts.Client describes and pings
// it once (bounded by the timeout). An unreachable Redis is not an error:
// the Limiters start local and try Redis again later.
func NewShared(ctx context.Context, opts SharedOptions) *Shared {
	co := opts.Client
	co.ContextTimeoutEnabled = true
	s := &Shared{
		timeout: opts.Timeout,
		retry:   opts.RetryInterval,
		log:     opts.Logger,
		now:     time.Now,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultSharedTimeout
	}
	if s.retry <= 0 {
		s.retry = DefaultRetryInterval
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if co.DialTimeout <= 0 {
		co.DialTimeout = s.timeout
	}
	if co.ReadTimeout <= 0 {
		co.ReadTimeout = s.timeout
	}
	if co.WriteTimeout <= 0 {
		co.WriteTimeout = s.timeout
	}
	co.PoolTimeout = s.timeout
	if co.MaxRetries == 0 {
		// The timeout bounds the call; a retry inside it would only wait
		// on the same Redis.
		co.MaxRetries = -1
	}
	quietOnce.Do(func() { goredis.SetLogger(debugLogger{s.log}) })
	s.client = goredis.NewUniversalClient(&co)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	// Assumed up until the ping says otherwise, so that an unreachable
	// Redis at start is logged as an outage.
	s.up.Store(true)
	if err := s.client.Ping(ctx).Err(); err != nil {
		s.down(err)
	}
	return s
}

// quietOnce routes go-redis's own log lines (one per failed dial) to the
// first Shared's logger at debug level, unless something else in the
// process has done so; Shared logs Redis's state itself.
var quietOnce sync.Once

type debugLogger struct{ log *slog.Logger }

func (l debugLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// Shared reports whether the limits are shared through Redis now (false:
// Redis was unreachable at the last attempt, each process limits alone).
// A nil *Shared is never shared.
func (s *Shared) Shared() bool { return s != nil && s.up.Load() }

// Close closes the connection to Redis.
func (s *Shared) Close() error {
	if s == nil {
		return nil
	}
	return s.client.Close()
}

// usable reports whether a call should go to Redis: it is up, or it is
// down and this caller is the one that tries it again.
func (s *Shared) usable() bool {
	if s.up.Load() {
		return true
	}
	now := s.now().UnixNano()
	next := s.nextTry.Load()
	return now >= next && s.nextTry.CompareAndSwap(next, now+int64(s.retry))
}

// down records a failed call: the Limiters use their own buckets until
// Redis answers again. The first failure is logged, then at most one a
// minute while Redis stays down.
func (s *Shared) down(err error) {
	s.nextTry.Store(s.now().Add(s.retry).UnixNano())
	was := s.up.Swap(false)
	s.mu.Lock()
	now := s.now()
	remind := !was && now.Sub(s.lastWarn) >= remindEvery
	if was || remind {
		s.lastWarn = now
	}
	s.mu.Unlock()
	switch {
	case was:
		s.log.Warn("failed-login limits: redis unreachable, this process limits alone until it answers again", "error", err)
	case remind:
		s.log.Warn("failed-login limits: redis still unreachable, this process limits alone", "error", err)
	}
}

// answered records a successful call.
func (s *Shared) answered() {
	if !s.up.Swap(true) {
		s.log.Info("failed-login limits: redis answers again, limits are shared")
	}
}

// call runs script on key with args, bounded by the timeout and not by
// the caller's cancellation (an attempt whose client went away must not
// pass for a Redis outage).
func (s *Shared) call(ctx context.Context, script *goredis.Script, key string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	n, err := script.Run(ctx, s.client, []string{key}, args...).Int64()
	if err != nil {
		s.down(err)
		return 0, err
	}
	s.answered()
	return n, nil
}

// errNoShared is returned by the shared operations of a Limiter that has
// no Shared or whose Shared is down.
var errNoShared = errors.New("not shared")

// sharedKey is the Redis key of bucket key (a bucketKey) of l.
func (l *Limiter) sharedKey(key string) string {
	return SharedKeyPrefix + l.name + "::" + hex.EncodeToString([]byte(key))
}

// sharedArgs are the bucket's parameters as the scripts take them:
// capacity, tokens per millisecond, lifetime of an idle key in
// milliseconds (the time a bucket takes to fill from empty).
func (l *Limiter) sharedArgs() []any {
	return []any{
		strconv.FormatFloat(l.burst, 'g', -1, 64),
		strconv.FormatFloat(l.rate/1000, 'g', -1, 64),
		strconv.FormatInt(max(int64(l.window/time.Millisecond), 1), 10),
	}
}

// reserveShared takes a token from key's bucket in Redis. It returns
// errNoShared or Redis's error when the local bucket must decide.
func (l *Limiter) reserveShared(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	s := l.shared
	if s == nil || !s.usable() {
		return false, 0, errNoShared
	}
	wait, err := s.call(ctx, reserveScript, l.sharedKey(key), l.sharedArgs()...)
	if err != nil {
		return false, 0, err
	}
	if wait > 0 {
		return false, time.Duration(wait) * time.Millisecond, nil
	}
	return true, 0, nil
}

// releaseShared gives a token taken in Redis back. When Redis cannot be
// reached the token stays taken until the bucket refills: an outage may
// count a success as a failure, never the other way round.
func (l *Limiter) releaseShared(key string) {
	_, _ = l.shared.call(context.Background(), releaseScript, l.sharedKey(key), l.sharedArgs()...)
}
