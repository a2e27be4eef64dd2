package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Media types of the images NewImage builds.
const (
	MediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeOCILayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Image is a small single-layer OCI image built offline, byte for byte
// reproducible from its files.
type Image struct {
	// Files are the regular files of the only layer, by path.
	Files map[string]string
	// RootFS is the uncompressed layer tar (for `docker import`).
	RootFS []byte
	// Layer is the gzipped layer blob and LayerDigest its digest.
	Layer       []byte
	LayerDigest string
	// Config is the image config blob and ConfigDigest its digest.
	Config       []byte
	ConfigDigest string
	// Manifest is the OCI image manifest and Digest its digest: what a
	// registry must answer in Docker-Content-Digest after a push that keeps
	// the manifest as it is.
	Manifest []byte
	Digest   string
}

// Digest returns "sha256:<hex>" of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NewImage builds an image whose only layer holds files (path → content),
// with fixed timestamps, owners and modes, so the same files always give the
// same digests. Put something unique in the files (the test's name) when
// repositories must not share blobs.
func NewImage(t testing.TB, files map[string]string) *Image {
	t.Helper()
	im := &Image{Files: files}
	epoch := time.Unix(1700000000, 0).UTC()
	clean := make(map[string]string, len(files))
	names := make([]string, 0, len(files))
	for name, content := range files {
		name = strings.TrimPrefix(filepath.Clean("/"+name), "/")
		clean[name] = content
		names = append(names, name)
	}
	sort.Strings(names)
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	dirs := map[string]bool{}
	for _, name := range names {
		// Parent directories first, as image tools expect.
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				t.Fatal(err)
			}
		}
		content := clean[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	im.RootFS = raw.Bytes()
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zw.ModTime = epoch
	if _, err := zw.Write(im.RootFS); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	im.Layer = gz.Bytes()
	im.LayerDigest = Digest(im.Layer)

	cfg := map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Cmd": []string{"/bin/true"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{Digest(im.RootFS)}},
		"history":      []map[string]any{{"created": epoch.Format(time.RFC3339), "created_by": "gatehouse testenv"}},
	}
	if im.Config, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	im.ConfigDigest = Digest(im.Config)
	man := map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIManifest,
		"config":        descriptor(MediaTypeOCIConfig, im.Config),
		"layers":        []any{descriptor(MediaTypeOCILayer, im.Layer)},
	}
	if im.Manifest, err = json.Marshal(man); err != nil {
		t.Fatal(err)
	}
	im.Digest = Digest(im.Manifest)
	return im
}

func descriptor(mediaType string, blob []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": Digest(blob), "size": len(blob)}
}

// WriteOCILayout writes the image into an OCI image layout directory (created
// if missing; other images already there are kept) under tag, for
// `skopeo copy oci:DIR:TAG`, `oras cp --from-oci-layout DIR:TAG`,
// `regctl image copy ocidir://DIR:TAG` and `crane push DIR`.
func (im *Image) WriteOCILayout(t testing.TB, dir, tag string) {
	t.Helper()
	for _, blob := range [][]byte{im.Layer, im.Config, im.Manifest} {
		hexd := strings.TrimPrefix(Digest(blob), "sha256:")
		p := filepath.Join(dir, "blobs", "sha256", hexd)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, blob, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	var index struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}
	indexPath := filepath.Join(dir, "index.json")
	if b, err := os.ReadFile(indexPath); err == nil {
		if err := json.Unmarshal(b, &index); err != nil {
			t.Fatalf("%s: %v", indexPath, err)
		}
	}
	index.SchemaVersion, index.MediaType = 2, MediaTypeOCIIndex
	kept := index.Manifests[:0]
	for _, m := range index.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] != tag {
			kept = append(kept, m)
		}
	}
	index.Manifests = append(kept, desc{
		MediaType: MediaTypeOCIManifest, Digest: im.Digest, Size: len(im.Manifest),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
	})
	b, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(indexPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteDockerArchive writes the image as a `docker save` tarball tagged
// repoTag, for `docker load -i`. Note that the Docker engine pushes such an
// image with a Docker schema2 manifest, so its digest differs from Digest.
func (im *Image) WriteDockerArchive(t testing.TB, path, repoTag string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	layerName := strings.TrimPrefix(Digest(im.RootFS), "sha256:") + "/layer.tar"
	configName := strings.TrimPrefix(im.ConfigDigest, "sha256:") + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config": configName, "RepoTags": []string{repoTag}, "Layers": []string{layerName},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{configName, im.Config}, {layerName, im.RootFS}, {"manifest.json", manifest}} {
		if dir := filepath.Dir(f.name); dir != "." {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// String describes the image for test logs.
func (im *Image) String() string {
	return fmt.Sprintf("image %s (layer %s, %d bytes)", im.Digest, im.LayerDigest, len(im.Layer))
}
