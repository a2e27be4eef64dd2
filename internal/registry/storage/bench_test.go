package storage

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkBlobUpload measures upload + commit throughput on the
// filesystem driver, with and without fsync.
func BenchmarkBlobUpload(b *testing.B) {
	for _, durable := range []bool{false, true} {
		for _, size := range []int{64 << 10, 16 << 20} {
			b.Run(fmt.Sprintf("durable=%v/size=%dKiB", durable, size>>10), func(b *testing.B) {
				d, err := filesystem.New(filesystem.Options{RootDirectory: b.TempDir(), Durable: durable})
				if err != nil {
					b.Fatal(err)
				}
				r, _ := New(d, Options{}).Repository("bench/blobs")
				content := randomBytes(b, size)
				ctx := context.Background()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					content[0], content[1], content[2] = byte(i), byte(i>>8), byte(i>>16) // a new blob each time
					u, err := r.NewUpload(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := u.Append(ctx, bytes.NewReader(content)); err != nil {
						b.Fatal(err)
					}
					if _, err := u.Commit(ctx, digest.FromBytes(content), int64(size)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkManifest measures manifest put and get (by tag) on the
// filesystem driver, with the blob descriptor cache.
func BenchmarkManifest(b *testing.B) {
	for _, durable := range []bool{false, true} {
		d, err := filesystem.New(filesystem.Options{RootDirectory: b.TempDir(), Durable: durable})
		if err != nil {
			b.Fatal(err)
		}
		reg := New(d, Options{Cache: cache.NewLRU(cache.DefaultSize)})
		r, _ := reg.Repository("bench/manifests")
		ctx := context.Background()
		cfg := pushBlobB(b, r, []byte(`{"os":"linux"}`))
		layers := []v1.Descriptor{pushBlobB(b, r, []byte("l1")), pushBlobB(b, r, []byte("l2"))}
		b.Run(fmt.Sprintf("put/durable=%v", durable), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: cfg, Layers: layers,
					Annotations: map[string]string{"n": fmt.Sprint(i)}}
				m.SchemaVersion = 2
				payload := mustJSON(b, m)
				if _, err := r.PutManifest(ctx, fmt.Sprintf("t%d", i%100), v1.MediaTypeImageManifest, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("get/durable=%v", durable), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, _, _, err := r.GetManifest(ctx, "t0"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
