//go:build integration

package clients_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// stored is what a registry serves for one pushed image.
type stored struct {
	Digest   string
	Manifest string
	Tags     string
	Layer    int // size of the layer blob as served
}

// TestLayoutCompatibility pushes images through one registry into a
// storage directory, stops it, serves the same directory with the other
// registry, and checks that every image comes back with identical digests,
// manifests, tags and blobs: distribution (Debian's 2.8.2 and v3.1.2) to
// Gatehouse, and Gatehouse to distribution. Two manifest types are pushed:
// an OCI image manifest (crane) and a Docker schema2 manifest (skopeo
// --format v2s2).
func TestLayoutCompatibility(t *testing.T) {
	for _, ref := range []string{testenv.Registry2, testenv.Registry3} {
		for _, dir := range []struct{ from, to string }{{ref, testenv.RegistryGatehouse}, {testenv.RegistryGatehouse, ref}} {
			t.Run(fmt.Sprintf("%s to %s", dir.from, dir.to), func(t *testing.T) {
				layoutRoundTrip(t, dir.from, dir.to)
			})
		}
	}
}

func layoutRoundTrip(t *testing.T, from, to string) {
	crane, skopeo := testenv.Tool(t, "crane"), testenv.Tool(t, "skopeo")
	dir := t.TempDir()
	root := filepath.Join(dir, "storage")
	env := []string{"DOCKER_CONFIG=" + dir, "HOME=" + dir}
	im, layout := image(t)

	first := testenv.StartDistribution(t, testenv.DistributionOptions{Program: from, Root: root})
	oci := first.Addr + "/compat/oci"
	docker := first.Addr + "/compat/docker"
	run(t, env, crane, "push", "--insecure", layout, oci+":v1")
	run(t, env, crane, "tag", "--insecure", oci+":v1", "v2")
	run(t, nil, skopeo, "copy", "--dest-tls-verify=false", "--format", "v2s2", "oci:"+layout+":v1", "docker://"+docker+":v1")
	read := func(addr string) map[string]stored {
		out := map[string]stored{}
		for _, repo := range []string{"compat/oci", "compat/docker"} {
			r := addr + "/" + repo
			s := stored{
				Digest:   strings.TrimSpace(run(t, env, crane, "digest", "--insecure", r+":v1")),
				Manifest: run(t, env, crane, "manifest", "--insecure", r+":v1"),
				Tags:     strings.Join(strings.Fields(run(t, env, crane, "ls", "--insecure", r)), ","),
				Layer:    len(run(t, env, crane, "blob", "--insecure", r+"@"+im.LayerDigest)),
			}
			out[repo] = s
		}
		return out
	}
	before := read(first.Addr)
	if before["compat/oci"].Digest != im.Digest {
		t.Fatalf("%s stored the OCI manifest as %s, want %s", from, before["compat/oci"].Digest, im.Digest)
	}
	if !strings.Contains(before["compat/docker"].Manifest, "application/vnd.docker.distribution.manifest.v2+json") {
		t.Fatalf("skopeo --format v2s2 pushed no Docker schema2 manifest: %s", before["compat/docker"].Manifest)
	}
	catalogBefore := run(t, env, crane, "catalog", "--insecure", first.Addr)
	first.Stop()

	second := testenv.StartDistribution(t, testenv.DistributionOptions{Program: to, Root: root})
	after := read(second.Addr)
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("images written by %s and served by %s differ (-%s +%s):\n%s", from, to, from, to, d)
	}
	if got := run(t, env, crane, "catalog", "--insecure", second.Addr); got != catalogBefore {
		t.Errorf("catalog from %s = %q, from %s = %q", to, got, from, catalogBefore)
	}
	// A full pull through the second registry.
	pulled := filepath.Join(dir, "pulled")
	run(t, env, crane, "pull", "--insecure", "--format", "oci", second.Addr+"/compat/oci:v2", pulled)
	// The second registry can keep writing into the same storage.
	run(t, env, crane, "copy", "--insecure", second.Addr+"/compat/oci:v1", second.Addr+"/compat/copy:v1")
	if got := strings.TrimSpace(run(t, env, crane, "digest", "--insecure", second.Addr+"/compat/copy:v1")); got != im.Digest {
		t.Errorf("copy inside %s: digest %s, want %s", to, got, im.Digest)
	}
}
