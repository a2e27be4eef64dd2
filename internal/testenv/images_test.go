package testenv

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewImageReproducible(t *testing.T) {
	files := map[string]string{"app/hello.txt": "hello\n", "/etc/motd": "motd\n"}
	a, b := NewImage(t, files), NewImage(t, files)
	if a.Digest != b.Digest || a.LayerDigest != b.LayerDigest || a.ConfigDigest != b.ConfigDigest {
		t.Fatalf("same files, different images: %s / %s", a, b)
	}
	if c := NewImage(t, map[string]string{"app/hello.txt": "other\n"}); c.Digest == a.Digest {
		t.Fatal("different files, same digest")
	}
	if a.Digest != Digest(a.Manifest) || a.LayerDigest != Digest(a.Layer) {
		t.Fatal("digests do not match the blobs")
	}
	// The layer holds the parent directories, then the files, cleaned.
	var names []string
	tr := tar.NewReader(bytes.NewReader(a.RootFS))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if d := cmp.Diff([]string{"app/", "app/hello.txt", "etc/", "etc/motd"}, names); d != "" {
		t.Errorf("layer entries (-want +got):\n%s", d)
	}
}

func TestWriteOCILayout(t *testing.T) {
	dir := t.TempDir()
	v1 := NewImage(t, map[string]string{"a": "1"})
	v2 := NewImage(t, map[string]string{"a": "2"})
	v1.WriteOCILayout(t, dir, "v1")
	v2.WriteOCILayout(t, dir, "v2")
	v2.WriteOCILayout(t, dir, "v1") // retag: replaces the v1 entry
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range index.Manifests {
		got[m.Annotations["org.opencontainers.image.ref.name"]] = m.Digest
	}
	if d := cmp.Diff(map[string]string{"v1": v2.Digest, "v2": v2.Digest}, got); d != "" {
		t.Errorf("index tags (-want +got):\n%s", d)
	}
	for _, blob := range [][]byte{v1.Manifest, v2.Manifest, v2.Layer, v2.Config} {
		p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(Digest(blob), "sha256:"))
		if on, err := os.ReadFile(p); err != nil || !bytes.Equal(on, blob) {
			t.Errorf("blob %s: %v", p, err)
		}
	}
}

func TestWriteDockerArchive(t *testing.T) {
	im := NewImage(t, map[string]string{"a": "1"})
	p := filepath.Join(t.TempDir(), "img.tar")
	im.WriteDockerArchive(t, p, "example.test/x:v1")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	contents := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		contents[h.Name] = b
	}
	if err := json.Unmarshal(contents["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json %q: %v", contents["manifest.json"], err)
	}
	m := manifest[0]
	if !bytes.Equal(contents[m.Config], im.Config) || len(m.Layers) != 1 || !bytes.Equal(contents[m.Layers[0]], im.RootFS) {
		t.Errorf("archive does not hold the image's config and layer: %+v", m)
	}
	if d := cmp.Diff([]string{"example.test/x:v1"}, m.RepoTags); d != "" {
		t.Errorf("RepoTags (-want +got):\n%s", d)
	}
}
