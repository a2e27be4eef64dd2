//go:build integration

// Package redis tests the Redis blob descriptor cache against a real
// redis-server: the cache on its own (scoping, invalidation, a stalled or
// flushed Redis), and `gatehouse registry serve` with
// storage.cache.blobdescriptor: redis pushed to and pulled from with crane
// while Redis is stopped, restarted and flushed.
package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	rediscache "github.com/gatehouse-registry/gatehouse/internal/cache/redis"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/opencontainers/go-digest"
)

func newCache(t *testing.T, r *testenv.Redis, password string) *rediscache.Cache {
	t.Helper()
	c := rediscache.New(context.Background(), rediscache.Options{
		Client: goredis.UniversalOptions{Addrs: []string{r.Addr}, Password: password,
			DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond},
		ProbeInterval: 50 * time.Millisecond,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func stat(t *testing.T, c *rediscache.Cache, repo string, d digest.Digest) (cache.Descriptor, bool) {
	t.Helper()
	desc, err := c.Stat(context.Background(), repo, d)
	if err != nil && !errors.Is(err, cache.ErrCacheMiss) {
		t.Fatalf("Stat(%q): %v", repo, err)
	}
	return desc, err == nil
}

func set(t *testing.T, c *rediscache.Cache, repo string, d digest.Digest, size int64) {
	t.Helper()
	if err := c.Set(context.Background(), repo, d, cache.Descriptor{Digest: d, Size: size, MediaType: "application/octet-stream"}); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

func clear(t *testing.T, c *rediscache.Cache, repo string, d digest.Digest) {
	t.Helper()
	if err := c.Clear(context.Background(), repo, d); err != nil {
		t.Fatalf("Clear: %v", err)
	}
}

// TestCacheScopingAndInvalidation: an entry set for repository a is found
// in a and in the global scope, never in b; clearing a's entry leaves the
// global one; clearing the global one hides the blob from every
// repository; entries expire.
func TestCacheScopingAndInvalidation(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newCache(t, r, "")
	if !c.Up() {
		t.Fatal("cache not up with redis running")
	}
	d := digest.FromString("layer")
	set(t, c, "team/a", d, 42)
	if desc, ok := stat(t, c, "team/a", d); !ok || desc.Size != 42 || desc.Digest != d {
		t.Errorf("team/a: %+v, %v; want a hit of size 42", desc, ok)
	}
	if _, ok := stat(t, c, "", d); !ok {
		t.Error("global scope: miss after a repository-scoped Set")
	}
	if _, ok := stat(t, c, "team/b", d); ok {
		t.Error("team/b: hit for a blob cached only for team/a")
	}
	keys := r.Keys(rediscache.KeyPrefix + "*")
	if len(keys) != 2 {
		t.Errorf("keys %q, want the global entry and team/a's", keys)
	}
	for _, k := range keys {
		ttl, err := r.Client().TTL(context.Background(), k).Result()
		if err != nil || ttl <= 0 || ttl > rediscache.DefaultTTL {
			t.Errorf("TTL of %s = %v, %v; want (0, %v]", k, ttl, err, rediscache.DefaultTTL)
		}
	}

	clear(t, c, "team/a", d)
	if _, ok := stat(t, c, "team/a", d); ok {
		t.Error("team/a: hit after its entry was cleared")
	}
	if _, ok := stat(t, c, "", d); !ok {
		t.Error("global: miss after only team/a's entry was cleared")
	}

	set(t, c, "team/a", d, 42)
	set(t, c, "team/c", d, 42)
	clear(t, c, "", d)
	for _, repo := range []string{"", "team/a", "team/c"} {
		if _, ok := stat(t, c, repo, d); ok {
			t.Errorf("%q: hit after the global entry was cleared", repo)
		}
	}

	// A foreign or damaged entry is a miss, not an error.
	if err := r.Client().HSet(context.Background(), rediscache.KeyPrefix+"blobs::{"+d.String()+"}", "digest", d.String(), "size", "lots").Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := stat(t, c, "", d); ok {
		t.Error("hit on an entry with a malformed size")
	}
	if err := r.Client().Set(context.Background(), rediscache.KeyPrefix+"blobs::{"+d.String()+"}", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := stat(t, c, "team/a", d); ok {
		t.Error("hit on an entry that is not a hash")
	}
	if !c.Up() {
		t.Error("a foreign value under the prefix took the cache down")
	}
	clear(t, c, "", d)

	// FLUSHALL: misses, and the cache fills again.
	set(t, c, "team/a", d, 42)
	r.FlushAll()
	if _, ok := stat(t, c, "team/a", d); ok {
		t.Error("hit after FLUSHALL")
	}
	set(t, c, "team/a", d, 42)
	if _, ok := stat(t, c, "team/a", d); !ok {
		t.Error("miss after setting again after FLUSHALL")
	}
}

// TestCacheStalledRedis: a Redis that stops answering (SIGSTOP) costs a
// call at most the operation timeout, after which calls do not wait for it
// at all; an invalidation made meanwhile is applied when it answers again,
// before anything is read from it.
func TestCacheStalledRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newCache(t, r, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	d := digest.FromString("layer")
	set(t, c, "team/a", d, 7)
	if _, ok := stat(t, c, "team/a", d); !ok {
		t.Fatal("miss right after Set")
	}

	r.Pause()
	start := time.Now()
	if _, ok := stat(t, c, "team/a", d); ok {
		t.Error("hit from a stalled redis")
	}
	// dial + read + write timeouts, plus scheduling slack.
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Stat against a stalled redis took %v", el)
	}
	if c.Up() {
		t.Error("cache still up after a timeout")
	}
	start = time.Now()
	for range 100 {
		stat(t, c, "team/a", d)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("100 Stats while redis is known to be down took %v; they must not wait for it", el)
	}
	// The link is removed while Redis cannot hear about it.
	clear(t, c, "team/a", d)
	if c.Pending() != 1 {
		t.Errorf("pending invalidations = %d, want 1", c.Pending())
	}

	r.Resume()
	testenv.Eventually(t, 10*time.Second, "the cache to resume after redis answers again", c.Up)
	if c.Pending() != 0 {
		t.Errorf("pending invalidations = %d after recovery, want 0", c.Pending())
	}
	if _, ok := stat(t, c, "team/a", d); ok {
		t.Error("the entry cleared while redis was stalled is served after it came back")
	}
	if n := len(r.Keys(rediscache.KeyPrefix + "repository::*")); n != 0 {
		t.Errorf("%d repository entries left in redis, want 0", n)
	}
	if _, ok := stat(t, c, "", d); !ok {
		t.Error("global entry lost: only team/a's was cleared")
	}
}

// TestCacheRestartedRedis: Redis stopped and started again (empty) on the
// same port: the cache notices, misses meanwhile, and resumes by itself.
func TestCacheRestartedRedis(t *testing.T) {
	r := testenv.StartRedis(t, testenv.WithRedisPassword("cache-test-pw"))
	c := newCache(t, r, "cache-test-pw")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	d := digest.FromString("layer")
	set(t, c, "team/a", d, 7)

	r.Stop()
	if _, ok := stat(t, c, "team/a", d); ok {
		t.Error("hit with redis stopped")
	}
	testenv.Eventually(t, 5*time.Second, "the cache to notice redis is down", func() bool { return !c.Up() })
	set(t, c, "team/a", d, 7) // skipped while down, without error

	r.Start()
	testenv.Eventually(t, 10*time.Second, "the cache to resume after redis restarted", c.Up)
	set(t, c, "team/a", d, 7)
	if _, ok := stat(t, c, "team/a", d); !ok {
		t.Error("miss after redis came back and the entry was set again")
	}

	// A wrong password is "unreachable", not a crash.
	bad := newCache(t, r, "wrong")
	if bad.Up() {
		t.Error("cache up with a wrong password")
	}
	if _, ok := stat(t, bad, "team/a", d); ok {
		t.Error("hit with a wrong password")
	}
}
