//go:build integration

package redis

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	rediscache "github.com/gatehouse-registry/gatehouse/internal/cache/redis"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestLinkClaims: the claim protocol on a real Redis. A fill needs the
// claim its lookup got; a clear or a flush between the two voids it.
func TestLinkClaims(t *testing.T) {
	ctx := context.Background()
	r := testenv.StartRedis(t)
	c := newCache(t, r, "")
	l := cache.Link{Repo: "team/app", Kind: cache.TagLink, Name: "v1"}
	d1, d2 := digest.FromString("one"), digest.FromString("two")

	_, claim, ok := c.LookupLink(ctx, l)
	if ok || claim == "" {
		t.Fatalf("first lookup: hit %t, claim %q; want a miss with a claim", ok, claim)
	}
	if ttl := r.Client().PTTL(ctx, "gatehouse::v1::repository::team/app::tags::v1").Val(); ttl <= 0 || ttl > 10*time.Second {
		t.Errorf("claim-only key TTL %s, want in (0, 10s]", ttl)
	}
	if _, again, _ := c.LookupLink(ctx, l); again != claim {
		t.Errorf("a second lookup got claim %q, want the pending %q", again, claim)
	}
	c.FillLink(ctx, l, claim, d1)
	if got, _, ok := c.LookupLink(ctx, l); !ok || got != d1 {
		t.Fatalf("after the fill: %s, %t; want %s", got, ok, d1)
	}
	if keys := r.Keys("gatehouse::v1::repository::team/app::tags::v1"); len(keys) != 1 {
		t.Errorf("tag key: %q", r.Keys("gatehouse::*"))
	}
	ttl := r.Client().PTTL(ctx, "gatehouse::v1::repository::team/app::tags::v1").Val()
	if ttl <= 0 || ttl > rediscache.DefaultLinkTTL {
		t.Errorf("entry TTL %s, want in (0, %s]", ttl, rediscache.DefaultLinkTTL)
	}

	// A writer clears between a reader's lookup and its fill.
	c.ClearLink(ctx, l)
	_, claim, _ = c.LookupLink(ctx, l)
	c.ClearLink(ctx, l)
	c.FillLink(ctx, l, claim, d1)
	if got, _, ok := c.LookupLink(ctx, l); ok {
		t.Errorf("a fill claimed before a clear was kept: %s", got)
	}

	// Cleared, then claimed again by another reader, before the fill.
	c.ClearLink(ctx, l)
	_, claim, _ = c.LookupLink(ctx, l)
	c.ClearLink(ctx, l)
	_, other, _ := c.LookupLink(ctx, l)
	if claim == "" || other == claim || other == "" {
		t.Fatalf("claim after a clear: %q (before: %q)", other, claim)
	}
	c.FillLink(ctx, l, claim, d1)
	if got, _, ok := c.LookupLink(ctx, l); ok {
		t.Errorf("a fill with a voided claim was kept beside a new claim: %s", got)
	}
	c.FillLink(ctx, l, other, d2)
	if got, _, ok := c.LookupLink(ctx, l); !ok || got != d2 {
		t.Errorf("the new claim's fill: %s, %t; want %s", got, ok, d2)
	}

	// Redis flushed between them.
	c.ClearLink(ctx, l)
	_, claim, _ = c.LookupLink(ctx, l)
	r.FlushAll()
	c.FillLink(ctx, l, claim, d1)
	if got, _, ok := c.LookupLink(ctx, l); ok {
		t.Errorf("a fill claimed before a flush was kept: %s", got)
	}

	// A revision entry holds only its own digest; a tag's and a
	// revision's entries for one name are different keys.
	rev := cache.Link{Repo: "team/app", Kind: cache.RevisionLink, Name: d2.String()}
	_, claim, _ = c.LookupLink(ctx, rev)
	c.FillLink(ctx, rev, claim, d1)
	if got, _, ok := c.LookupLink(ctx, rev); ok {
		t.Errorf("a revision entry naming another digest was a hit: %s", got)
	}
	tagNamedLikeDigest := cache.Link{Repo: "team/app", Kind: cache.TagLink, Name: d2.String()}
	c.ClearLink(ctx, rev)
	_, claim, _ = c.LookupLink(ctx, rev)
	c.FillLink(ctx, rev, claim, d2)
	if _, _, ok := c.LookupLink(ctx, tagNamedLikeDigest); ok {
		t.Error("a revision entry answered a tag lookup")
	}
	if _, _, ok := c.LookupLink(ctx, cache.Link{Repo: "team/other", Kind: cache.RevisionLink, Name: d2.String()}); ok {
		t.Error("a revision entry of team/app answered for team/other")
	}
}

// replicas returns two registries over one in-memory storage, each with
// its own client of one Redis, and the manifest they share.
func replicas(t *testing.T, r *testenv.Redis) (a, b *storage.Repository, ca, cb *rediscache.Cache) {
	t.Helper()
	d := inmemory.New()
	ca, cb = newCache(t, r, ""), newCache(t, r, "")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go ca.Run(ctx)
	go cb.Run(ctx)
	var err error
	if a, err = storage.New(d, storage.Options{Cache: ca, Delete: true}).Repository("team/app"); err != nil {
		t.Fatal(err)
	}
	if b, err = storage.New(d, storage.Options{Cache: cb, Delete: true}).Repository("team/app"); err != nil {
		t.Fatal(err)
	}
	return a, b, ca, cb
}

// putManifest stores a small manifest through r (as a pull-through cache
// does, without its blobs) under tag, and returns its digest.
func putManifest(t *testing.T, r *storage.Repository, tag, seed string) digest.Digest {
	t.Helper()
	cfg := v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromString(seed), Size: int64(len(seed))}
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: cfg, Layers: []v1.Descriptor{}}
	m.SchemaVersion = 2
	payload, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(payload)
	if err := r.PutCachedManifest(context.Background(), tag, v1.MediaTypeImageManifest, payload, dg); err != nil {
		t.Fatal(err)
	}
	return dg
}

func serves(t *testing.T, r *storage.Repository, ref string, want digest.Digest) {
	t.Helper()
	_, _, got, err := r.GetManifest(context.Background(), ref)
	if err != nil || got != want {
		t.Fatalf("GET %s = %s, %v; want %s", ref, got, err, want)
	}
}

func unknown(t *testing.T, r *storage.Repository, ref string) {
	t.Helper()
	_, _, got, err := r.GetManifest(context.Background(), ref)
	if !errors.Is(err, storage.ErrManifestUnknown) {
		t.Fatalf("GET %s = %s, %v; want manifest unknown", ref, got, err)
	}
}

// TestManifestLinksAcrossReplicas: two registries sharing one storage and
// one Redis, as replicas do. A tag moved or deleted, or a manifest
// deleted, through B is seen by A at its next request, although A had the
// links cached in Redis and the payloads in memory.
func TestManifestLinksAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	r := testenv.StartRedis(t)
	a, b, _, _ := replicas(t, r)
	one := putManifest(t, b, "v1", "one")
	two := putManifest(t, b, "v2", "two")
	warm := func(ref string, want digest.Digest) {
		t.Helper()
		serves(t, a, ref, want)
		serves(t, b, ref, want)
	}

	warm("v1", one)
	for _, k := range []string{"tags::v1", "revisions::" + one.String()} {
		if v := r.Client().HGet(ctx, "gatehouse::v1::repository::team/app::"+k, "target").Val(); v != one.String() {
			t.Fatalf("%s after a GET by tag: target %q, want %s", k, v, one)
		}
	}
	if err := b.TagDigest(ctx, "v1", two); err != nil {
		t.Fatal(err)
	}
	serves(t, a, "v1", two)
	warm("v1", two)
	if err := b.DeleteTag(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	unknown(t, a, "v1")

	warm("v2", two)
	warm(two.String(), two)
	if err := b.DeleteManifest(ctx, two); err != nil {
		t.Fatal(err)
	}
	unknown(t, a, two.String())
	unknown(t, a, "v2")

	// Flushed: a cold cache, nothing else.
	three := putManifest(t, b, "v3", "three")
	warm("v3", three)
	r.FlushAll()
	serves(t, a, "v3", three)
	serves(t, a, one.String(), one)
}

// TestManifestLinksRedisDown: with Redis stopped, manifests are served
// from storage, and what B deletes meanwhile is not served by A, neither
// while Redis is down nor once it is back (B's invalidations are applied
// before B uses Redis again; the restarted Redis is empty anyway). With
// Redis paused (its data kept), B's delete waits in B's pending
// invalidations and is applied when Redis answers again.
func TestManifestLinksRedisDown(t *testing.T) {
	ctx := context.Background()
	r := testenv.StartRedis(t)
	a, b, ca, cb := replicas(t, r)
	one := putManifest(t, b, "v1", "one")
	two := putManifest(t, b, "v2", "two")
	serves(t, a, "v1", one)
	serves(t, a, "v2", two)

	r.Stop()
	serves(t, a, "v1", one)
	if err := b.DeleteTag(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	unknown(t, a, "v1")
	serves(t, a, one.String(), one)
	r.Start()
	testenv.Eventually(t, 10*time.Second, "both caches to use redis again", func() bool { return ca.Up() && cb.Up() })
	unknown(t, a, "v1")
	serves(t, a, "v2", two) // fills again
	serves(t, a, "v2", two)

	r.Pause()
	// B's delete cannot reach Redis: it fails over to pending.
	if err := b.DeleteManifest(ctx, two); err != nil {
		t.Fatal(err)
	}
	if cb.Up() || cb.Pending() == 0 {
		t.Fatalf("B after a delete with redis paused: up %t, %d pending", cb.Up(), cb.Pending())
	}
	r.Resume()
	testenv.Eventually(t, 10*time.Second, "B to apply its invalidations", func() bool { return cb.Up() && cb.Pending() == 0 })
	testenv.Eventually(t, 10*time.Second, "A to use redis again", ca.Up)
	unknown(t, a, "v2")
	unknown(t, a, two.String())
	// A's lookups left a claim; no target.
	if v := r.Client().HGet(ctx, "gatehouse::v1::repository::team/app::revisions::"+two.String(), "target").Val(); v != "" {
		t.Errorf("revision entry of the deleted manifest still in Redis: %q", v)
	}
}
