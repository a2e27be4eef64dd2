package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

// checkFixture is a filesystem registry with two healthy images and one of
// each problem Check knows, aged so that debris counts as stale.
type checkFixture struct {
	root string
	d    driver.Driver
	reg  *Registry
	good []string // blob data paths that must survive a repair
}

func kinds(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p.Kind)+" "+p.Repository)
	}
	slices.Sort(out)
	return out
}

func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	fd, err := filesystem.New(filesystem.Options{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	d := driver.Checked(fd)
	reg := New(d, Options{Delete: true})
	f := &checkFixture{root: root, d: d, reg: reg}
	app := mustRepo(t, reg, "app")
	desc, _, blobs := pushImage(t, app, "good", "g")
	f.good = append(f.good, blobDataPath(desc.Digest))
	for _, b := range blobs {
		f.good = append(f.good, blobDataPath(b.Digest))
	}
	// dangling-tag: the tag's manifest lost its revision link.
	lost, _, _ := pushImage(t, app, "lost", "l")
	must(t, d.Delete(ctx, revisionLinkDir("app", lost.Digest)))
	// incomplete-tag: a push stopped before the current link.
	half, _, _ := pushImage(t, app, "half", "h")
	must(t, d.Delete(ctx, tagDir("app", "half")+"/current"))
	f.age(t, filepath.Join("repositories", "app", "_manifests", "tags", "half"))
	_ = half
	// revision-missing-blob and layer-missing-blob.
	lib := mustRepo(t, reg, "lib")
	gone, _, goneBlobs := pushImage(t, lib, "gone", "x")
	must(t, lib.DeleteTag(ctx, "gone"))
	must(t, d.Delete(ctx, blobDir(gone.Digest)))
	must(t, d.Delete(ctx, blobDir(goneBlobs[1].Digest)))
	// A blob directory without data, and a stale temporary in it.
	empty := blobDir(digest.FromString("never written"))
	fsEmpty := filepath.Join(root, filepath.FromSlash(empty))
	must(t, os.MkdirAll(fsEmpty, 0o750))
	must(t, os.WriteFile(filepath.Join(fsEmpty, ".gatehouse-tmp-1"), []byte("half"), 0o600))
	f.age(t, filepath.Join("blobs", "sha256"))
	// A fresh temporary: a write in flight, not a problem.
	must(t, os.WriteFile(filepath.Join(root, "docker", "registry", "v2", "repositories", "app", "_manifests", ".gatehouse-tmp-2"), nil, 0o600))
	// A stale upload.
	up, err := mustRepo(t, reg, "uploads/only").NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must(t, d.PutContent(ctx, up.dir()+"/startedat", []byte(time.Now().Add(-200*time.Hour).UTC().Format(time.RFC3339))))
	return f
}

// age backdates everything below rel (relative to the registry root) by
// two hours.
func (f *checkFixture) age(t *testing.T, rel string) {
	t.Helper()
	old := time.Now().Add(-2 * time.Hour)
	// Children first: touching a child does not change its parent's
	// time, but creating one did.
	var paths []string
	err := filepath.Walk(filepath.Join(f.root, "docker", "registry", "v2", rel), func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	})
	must(t, err)
	for _, p := range slices.Backward(paths) {
		must(t, os.Chtimes(p, old, old))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckAndRepair(t *testing.T) {
	ctx := context.Background()
	f := newCheckFixture(t)
	res, err := Check(ctx, f.d, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"dangling-tag app",
		"empty-blob-dir ",
		"incomplete-tag app",
		"layer-missing-blob lib",
		"revision-missing-blob lib",
		"stale-temporary ",
		"stale-upload uploads/only",
	}
	if diff := cmp.Diff(want, kinds(res.Problems)); diff != "" {
		t.Errorf("problems (-want +got):\n%s\n%v", diff, res.Problems)
	}
	if res.InFlight != 1 || res.Tags != 1 || res.Repositories != 3 {
		t.Errorf("in flight %d, tags %d, repositories %d; want 1, 1, 3", res.InFlight, res.Tags, res.Repositories)
	}
	for _, p := range res.Problems {
		if p.Remove == "" {
			t.Errorf("%v: nothing to remove", p)
		}
	}

	rr, err := Repair(ctx, f.d, res.Problems, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Removed != len(want) {
		t.Errorf("Repair removed %d, want %d", rr.Removed, len(want))
	}
	res, err = Check(ctx, f.d, CheckOptions{VerifyDigests: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 {
		t.Errorf("after repair: %v", res.Problems)
	}
	for _, p := range f.good {
		if _, err := f.d.Stat(ctx, p); err != nil {
			t.Errorf("repair removed referenced data %s: %v", p, err)
		}
	}
	checkServable(t, mustRepo(t, f.reg, "app"))
}

func TestCheckVerifyDigests(t *testing.T) {
	ctx := context.Background()
	f := newCheckFixture(t)
	app := mustRepo(t, f.reg, "app")
	b512 := []byte("a sha512 blob")
	up, err := app.NewUpload(ctx)
	must(t, err)
	_, err = up.Append(ctx, bytes.NewReader(b512))
	must(t, err)
	_, err = up.Commit(ctx, digest.SHA512.FromBytes(b512), -1)
	must(t, err)
	// Corrupt the good image's layer and the sha512 blob in place.
	for _, p := range []string{f.good[2], blobDataPath(digest.SHA512.FromBytes(b512))} {
		must(t, os.WriteFile(filepath.Join(f.root, filepath.FromSlash(p)), []byte("rotten"), 0o600))
	}
	res, err := Check(ctx, f.d, CheckOptions{VerifyDigests: true})
	must(t, err)
	var corrupt []string
	for _, p := range res.Problems {
		if p.Kind == CorruptBlob {
			corrupt = append(corrupt, p.Path)
			if p.Remove != "" {
				t.Errorf("%v would be removed", p)
			}
		}
	}
	slices.Sort(corrupt)
	wantCorrupt := []string{f.good[2], blobDataPath(digest.SHA512.FromBytes(b512))}
	slices.Sort(wantCorrupt)
	if diff := cmp.Diff(wantCorrupt, corrupt); diff != "" {
		t.Errorf("corrupt blobs (-want +got):\n%s", diff)
	}
	if res.Verified != res.Blobs || res.Blobs == 0 {
		t.Errorf("verified %d of %d blobs", res.Verified, res.Blobs)
	}
	if _, err := Repair(ctx, f.d, res.Problems, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range wantCorrupt {
		if _, err := f.d.Stat(ctx, p); err != nil {
			t.Errorf("repair removed corrupt but referenced data %s: %v", p, err)
		}
	}
}

func TestRemoveDebris(t *testing.T) {
	ctx := context.Background()
	f := newCheckFixture(t)
	rr, err := RemoveDebris(ctx, f.d, time.Hour)
	must(t, err)
	if rr.Removed != 2 {
		t.Errorf("removed %d, want 2 (the stale temporary and its blob directory)", rr.Removed)
	}
	res, err := Check(ctx, f.d, CheckOptions{})
	must(t, err)
	for _, p := range res.Problems {
		if p.Kind == StaleTemporary || p.Kind == EmptyBlobDir {
			t.Errorf("left %v", p)
		}
	}
	if res.InFlight != 1 {
		t.Errorf("the fresh temporary was removed (in flight: %d)", res.InFlight)
	}
}
