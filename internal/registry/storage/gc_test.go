package storage

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// tree lists every file below the registry root with its content length.
func tree(t *testing.T, d driver.Driver) []string {
	t.Helper()
	var out []string
	err := d.Walk(context.Background(), "/", func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			out = append(out, fmt.Sprintf("%s %d", fi.Path(), fi.Size()))
		}
		return nil
	})
	if err != nil && !driver.IsNotFound(err) {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func blobExists(t *testing.T, d driver.Driver, dg digest.Digest) bool {
	t.Helper()
	_, err := d.Stat(context.Background(), blobDataPath(dg))
	if err != nil && !driver.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// gcFixture builds:
//
//	app: tag v1 -> img1 (cfg1, l1); img2 (cfg2, l2) untagged;
//	     tag multi -> index -> child (cfgc, lc) untagged itself;
//	     sig: referrer of img1, untagged; orphan layer pushed but unreferenced;
//	     deleted: img3 (cfg3, l3) pushed then deleted.
//	lib: tag x -> img (shares l1 with app)
type gcFixture struct {
	img1, img2, child, idx, sig, img3 digest.Digest
	img1Blobs, img2Blobs, childBlobs  []v1.Descriptor
	img3Blobs                         []v1.Descriptor
	orphan                            digest.Digest
}

func buildGCFixture(t *testing.T, reg *Registry) gcFixture {
	ctx := context.Background()
	app := mustRepo(t, reg, "app")
	var f gcFixture
	var d v1.Descriptor
	d, _, f.img1Blobs = pushImage(t, app, "v1", "1")
	f.img1 = d.Digest
	d, _, f.img2Blobs = pushImage(t, app, "v2", "2")
	f.img2 = d.Digest
	if err := app.DeleteTag(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	var childDesc v1.Descriptor
	childDesc, _, f.childBlobs = pushImage(t, app, childDescRef(), "c")
	f.child = childDesc.Digest
	if err := app.DeleteTag(ctx, childDescRef()); err != nil {
		t.Fatal(err)
	}
	res, err := app.PutManifest(ctx, "multi", v1.MediaTypeImageIndex, index(t, childDesc))
	if err != nil {
		t.Fatal(err)
	}
	f.idx = res.Digest
	img1 := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: f.img1, Size: int64(len(mustManifest(t, reg, app, f.img1)))}
	sig := image(t, v1.Descriptor{}, nil, &img1, "application/vnd.example.sig")
	res, err = app.PutManifest(ctx, digest.FromBytes(sig).String(), v1.MediaTypeImageManifest, sig)
	if err != nil {
		t.Fatal(err)
	}
	f.sig = res.Digest
	f.orphan = pushBlob(t, app, []byte("orphan layer")).Digest
	d, _, f.img3Blobs = pushImage(t, app, "v3", "3")
	f.img3 = d.Digest
	if err := app.DeleteManifest(ctx, f.img3); err != nil {
		t.Fatal(err)
	}
	lib := mustRepo(t, reg, "lib")
	if _, err := lib.MountBlob(ctx, app, f.img1Blobs[1].Digest); err != nil {
		t.Fatal(err)
	}
	cfg := pushBlob(t, lib, []byte(`{"lib":true}`))
	if _, err := lib.PutManifest(ctx, "x", v1.MediaTypeImageManifest, image(t, cfg, []v1.Descriptor{f.img1Blobs[1]}, nil, "")); err != nil {
		t.Fatal(err)
	}
	return f
}

func childDescRef() string { return "child-tmp" }

func TestGC(t *testing.T) {
	for _, untagged := range []bool{false, true} {
		t.Run(fmt.Sprintf("deleteUntagged=%v", untagged), func(t *testing.T) {
			forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
				ctx := context.Background()
				d := reg.Driver()
				f := buildGCFixture(t, reg)

				before := tree(t, d)
				var lines []string
				dry, err := GC(ctx, d, GCOptions{DryRun: true, DeleteUntagged: untagged, Progress: func(format string, args ...any) {
					lines = append(lines, fmt.Sprintf(format, args...))
				}})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(before, tree(t, d)); diff != "" {
					t.Fatalf("dry run changed storage (-before +after):\n%s", diff)
				}
				if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "dry run") {
					t.Errorf("dry run progress: %q", lines)
				}

				res, err := GC(ctx, d, GCOptions{DeleteUntagged: untagged})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(dry, res); diff != "" {
					t.Errorf("dry run and real run disagree (-dry +real):\n%s", diff)
				}
				if res.Repositories != 2 {
					t.Errorf("Repositories = %d", res.Repositories)
				}
				keep := []digest.Digest{f.img1, f.idx, f.child, f.sig, v1.DescriptorEmptyJSON.Digest}
				for _, b := range append(append([]v1.Descriptor{}, f.img1Blobs...), f.childBlobs...) {
					keep = append(keep, b.Digest)
				}
				gone := []digest.Digest{f.orphan, f.img3}
				for _, b := range f.img3Blobs {
					gone = append(gone, b.Digest)
				}
				img2 := append([]digest.Digest{f.img2}, f.img2Blobs[0].Digest, f.img2Blobs[1].Digest)
				if untagged {
					gone = append(gone, img2...)
				} else {
					keep = append(keep, img2...)
				}
				for _, dg := range keep {
					if !blobExists(t, d, dg) {
						t.Errorf("kept blob %s was swept", dg)
					}
				}
				for _, dg := range gone {
					if blobExists(t, d, dg) {
						t.Errorf("blob %s survived", dg)
					}
				}
				if res.BlobsSwept != len(gone) || res.BytesFreed <= 0 {
					t.Errorf("BlobsSwept = %d (want %d), BytesFreed = %d", res.BlobsSwept, len(gone), res.BytesFreed)
				}
				// Swept names every deleted blob, and the orphan layer
				// with the repository that linked it (what a shared
				// cache must forget).
				sweptSet := map[digest.Digest][]string{}
				for _, b := range res.Swept {
					sweptSet[b.Digest] = b.Repositories
				}
				for _, dg := range gone {
					if _, ok := sweptSet[dg]; !ok {
						t.Errorf("Swept lacks %s", dg)
					}
				}
				if len(res.Swept) != len(gone) {
					t.Errorf("Swept has %d blobs, want %d", len(res.Swept), len(gone))
				}
				if !slices.Contains(sweptSet[f.orphan], "app") {
					t.Errorf("Swept[%s].Repositories = %q, want it to name app", f.orphan, sweptSet[f.orphan])
				}
				app := mustRepo(t, reg, "app")
				if _, err := app.StatBlob(ctx, f.orphan); err == nil {
					t.Error("layer link to a swept blob survived")
				}
				if _, err := app.StatBlob(ctx, f.img1Blobs[1].Digest); err != nil {
					t.Errorf("layer link to a kept blob removed: %v", err)
				}
				// Everything still served.
				for _, ref := range []string{"v1", "multi", f.child.String(), f.sig.String()} {
					if _, _, _, err := app.GetManifest(ctx, ref); err != nil {
						t.Errorf("GetManifest(%s) after GC: %v", ref, err)
					}
				}
				if _, _, _, err := mustRepo(t, reg, "lib").GetManifest(ctx, "x"); err != nil {
					t.Errorf("lib:x after GC: %v", err)
				}
				refs, _ := app.Referrers(ctx, f.img1, "")
				if len(refs) != 1 {
					t.Errorf("referrers after GC: %+v", refs)
				}
				_, _, _, err = app.GetManifest(ctx, f.img2.String())
				if untagged {
					wantErr(t, "untagged manifest after GC", err, ErrManifestUnknown)
					if res.ManifestsDeleted != 1 {
						t.Errorf("ManifestsDeleted = %d, want 1", res.ManifestsDeleted)
					}
				} else if err != nil {
					t.Errorf("untagged manifest deleted without DeleteUntagged: %v", err)
				}
				// A second run finds nothing.
				again, err := GC(ctx, d, GCOptions{DeleteUntagged: untagged})
				if err != nil || again.BlobsSwept != 0 || again.ManifestsDeleted != 0 {
					t.Errorf("second GC = %+v, %v", again, err)
				}
			})
		})
	}
}

func TestGCEmptyStorage(t *testing.T) {
	res, err := GC(context.Background(), drivers(t)["inmemory"](t), GCOptions{})
	if err != nil || !reflect.DeepEqual(res, GCResult{}) {
		t.Errorf("GC of nothing = %+v, %v", res, err)
	}
}

func TestPurgeUploads(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		d := reg.Driver()
		var old, fresh []string
		for i, name := range []string{"p/one", "p/two", "p/one"} {
			u, err := mustRepo(t, reg, name).NewUpload(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i < 2 {
				stamp := time.Now().Add(-200 * time.Hour).UTC().Format(time.RFC3339)
				if err := d.PutContent(ctx, uploadDir(name, u.ID())+"/startedat", []byte(stamp)); err != nil {
					t.Fatal(err)
				}
				old = append(old, uploadDir(name, u.ID()))
			} else {
				fresh = append(fresh, uploadDir(name, u.ID()))
			}
		}
		dry, err := PurgeUploads(ctx, d, 168*time.Hour, true)
		if err != nil || dry.Purged != 2 || dry.Kept != 1 {
			t.Fatalf("dry run = %+v, %v", dry, err)
		}
		for _, p := range append(old, fresh...) {
			if _, err := d.Stat(ctx, p); err != nil {
				t.Errorf("dry run removed %s", p)
			}
		}
		res, err := PurgeUploads(ctx, d, 168*time.Hour, false)
		if err != nil || res.Purged != 2 || res.Kept != 1 || res.Errors != 0 {
			t.Fatalf("PurgeUploads = %+v, %v", res, err)
		}
		for _, p := range old {
			if _, err := d.Stat(ctx, p); !driver.IsNotFound(err) {
				t.Errorf("%s not purged: %v", p, err)
			}
		}
		for _, p := range fresh {
			if _, err := d.Stat(ctx, p); err != nil {
				t.Errorf("fresh upload %s purged", p)
			}
		}
	})
}
