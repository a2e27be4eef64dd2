package storage

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// readCountingDriver counts the reads a registry makes of its driver and can
// run a hook after a read of one path.
type readCountingDriver struct {
	driver.Driver
	reads atomic.Int64 // GetContent, Stat, Reader, List
	mu    sync.Mutex
	after map[string]func() // path -> hook run once after a GetContent of it
}

func (d *readCountingDriver) GetContent(ctx context.Context, p string) ([]byte, error) {
	d.reads.Add(1)
	b, err := d.Driver.GetContent(ctx, p)
	d.mu.Lock()
	hook := d.after[p]
	delete(d.after, p)
	d.mu.Unlock()
	if hook != nil {
		hook()
	}
	return b, err
}

func (d *readCountingDriver) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	d.reads.Add(1)
	return d.Driver.Stat(ctx, p)
}

func (d *readCountingDriver) List(ctx context.Context, p string) ([]string, error) {
	d.reads.Add(1)
	return d.Driver.List(ctx, p)
}

func (d *readCountingDriver) onRead(p string, hook func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.after == nil {
		d.after = make(map[string]func())
	}
	d.after[p] = hook
}

// sharedLinks is a cache.LinkCache with the claim protocol the Redis
// cache implements, shared by the registries of a test as Redis is by
// replicas: a lookup miss hands out the key's claim (creating one), a fill
// needs that claim, a clear drops the key and so voids its claims.
type sharedLinks struct {
	*cache.LRU
	mu      sync.Mutex
	entries map[cache.Link]*linkEntry
	next    int
	down    bool // every lookup misses without a claim, fills are dropped
}

type linkEntry struct {
	claim  string
	target digest.Digest
}

func newSharedLinks() *sharedLinks {
	return &sharedLinks{LRU: cache.NewLRU(100), entries: make(map[cache.Link]*linkEntry)}
}

func (c *sharedLinks) LookupLink(_ context.Context, l cache.Link) (digest.Digest, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return "", "", false
	}
	e := c.entries[l]
	if e == nil {
		c.next++
		e = &linkEntry{claim: strconv.Itoa(c.next)}
		c.entries[l] = e
	}
	if e.target != "" {
		return e.target, "", true
	}
	return "", e.claim, false
}

func (c *sharedLinks) FillLink(_ context.Context, l cache.Link, claim string, target digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[l]; !c.down && claim != "" && e != nil && e.claim == claim {
		e.target = target
	}
}

func (c *sharedLinks) ClearLink(_ context.Context, l cache.Link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, l)
}

func (c *sharedLinks) cached(l cache.Link) digest.Digest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[l]; e != nil {
		return e.target
	}
	return ""
}

func (c *sharedLinks) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = make(map[cache.Link]*linkEntry)
}

// readsOf returns how many driver reads fn made.
func readsOf(d *readCountingDriver, fn func()) int64 {
	before := d.reads.Load()
	fn()
	return d.reads.Load() - before
}

// TestManifestGetReads pins the storage reads of a manifest GET and HEAD
// (by tag, by digest) once the caches are warm: 3 and 2 with no cache,
// 2 and 1 with only the payload cache, none with the link cache too.
func TestManifestGetReads(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          func() Options
		byTag, byDgst int64
	}{
		{"no cache", func() Options { return Options{ManifestCacheBytes: -1} }, 3, 2},
		{"payload cache", func() Options { return Options{Cache: cache.NewLRU(100)} }, 2, 1},
		{"payload and link cache", func() Options { return Options{Cache: newSharedLinks()} }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			d := &readCountingDriver{Driver: drivers(t)["inmemory"](t)}
			reg := New(d, tc.opts())
			r := mustRepo(t, reg, "app")
			desc, payload, _ := pushImage(t, r, "v1", "reads")
			for _, ref := range []string{"v1", desc.Digest.String()} {
				if _, _, _, err := r.GetManifest(ctx, ref); err != nil { // warms the caches
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				ref  string
				want int64
			}{{"v1", tc.byTag}, {desc.Digest.String(), tc.byDgst}} {
				n := readsOf(d, func() {
					_, got, dg, err := r.GetManifest(ctx, c.ref)
					if err != nil || dg != desc.Digest || !bytes.Equal(got, payload) {
						t.Fatalf("GetManifest(%s) = %s, %v", c.ref, dg, err)
					}
				})
				if n != c.want {
					t.Errorf("GET %s: %d storage reads, want %d", c.ref, n, c.want)
				}
				n = readsOf(d, func() {
					if got, err := r.StatManifest(ctx, c.ref); err != nil || got.Digest != desc.Digest || got.Size != desc.Size {
						t.Fatalf("StatManifest(%s) = %+v, %v", c.ref, got, err)
					}
				})
				if n != c.want {
					t.Errorf("HEAD %s: %d storage reads, want %d", c.ref, n, c.want)
				}
			}
		})
	}
}

// TestManifestCacheAcrossReplicas: two registries over one storage and one
// link cache, as two replicas on one bucket and one Redis. Whatever one
// changes, the other serves at its next request, although both have the
// manifests in their payload caches and the links cached.
func TestManifestCacheAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	links := newSharedLinks()
	d := drivers(t)["inmemory"](t)
	regA := New(d, Options{Cache: links, Delete: true})
	regB := New(d, Options{Cache: links, Delete: true})
	a, b := mustRepo(t, regA, "team/app"), mustRepo(t, regB, "team/app")
	one, _, _ := pushImage(t, b, "v1", "one")
	two, _, _ := pushImage(t, b, "other", "two")

	serves := func(r *Repository, ref string, want digest.Digest) {
		t.Helper()
		_, _, got, err := r.GetManifest(ctx, ref)
		if err != nil || got != want {
			t.Fatalf("GET %s = %s, %v; want %s", ref, got, err, want)
		}
	}
	unknown := func(r *Repository, ref string) {
		t.Helper()
		_, _, got, err := r.GetManifest(ctx, ref)
		wantErr(t, "GET "+ref, err, ErrManifestUnknown)
		if err == nil {
			t.Fatalf("GET %s served %s", ref, got)
		}
	}
	warm := func(ref string, want digest.Digest) {
		t.Helper()
		serves(a, ref, want)
		serves(b, ref, want)
	}
	tagV1 := cache.Link{Repo: "team/app", Kind: cache.TagLink, Name: "v1"}

	warm("v1", one.Digest)
	if got := links.cached(tagV1); got != one.Digest {
		t.Fatalf("tag v1 not cached after a GET: %q", got)
	}
	// A tag moved through B (a push by tag).
	if _, err := b.PutManifest(ctx, "v1", one.MediaType, mustPayload(t, b, two.Digest)); err != nil {
		t.Fatal(err)
	}
	serves(a, "v1", two.Digest)

	// Moved back by digest (PUT .../manifests/<digest>?tag=v1).
	warm("v1", two.Digest)
	if err := b.TagDigest(ctx, "v1", one.Digest); err != nil {
		t.Fatal(err)
	}
	serves(a, "v1", one.Digest)

	// Deleted through B.
	warm("v1", one.Digest)
	if err := b.DeleteTag(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	unknown(a, "v1")
	serves(a, one.Digest.String(), one.Digest)

	// A manifest deleted through B: unknown by digest and by its tags.
	if err := b.TagDigest(ctx, "v2", one.Digest); err != nil {
		t.Fatal(err)
	}
	warm("v2", one.Digest)
	warm(one.Digest.String(), one.Digest)
	if err := b.DeleteManifest(ctx, one.Digest); err != nil {
		t.Fatal(err)
	}
	unknown(a, one.Digest.String())
	unknown(a, "v2")
	if _, err := a.StatManifest(ctx, one.Digest.String()); err == nil {
		t.Error("HEAD of a deleted manifest succeeded")
	}

	// Evicted through B (a pull-through cache's eviction).
	warm("other", two.Digest)
	warm(two.Digest.String(), two.Digest)
	if _, err := b.EvictManifest(ctx, two.Digest); err != nil {
		t.Fatal(err)
	}
	unknown(a, two.Digest.String())
	unknown(a, "other")
}

// mustPayload reads manifest dg's payload through r.
func mustPayload(t *testing.T, r *Repository, dg digest.Digest) []byte {
	t.Helper()
	_, p, _, err := r.GetManifest(context.Background(), dg.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestManifestCacheReadRacingWrite: replica A reads a tag's current link,
// then B moves the tag and deletes the manifest before A fills the cache.
// A's fill carries a claim taken before its read, voided by B's clears, so
// the cache is left without an entry and A's next GET sees B's writes.
func TestManifestCacheReadRacingWrite(t *testing.T) {
	ctx := context.Background()
	links := newSharedLinks()
	d := &readCountingDriver{Driver: drivers(t)["inmemory"](t)}
	regA := New(d, Options{Cache: links, Delete: true})
	regB := New(d, Options{Cache: links, Delete: true})
	a, b := mustRepo(t, regA, "app"), mustRepo(t, regB, "app")
	one, _, _ := pushImage(t, b, "v1", "one")
	two, _, _ := pushImage(t, b, "v2", "two")

	// The tag: A reads v1 -> one; B moves v1 to two before A fills.
	moved := false
	d.onRead(tagCurrentLink("app", "v1"), func() {
		if err := b.TagDigest(ctx, "v1", two.Digest); err != nil {
			t.Error(err)
		}
		moved = true
	})
	if _, _, got, err := a.GetManifest(ctx, "v1"); err != nil || got != one.Digest {
		t.Fatalf("GET v1 during the move = %s, %v; want the old %s", got, err, one.Digest)
	}
	if !moved {
		t.Fatal("A's GET did not read the tag from storage")
	}
	if _, _, got, err := a.GetManifest(ctx, "v1"); err != nil || got != two.Digest {
		t.Errorf("GET v1 after the move = %s, %v; want %s (a stale fill survived)", got, err, two.Digest)
	}

	// The revision link: A reads it present; B deletes the manifest
	// before A fills. (The GETs above cached it: start from a miss.)
	links.flush()
	deleted := false
	d.onRead(revisionLinkDir("app", one.Digest)+"/link", func() {
		if err := b.DeleteManifest(ctx, one.Digest); err != nil {
			t.Error(err)
		}
		deleted = true
	})
	if _, _, _, err := a.GetManifest(ctx, one.Digest.String()); err != nil {
		t.Fatalf("GET during the delete: %v; want the manifest, read before the delete", err)
	}
	if !deleted {
		t.Fatal("A's GET did not read the revision link from storage")
	}
	_, _, _, err := a.GetManifest(ctx, one.Digest.String())
	wantErr(t, "GET after the delete", err, ErrManifestUnknown)
}

// TestManifestCacheDownOrFlushed: the link cache failing (every lookup a
// miss, fills dropped) or emptied only costs storage reads.
func TestManifestCacheDownOrFlushed(t *testing.T) {
	ctx := context.Background()
	links := newSharedLinks()
	d := &readCountingDriver{Driver: drivers(t)["inmemory"](t)}
	reg := New(d, Options{Cache: links, Delete: true})
	r := mustRepo(t, reg, "app")
	one, _, _ := pushImage(t, r, "v1", "one")
	get := func(want digest.Digest, reads int64) {
		t.Helper()
		n := readsOf(d, func() {
			if _, _, got, err := r.GetManifest(ctx, "v1"); err != nil || got != want {
				t.Fatalf("GET v1 = %s, %v; want %s", got, err, want)
			}
		})
		if n != reads {
			t.Errorf("GET v1: %d storage reads, want %d", n, reads)
		}
	}
	get(one.Digest, 2) // fills
	get(one.Digest, 0)
	links.flush()
	get(one.Digest, 2)
	get(one.Digest, 0)
	links.mu.Lock()
	links.down = true
	links.mu.Unlock()
	get(one.Digest, 2)
	get(one.Digest, 2)
	if err := r.DeleteManifest(ctx, one.Digest); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := r.GetManifest(ctx, "v1")
	wantErr(t, "GET v1 after delete, cache down", err, ErrManifestUnknown)
}

// TestManifestPayloadIsCallersCopy: a caller writing into the payload it
// got changes nothing another GET returns.
func TestManifestPayloadIsCallersCopy(t *testing.T) {
	ctx := context.Background()
	reg := New(drivers(t)["inmemory"](t), Options{})
	r := mustRepo(t, reg, "app")
	_, payload, _ := pushImage(t, r, "v1", "one")
	want := bytes.Clone(payload)
	payload[0] = 'X' // the pushed slice, which PutManifest cached
	for range 2 {
		_, got, _, err := r.GetManifest(ctx, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("GET returned %q, want %q", got[:16], want[:16])
		}
		for i := range got {
			got[i] = 'X'
		}
	}
	if reg.payloads.Bytes() != int64(len(want)) {
		t.Errorf("payload cache holds %d bytes, want %d", reg.payloads.Bytes(), len(want))
	}
}
