package storage

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestServesRegistry2Layout writes a tree the way registry:2 does (file by
// file, links without newlines, its own hash state format) and reads it
// back through the API.
func TestServesRegistry2Layout(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		d := reg.Driver()
		put := func(p string, b []byte) {
			t.Helper()
			if err := d.PutContent(ctx, "/docker/registry/v2"+p, b); err != nil {
				t.Fatal(err)
			}
		}
		blob := func(b []byte) digest.Digest {
			dg := digest.FromBytes(b)
			put("/blobs/sha256/"+dg.Encoded()[:2]+"/"+dg.Encoded()+"/data", b)
			return dg
		}
		cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
		layer := []byte("layer bytes")
		cfgD, layerD := blob(cfg), blob(layer)
		manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":` +
			itoa(len(cfg)) + `,"digest":"` + cfgD.String() + `"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":` +
			itoa(len(layer)) + `,"digest":"` + layerD.String() + `"}]}`)
		mD := blob(manifest)
		repo := "/repositories/library/hello"
		for _, dg := range []digest.Digest{cfgD, layerD} {
			put(repo+"/_layers/sha256/"+dg.Encoded()+"/link", []byte(dg))
		}
		put(repo+"/_manifests/revisions/sha256/"+mD.Encoded()+"/link", []byte(mD))
		put(repo+"/_manifests/tags/latest/current/link", []byte(mD))
		put(repo+"/_manifests/tags/latest/index/sha256/"+mD.Encoded()+"/link", []byte(mD))
		partial := []byte("partial upload data")
		put(repo+"/_uploads/6f0b7b4e-1c1d-4c38-9d5e-1f2a3b4c5d6e/data", partial)
		put(repo+"/_uploads/6f0b7b4e-1c1d-4c38-9d5e-1f2a3b4c5d6e/startedat", []byte("2026-01-02T03:04:05Z"))
		put(repo+"/_uploads/6f0b7b4e-1c1d-4c38-9d5e-1f2a3b4c5d6e/hashstates/sha256/"+itoa(len(partial)), []byte("not a Go hash state"))

		r := mustRepo(t, reg, "library/hello")
		mt, got, dg, err := r.GetManifest(ctx, "latest")
		if err != nil || mt != MediaTypeDockerManifest || dg != mD || !bytes.Equal(got, manifest) {
			t.Fatalf("GetManifest(latest) = %s %s, %v", mt, dg, err)
		}
		br, err := r.OpenBlob(ctx, layerD)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(br)
		br.Close()
		if !bytes.Equal(b, layer) {
			t.Errorf("layer = %q", b)
		}
		tags, _, err := r.Tags(ctx, "", 0)
		if err != nil || len(tags) != 1 || tags[0] != "latest" {
			t.Errorf("Tags = %v, %v", tags, err)
		}
		repos, _, err := reg.Catalog(ctx, "", 0)
		if err != nil || len(repos) != 1 || repos[0] != "library/hello" {
			t.Errorf("Catalog = %v, %v", repos, err)
		}
		u, err := r.ResumeUpload(ctx, "6f0b7b4e-1c1d-4c38-9d5e-1f2a3b4c5d6e")
		if err != nil {
			t.Fatal(err)
		}
		if u.Size() != int64(len(partial)) || u.StartedAt().Year() != 2026 {
			t.Errorf("resumed registry:2 upload: size %d, started %v", u.Size(), u.StartedAt())
		}
		if _, err := u.Append(ctx, bytes.NewReader([]byte(" and the rest"))); err != nil {
			t.Fatal(err)
		}
		all := append(append([]byte{}, partial...), " and the rest"...)
		if _, err := u.Commit(ctx, digest.FromBytes(all), int64(len(all))); err != nil {
			t.Fatalf("commit of a registry:2 upload: %v", err)
		}
		// And a new manifest pushed by us references registry:2's blobs.
		if _, err := r.PutManifest(ctx, "ours", v1.MediaTypeImageManifest, image(t,
			v1.Descriptor{Digest: cfgD, Size: int64(len(cfg))},
			[]v1.Descriptor{{MediaType: v1.MediaTypeImageLayerGzip, Digest: layerD, Size: int64(len(layer))}}, nil, "")); err != nil {
			t.Fatal(err)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
