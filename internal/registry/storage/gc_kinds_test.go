package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

// storeRaw writes payload as a manifest of repository name the way
// registry:2 leaves it on disk (blob, revision link, and tag links when tag
// is set), bypassing PutManifest, which refuses schema1 and descriptors
// without mediaType.
func storeRaw(t *testing.T, reg *Registry, name, tag, payload string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	dg := digest.FromString(payload)
	if err := reg.d.PutContent(ctx, blobDataPath(dg), []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := reg.writeLink(ctx, revisionLinkDir(name, dg)+"/link", dg); err != nil {
		t.Fatal(err)
	}
	if tag != "" {
		if err := reg.writeLink(ctx, tagCurrentLink(name, tag), dg); err != nil {
			t.Fatal(err)
		}
		if err := reg.writeLink(ctx, tagIndexLinkDir(name, tag, dg)+"/link", dg); err != nil {
			t.Fatal(err)
		}
	}
	return dg
}

// kindsFixture stores one manifest of every kind GC must understand in
// repository "kinds", each referencing blobs of its own, and returns the
// digests that must survive GC and the ones that must go.
func kindsFixture(t *testing.T, reg *Registry) (keep map[string]digest.Digest, gone []digest.Digest) {
	t.Helper()
	r := mustRepo(t, reg, "kinds")
	keep = map[string]digest.Digest{}
	blob := func(what string) string {
		dg := pushBlob(t, r, []byte("content of "+what)).Digest
		keep[what] = dg
		return dg.String()
	}
	manifest := func(what, tag, payload string) string {
		dg := storeRaw(t, reg, "kinds", tag, payload)
		keep[what] = dg
		return dg.String()
	}

	manifest("schema1 signed", "s1signed", strings.NewReplacer(
		"REFA", blob("schema1 signed layer 0"), "REFB", blob("schema1 signed layer 1")).Replace(schema1Signed))
	manifest("schema1 unsigned", "s1", `{"schemaVersion":1,"name":"kinds","tag":"s1","architecture":"amd64",
		"fsLayers":[{"blobSum":"`+blob("schema1 layer")+`"}],"history":[{"v1Compatibility":"{}"}]}`)
	s2 := manifest("schema2 (list child)", "", `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
		"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"`+blob("schema2 config")+`"},
		"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1,"digest":"`+blob("schema2 layer")+`"}]}`)
	manifest("manifest list", "list", `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
		"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"`+s2+`","platform":{"architecture":"amd64","os":"linux"}}]}`)
	bare := manifest("OCI without mediaTypes", "bare", `{"schemaVersion":2,
		"config":{"size":1,"digest":"`+blob("bare config")+`"},
		"layers":[{"size":1,"digest":"`+blob("bare layer 0")+`"},{"digest":"`+blob("bare layer 1")+`"}]}`)
	child := manifest("OCI (index child)", "", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1,"digest":"`+blob("OCI child config")+`"},
		"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1,"digest":"`+blob("OCI child layer")+`"}]}`)
	manifest("OCI index", "index", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
		"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"`+child+`"}]}`)
	manifest("OCI artifact with subject (untagged referrer)", "", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"artifactType":"application/vnd.example.sbom",
		"config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"`+blob("artifact config")+`"},
		"layers":[{"mediaType":"application/spdx+json","size":1,"digest":"`+blob("artifact layer")+`"}],
		"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"`+bare+`"}}`)
	manifest("artifact manifest (blobs)", "art", `{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"application/vnd.example.sig",
		"blobs":[{"mediaType":"application/octet-stream","size":1,"digest":"`+blob("artifact blob")+`"}]}`)

	// A schema1 signature stored apart, as early registry:2 versions did.
	sig := blob("legacy signature")
	s1 := keep["schema1 unsigned"]
	if err := reg.writeLink(context.Background(), revisionLinkDir("kinds", s1)+"/signatures/"+strings.Replace(sig, ":", "/", 1)+"/link", digest.Digest(sig)); err != nil {
		t.Fatal(err)
	}

	gone = []digest.Digest{pushBlob(t, r, []byte("orphan layer")).Digest, pushBlob(t, r, []byte("another orphan")).Digest}
	return keep, gone
}

func TestGCManifestKinds(t *testing.T) {
	for _, untagged := range []bool{false, true} {
		t.Run(fmt.Sprintf("deleteUntagged=%v", untagged), func(t *testing.T) {
			forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
				ctx := context.Background()
				d := reg.Driver()
				keep, gone := kindsFixture(t, reg)
				var warnings []string
				res, err := GC(ctx, d, GCOptions{DeleteUntagged: untagged, Warn: func(f string, a ...any) {
					warnings = append(warnings, fmt.Sprintf(f, a...))
				}})
				if err != nil {
					t.Fatal(err)
				}
				if len(warnings) != 0 || res.Warnings != 0 {
					t.Errorf("warnings: %q (%d)", warnings, res.Warnings)
				}
				for what, dg := range keep {
					if !blobExists(t, d, dg) {
						t.Errorf("%s (%s) was swept", what, dg)
					}
				}
				for _, dg := range gone {
					if blobExists(t, d, dg) {
						t.Errorf("unreferenced blob %s survived", dg)
					}
				}
				if res.BlobsSwept != len(gone) || res.ManifestsDeleted != 0 {
					t.Errorf("BlobsSwept = %d (want %d), ManifestsDeleted = %d (want 0)", res.BlobsSwept, len(gone), res.ManifestsDeleted)
				}
				if res.BlobsMarked != len(keep) {
					t.Errorf("BlobsMarked = %d, want %d", res.BlobsMarked, len(keep))
				}
				// Every layer of every tagged image is still served.
				r := mustRepo(t, reg, "kinds")
				for what, dg := range keep {
					if strings.Contains(what, "layer") {
						if _, err := r.StatBlob(ctx, dg); err != nil {
							t.Errorf("%s after GC: %v", what, err)
						}
					}
				}
			})
		})
	}
}

// unreadableCases are manifests GC cannot know the references of.
var unreadableCases = []struct{ name, payload, why string }{
	{"not JSON", "\x1f\x8b\x08\x00 gzip, not a manifest", "not a JSON object"},
	{"unknown shape", `{"schemaVersion":2,"mediaType":"application/vnd.example.thing","parts":[{"digest":"` + refA.String() + `"}]}`, "no config, layers"},
	{"bad layer digest", `{"schemaVersion":2,"config":{"digest":"` + refA.String() + `"},"layers":[{"digest":"sha256:123"}]}`, "layers[0]: digest"},
	{"bad fsLayer digest", `{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256"}]}`, "fsLayers[0].blobSum"},
}

func TestGCStopsOnUnreadableManifest(t *testing.T) {
	for _, tc := range unreadableCases {
		for _, opts := range []GCOptions{{}, {DryRun: true}, {DeleteUntagged: true}, {DeleteUntagged: true, DryRun: true}} {
			t.Run(fmt.Sprintf("%s/dryRun=%v,deleteUntagged=%v", tc.name, opts.DryRun, opts.DeleteUntagged), func(t *testing.T) {
				forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
					ctx := context.Background()
					d := reg.Driver()
					// Repositories before and after the bad one hold
					// garbage (an orphan, an untagged manifest) that a GC
					// would delete.
					buildGCFixture(t, reg)
					bad := storeRaw(t, reg, "mid/bad", "v1", tc.payload)
					pushBlob(t, mustRepo(t, reg, "mid/bad"), []byte("layer of the bad manifest"))
					pushImage(t, mustRepo(t, reg, "zzz"), "v1", "z")
					pushBlob(t, mustRepo(t, reg, "zzz"), []byte("orphan of zzz"))

					before := tree(t, d)
					var lines []string
					opts.Progress = func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }
					_, err := GC(ctx, d, opts)
					var ue *ManifestUnreadableError
					if !errors.As(err, &ue) {
						t.Fatalf("GC error = %v, want a *ManifestUnreadableError", err)
					}
					if ue.Repository != "mid/bad" || ue.Digest != bad {
						t.Errorf("error names %s@%s, want mid/bad@%s", ue.Repository, ue.Digest, bad)
					}
					for _, want := range []string{"mid/bad", bad.String(), tc.why, "nothing was deleted"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("error %q does not contain %q", err, want)
						}
					}
					if diff := cmp.Diff(before, tree(t, d)); diff != "" {
						t.Errorf("GC changed storage although it stopped (-before +after):\n%s", diff)
					}
					for _, l := range lines {
						if strings.Contains(l, "sweep") || strings.Contains(l, "delete") {
							t.Errorf("progress announced a deletion: %q", l)
						}
					}
				})
			})
		}
	}
}

func TestGCWarnsAndKeepsGoing(t *testing.T) {
	forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		d := reg.Driver()
		img, _, blobs := pushImage(t, mustRepo(t, reg, "app"), "v1", "1")
		orphan := pushBlob(t, mustRepo(t, reg, "app"), []byte("orphan")).Digest
		// A revision whose manifest blob is gone, and a stray file.
		missing := digest.FromString("missing manifest")
		if err := reg.writeLink(ctx, revisionLinkDir("app", missing)+"/link", missing); err != nil {
			t.Fatal(err)
		}
		if err := d.PutContent(ctx, revisionsDir("app")+"/sha256/README", []byte("x")); err != nil {
			t.Fatal(err)
		}
		var warnings []string
		res, err := GC(ctx, d, GCOptions{Warn: func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }})
		if err != nil {
			t.Fatal(err)
		}
		if res.Warnings != 2 || len(warnings) != 2 ||
			!strings.Contains(warnings[0], "README") || !strings.Contains(warnings[1], missing.String()) {
			t.Errorf("warnings = %q (%d)", warnings, res.Warnings)
		}
		for _, dg := range []digest.Digest{img.Digest, blobs[0].Digest, blobs[1].Digest} {
			if !blobExists(t, d, dg) {
				t.Errorf("%s swept", dg)
			}
		}
		if blobExists(t, d, orphan) {
			t.Error("orphan survived")
		}
	})
}
