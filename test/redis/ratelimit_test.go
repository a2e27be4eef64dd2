//go:build integration

package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// sharedLimiter is a Limiter of limit per window keeping its buckets in r,
// as one auth-server replica has.
func sharedLimiter(t *testing.T, r *testenv.Redis, limit int, window time.Duration) (*ratelimit.Limiter, *ratelimit.Shared) {
	t.Helper()
	s := ratelimit.NewShared(context.Background(), ratelimit.SharedOptions{
		Client:        goredis.UniversalOptions{Addrs: []string{r.Addr}, Password: r.Password},
		Timeout:       100 * time.Millisecond,
		RetryInterval: 50 * time.Millisecond,
	})
	t.Cleanup(func() { _ = s.Close() })
	l := ratelimit.New(limit, window, 0)
	l.Share(s, "account")
	return l, s
}

func TestSharedLimiterScripts(t *testing.T) {
	r := testenv.StartRedis(t, testenv.WithRedisPassword("pw-for-the-test"))
	a, sa := sharedLimiter(t, r, 3, 30*time.Second)
	b, _ := sharedLimiter(t, r, 3, 30*time.Second)
	if !sa.Shared() {
		t.Fatal("Shared() = false with redis up")
	}
	ctx := context.Background()

	var held []ratelimit.Reservation
	for i, l := range []*ratelimit.Limiter{a, b, a} {
		res, ok, _ := l.ReserveContext(ctx, "alice")
		if !ok {
			t.Fatalf("reservation %d refused", i+1)
		}
		held = append(held, res)
	}
	// The bucket is shared: the fourth attempt is refused on either
	// limiter, with the time until a token is back (10 s per token).
	for _, l := range []*ratelimit.Limiter{a, b} {
		_, ok, wait := l.ReserveContext(ctx, "alice")
		if ok || wait <= 0 || wait > 10*time.Second {
			t.Fatalf("fourth reservation: ok=%v wait=%v, want refused with 0 < wait <= 10s", ok, wait)
		}
	}
	keys := r.Keys(ratelimit.SharedKeyPrefix + "*")
	if len(keys) != 1 {
		t.Fatalf("keys %q, want one", keys)
	}
	key := keys[0]
	ttl, err := r.Client().PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > 30*time.Second {
		t.Errorf("PTTL %s = %v, %v; want within the window", key, ttl, err)
	}
	// Refusals took nothing: the bucket holds what three attempts left.
	tokens := func() float64 {
		v, err := r.Client().HGet(ctx, key, "tokens").Result()
		if err != nil {
			t.Fatalf("HGET tokens: %v", err)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if got := tokens(); got < 0 || got >= 1 {
		t.Errorf("tokens after 3 reservations and 2 refusals = %v, want in [0, 1)", got)
	}
	// A success gives its token back, on the other limiter too.
	held[0].Release()
	if _, ok, _ := b.ReserveContext(ctx, "alice"); !ok {
		t.Fatal("no token after a release")
	}
	// Released tokens never overflow the bucket: once full it is deleted.
	for i := range held {
		held[i].Release()
		held[i].Release()
	}
	if got := tokens(); got < 1 || got > 3 {
		t.Errorf("tokens after the releases = %v, want in [1, 3]", got)
	}
	if _, ok, _ := a.ReserveContext(ctx, "bob"); !ok {
		t.Fatal("bob refused")
	}
	if n := len(r.Keys(ratelimit.SharedKeyPrefix + "*")); n != 2 {
		t.Errorf("%d keys, want 2 (alice, bob)", n)
	}
}

func TestSharedLimiterFallsBackWhileRedisStalls(t *testing.T) {
	r := testenv.StartRedis(t)
	l, s := sharedLimiter(t, r, 2, time.Minute)
	ctx := context.Background()
	if _, ok, _ := l.ReserveContext(ctx, "carol"); !ok || !s.Shared() {
		t.Fatalf("reserve with redis up: ok=%v shared=%v", ok, s.Shared())
	}

	r.Pause()
	// A stalled Redis costs at most the timeout; the local bucket (full:
	// it has not seen carol) decides, and limits on its own.
	start := time.Now()
	_, ok, _ := l.ReserveContext(ctx, "carol")
	if d := time.Since(start); d > time.Second {
		t.Errorf("reserve with redis stalled took %v", d)
	}
	if !ok || s.Shared() {
		t.Fatalf("reserve with redis stalled: ok=%v shared=%v, want ok, not shared", ok, s.Shared())
	}
	if _, ok, _ := l.ReserveContext(ctx, "carol"); !ok {
		t.Fatal("second local reservation refused")
	}
	if _, ok, wait := l.ReserveContext(ctx, "carol"); ok || wait <= 0 {
		t.Fatalf("third local reservation: ok=%v wait=%v, want refused", ok, wait)
	}

	r.Resume()
	testenv.Eventually(t, 10*time.Second, "the limiter using redis again", func() bool {
		l.ReserveContext(ctx, "dave")
		return s.Shared()
	})
	// Back on Redis (the reservation that timed out may have been counted
	// there too: Redis ran it when it woke up). A new key is counted in
	// Redis only: the third attempt is refused while the limiter stays
	// shared, though its own bucket has never seen erin.
	for i := range 2 {
		if _, ok, _ := l.ReserveContext(ctx, "erin"); !ok {
			t.Fatalf("erin reservation %d refused", i+1)
		}
	}
	if _, ok, wait := l.ReserveContext(ctx, "erin"); ok || wait <= 0 || !s.Shared() {
		t.Fatalf("third reservation for erin: ok=%v wait=%v shared=%v, want refused by redis", ok, wait, s.Shared())
	}
	if n := len(r.Keys(ratelimit.SharedKeyPrefix + "*")); n < 2 {
		t.Errorf("%d keys in redis, want those of carol, dave and erin", n)
	}
}
