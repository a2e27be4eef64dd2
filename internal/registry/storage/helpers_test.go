package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// drivers returns one fresh driver of each kind.
func drivers(t *testing.T) map[string]func(t *testing.T) driver.Driver {
	t.Helper()
	return map[string]func(t *testing.T) driver.Driver{
		"inmemory": func(*testing.T) driver.Driver { return inmemory.New() },
		"filesystem": func(t *testing.T) driver.Driver {
			d, err := filesystem.New(filesystem.Options{RootDirectory: t.TempDir(), Durable: false})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	}
}

// forEachDriver runs fn against a registry on each driver.
func forEachDriver(t *testing.T, opts Options, fn func(t *testing.T, reg *Registry)) {
	for name, nd := range drivers(t) {
		t.Run(name, func(t *testing.T) { fn(t, New(nd(t), opts)) })
	}
}

func mustRepo(t *testing.T, reg *Registry, name string) *Repository {
	t.Helper()
	r, err := reg.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushBlob uploads content in one Append and commits it.
func pushBlob(t *testing.T, r *Repository, content []byte) v1.Descriptor {
	t.Helper()
	ctx := context.Background()
	u, err := r.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(content)
	if _, err := u.Commit(ctx, dg, int64(len(content))); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return v1.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: dg, Size: int64(len(content))}
}

// image builds an OCI image manifest over config and layers.
func image(t *testing.T, config v1.Descriptor, layers []v1.Descriptor, subject *v1.Descriptor, artifactType string) []byte {
	t.Helper()
	config.MediaType = v1.MediaTypeImageConfig
	if artifactType != "" {
		config = v1.DescriptorEmptyJSON
	}
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: config, Layers: layers, Subject: subject, ArtifactType: artifactType}
	m.SchemaVersion = 2
	if m.Layers == nil {
		m.Layers = []v1.Descriptor{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func index(t *testing.T, children ...v1.Descriptor) []byte {
	t.Helper()
	m := v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: children}
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushImage pushes a config, one layer and the manifest under ref.
func pushImage(t *testing.T, r *Repository, ref string, seed string) (v1.Descriptor, []byte, []v1.Descriptor) {
	t.Helper()
	cfg := pushBlob(t, r, []byte(`{"architecture":"amd64","os":"linux","seed":"`+seed+`"}`))
	layer := pushBlob(t, r, []byte("layer-"+seed))
	payload := image(t, cfg, []v1.Descriptor{layer}, nil, "")
	res, err := r.PutManifest(context.Background(), ref, v1.MediaTypeImageManifest, payload)
	if err != nil {
		t.Fatalf("PutManifest(%s): %v", ref, err)
	}
	return v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: res.Digest, Size: int64(len(payload))}, payload, []v1.Descriptor{cfg, layer}
}

func wantErr(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: got error %v, want %v", what, err, sentinel)
	}
}

func validPath(p string) error { return driver.ValidatePath("test", p) }

func pushBlobB(b *testing.B, r *Repository, content []byte) v1.Descriptor {
	b.Helper()
	ctx := context.Background()
	u, err := r.NewUpload(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := u.Append(ctx, bytes.NewReader(content)); err != nil {
		b.Fatal(err)
	}
	desc, err := u.Commit(ctx, digest.FromBytes(content), int64(len(content)))
	if err != nil {
		b.Fatal(err)
	}
	return v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: desc.Digest, Size: desc.Size}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
