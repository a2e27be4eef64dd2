package storage

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
)

func TestBlobDescriptorCache(t *testing.T) {
	ctx := context.Background()
	lru := cache.NewLRU(100)
	reg := New(drivers(t)["inmemory"](t), Options{Cache: lru, Delete: true})
	r := mustRepo(t, reg, "cached")
	b := pushBlob(t, r, []byte("cache me"))
	got, err := lru.Stat(ctx, "cached", b.Digest)
	if err != nil || got.Size != b.Size {
		t.Fatalf("commit did not fill the repository entry: %+v, %v", got, err)
	}
	if _, err := lru.Stat(ctx, "", b.Digest); err != nil {
		t.Errorf("commit did not fill the global entry: %v", err)
	}
	// Served from the cache: a stat that storage would fail.
	if err := reg.Driver().Delete(ctx, layerLinkDir("cached", b.Digest)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.StatBlob(ctx, b.Digest); err != nil {
		t.Errorf("StatBlob did not use the cache: %v", err)
	}
	// DeleteBlob clears the entry (the link is gone already: unknown).
	_ = lru.Clear(ctx, "cached", b.Digest)
	pushBlob(t, r, []byte("cache me"))
	if err := r.DeleteBlob(ctx, b.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := lru.Stat(ctx, "cached", b.Digest); !errors.Is(err, cache.ErrCacheMiss) {
		t.Errorf("DeleteBlob left the cache entry: %v", err)
	}
	_, err = r.StatBlob(ctx, b.Digest)
	wantErr(t, "StatBlob after DeleteBlob", err, ErrBlobUnknown)
	wantErr(t, "DeleteBlob twice", r.DeleteBlob(ctx, b.Digest), ErrBlobUnknown)
}
