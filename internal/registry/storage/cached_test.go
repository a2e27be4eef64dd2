package storage

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPutCachedManifestWithoutBlobs(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "mirror/app")
		layer := v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: digest.FromString("absent"), Size: 6}
		payload := image(t, layer, []v1.Descriptor{layer}, nil, "")
		dg := digest.FromBytes(payload)
		// The push path refuses it: the blobs are not there.
		if _, err := r.PutManifest(ctx, "v1", v1.MediaTypeImageManifest, payload); err == nil {
			t.Fatal("PutManifest accepted a manifest whose blobs are missing")
		}
		if err := r.PutCachedManifest(ctx, "v1", v1.MediaTypeImageManifest, payload, dg); err != nil {
			t.Fatal(err)
		}
		_, got, gotDigest, err := r.GetManifest(ctx, "v1")
		if err != nil || gotDigest != dg || string(got) != string(payload) {
			t.Fatalf("GetManifest(v1) = %s, %v", gotDigest, err)
		}
		if err := r.PutCachedManifest(ctx, "", v1.MediaTypeImageManifest, payload, digest.FromString("other")); err == nil {
			t.Error("PutCachedManifest accepted a payload that does not hash to the digest")
		}
	})
}

func TestEvictKeepsSharedBytes(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		cached := mustRepo(t, reg, "mirror/app")
		hosted := mustRepo(t, reg, "team/app")
		shared := pushBlob(t, cached, []byte("shared layer"))
		pushBlob(t, hosted, []byte("shared layer"))
		own := pushBlob(t, cached, []byte("only in the cache"))

		freed, err := cached.EvictBlob(ctx, shared.Digest)
		if err != nil || freed {
			t.Fatalf("EvictBlob(shared) = %t, %v; want the bytes kept", freed, err)
		}
		if _, err := cached.StatBlob(ctx, shared.Digest); err == nil {
			t.Error("the cache's link survived eviction")
		}
		if _, err := hosted.OpenBlob(ctx, shared.Digest); err != nil {
			t.Errorf("hosted repository lost its blob: %v", err)
		}
		freed, err = cached.EvictBlob(ctx, own.Digest)
		if err != nil || !freed {
			t.Fatalf("EvictBlob(own) = %t, %v; want the bytes removed", freed, err)
		}
		if _, err := reg.statGlobal(ctx, own.Digest); err == nil {
			t.Error("bytes of an evicted blob are still stored")
		}

		desc, _, _ := pushImage(t, cached, "latest", "x")
		freed, err = cached.EvictManifest(ctx, desc.Digest)
		if err != nil || !freed {
			t.Fatalf("EvictManifest = %t, %v", freed, err)
		}
		if _, err := cached.StatManifest(ctx, "latest"); err == nil {
			t.Error("the tag of an evicted manifest still resolves")
		}
	})
}
