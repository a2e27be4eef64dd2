package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// errCrash stands for the process dying: the write that returns it and
// every later one never happen.
var errCrash = errors.New("simulated crash")

// crashDriver lets a fixed number of writes (PutContent, Move, Delete)
// through and fails every later one, as if the process had been killed
// after them.
type crashDriver struct {
	driver.Driver
	mu     sync.Mutex
	budget int // writes left; <0 = unlimited
}

func (c *crashDriver) spend() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.budget < 0 {
		return nil
	}
	if c.budget == 0 {
		return errCrash
	}
	c.budget--
	return nil
}

func (c *crashDriver) arm(n int) {
	c.mu.Lock()
	c.budget = n
	c.mu.Unlock()
}

func (c *crashDriver) PutContent(ctx context.Context, p string, b []byte) error {
	if err := c.spend(); err != nil {
		return err
	}
	return c.Driver.PutContent(ctx, p, b)
}

func (c *crashDriver) Move(ctx context.Context, src, dst string) error {
	if err := c.spend(); err != nil {
		return err
	}
	return c.Driver.Move(ctx, src, dst)
}

func (c *crashDriver) Delete(ctx context.Context, p string) error {
	if err := c.spend(); err != nil {
		return err
	}
	return c.Driver.Delete(ctx, p)
}

// crashDirs is a crashDriver over a driver with atomic directories: each
// CreateDir or RemoveDir is one write, which happens whole or not at all.
type crashDirs struct {
	*crashDriver
	dirs driver.AtomicDirs
}

func (c crashDirs) CreateDir(ctx context.Context, p string, files map[string][]byte) error {
	if err := c.spend(); err != nil {
		return err
	}
	return c.dirs.CreateDir(ctx, p, files)
}

func (c crashDirs) RemoveDir(ctx context.Context, p string) error {
	if err := c.spend(); err != nil {
		return err
	}
	return c.dirs.RemoveDir(ctx, p)
}

// crashing wraps d in a crashDriver (not armed), keeping d's atomic
// directories if it has them, and returns the driver to use and the
// crashDriver to arm.
func crashing(d driver.Driver) (driver.Driver, *crashDriver) {
	cd := &crashDriver{Driver: d, budget: -1}
	if a, ok := d.(driver.AtomicDirs); ok {
		return crashDirs{cd, a}, cd
	}
	return cd, cd
}

// checkServable fails unless every tag r lists can be pulled: its
// manifest resolves and every blob it references can be opened.
func checkServable(t *testing.T, r *Repository) []string {
	t.Helper()
	ctx := context.Background()
	tags, _, err := r.Tags(ctx, "", 0)
	if err != nil && !errors.Is(err, ErrNameUnknown) {
		t.Fatalf("Tags: %v", err)
	}
	for _, tag := range tags {
		_, payload, _, err := r.GetManifest(ctx, tag)
		if err != nil {
			t.Errorf("tag %s is listed but its manifest is not served: %v", tag, err)
			continue
		}
		m, err := parseStored(payload)
		if err != nil {
			t.Errorf("tag %s: %v", tag, err)
			continue
		}
		refs := slices.Clone(m.Layers)
		if m.Config != nil {
			refs = append(refs, *m.Config)
		}
		for _, b := range refs {
			br, err := r.OpenBlob(ctx, b.Digest)
			if err != nil {
				t.Errorf("tag %s: blob %s: %v", tag, b.Digest, err)
				continue
			}
			_ = br.Close()
		}
	}
	return tags
}

// TestCrashDuringTagPush stops a tag push after each of its writes in turn:
// whatever was written, no tag is listed that cannot be pulled, and the
// tag can be pushed again.
func TestCrashDuringTagPush(t *testing.T) {
	for name, nd := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			for n := 0; ; n++ {
				d, cd := crashing(nd(t))
				reg := New(d, Options{Delete: true})
				r := mustRepo(t, reg, "crash/push")
				pushImage(t, r, "old", "old")
				cfg := pushBlob(t, r, []byte(`{"seed":"new"}`))
				layer := pushBlob(t, r, []byte("new layer"))
				payload := image(t, cfg, []v1.Descriptor{layer}, nil, "")
				cd.arm(n)
				_, err := r.PutManifest(context.Background(), "new", v1.MediaTypeImageManifest, payload)
				done := err == nil
				if !done && !errors.Is(err, errCrash) {
					t.Fatalf("after %d writes: PutManifest: %v", n, err)
				}
				cd.arm(-1)
				tags := checkServable(t, r)
				if done && !slices.Contains(tags, "new") {
					t.Errorf("complete push: tags %v lack new", tags)
				}
				if !slices.Contains(tags, "old") {
					t.Errorf("after %d writes: tags %v lost old", n, tags)
				}
				if done {
					if n < 3 {
						t.Errorf("PutManifest completed with %d writes; the test expects at least 3", n)
					}
					return
				}
				if n > 20 {
					t.Fatal("PutManifest never completed")
				}
			}
		})
	}
}

// TestCrashDuringManifestDelete stops a manifest delete after each of its
// writes in turn: no tag is left listed that points at a manifest whose
// revision link is gone.
func TestCrashDuringManifestDelete(t *testing.T) {
	for name, nd := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			for n := 0; ; n++ {
				d, cd := crashing(nd(t))
				reg := New(d, Options{Delete: true})
				r := mustRepo(t, reg, "crash/delete")
				desc, _, _ := pushImage(t, r, "a", "x")
				if _, err := r.PutManifest(context.Background(), "b", v1.MediaTypeImageManifest, mustManifest(t, reg, r, desc.Digest)); err != nil {
					t.Fatal(err)
				}
				pushImage(t, r, "other", "y")
				cd.arm(n)
				err := r.DeleteManifest(context.Background(), desc.Digest)
				done := err == nil
				if !done && !errors.Is(err, errCrash) {
					t.Fatalf("after %d writes: DeleteManifest: %v", n, err)
				}
				cd.arm(-1)
				tags := checkServable(t, r)
				if !slices.Contains(tags, "other") {
					t.Errorf("after %d writes: tags %v lost other", n, tags)
				}
				// Every tag directory left behind can be deleted or is
				// gone: nothing stays listed and undeletable.
				for _, tag := range tags {
					if tag == "other" {
						continue
					}
					if err := r.DeleteTag(context.Background(), tag); err != nil {
						t.Errorf("after %d writes: DeleteTag(%s): %v", n, tag, err)
					}
				}
				if done {
					if slices.Contains(tags, "a") || slices.Contains(tags, "b") {
						t.Errorf("complete delete left tags %v", tags)
					}
					return
				}
				if n > 20 {
					t.Fatal("DeleteManifest never completed")
				}
			}
		})
	}
}

// TestDamagedTagsHeal covers storage damaged before the write order was
// fixed (or by hand): a tag directory without a current link, and a tag
// whose current link names a manifest whose revision link or data is
// gone. Such tags are not served, and DELETE removes what is left of them
// (answering that the tag is unknown). Drivers without atomic directories
// do not list them either; with atomic directories, tags are listed by one
// directory read (our own writes leave no such tag), as registry:2 lists
// them.
func TestDamagedTagsHeal(t *testing.T) {
	damage := map[string]func(t *testing.T, d driver.Driver, name, tag string, dg digest.Digest){
		"no current link": func(t *testing.T, d driver.Driver, name, tag string, _ digest.Digest) {
			if err := d.Delete(context.Background(), tagDir(name, tag)+"/current"); err != nil {
				t.Fatal(err)
			}
		},
		"no revision link": func(t *testing.T, d driver.Driver, name, _ string, dg digest.Digest) {
			if err := d.Delete(context.Background(), revisionLinkDir(name, dg)); err != nil {
				t.Fatal(err)
			}
		},
		"no manifest data": func(t *testing.T, d driver.Driver, _, _ string, dg digest.Digest) {
			if err := d.Delete(context.Background(), blobDir(dg)); err != nil {
				t.Fatal(err)
			}
		},
		"unreadable current link": func(t *testing.T, d driver.Driver, name, tag string, _ digest.Digest) {
			if err := d.PutContent(context.Background(), tagCurrentLink(name, tag), []byte("garbage")); err != nil {
				t.Fatal(err)
			}
		},
	}
	for what, harm := range damage {
		t.Run(what, func(t *testing.T) {
			forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
				ctx := context.Background()
				r := mustRepo(t, reg, "heal/me")
				pushImage(t, r, "good", "g")
				desc, _, _ := pushImage(t, r, "bad", "b")
				harm(t, reg.Driver(), r.Name(), "bad", desc.Digest)
				tags, _, err := r.Tags(ctx, "", 0)
				if err != nil {
					t.Fatal(err)
				}
				want, wantFirst, wantMore := "[good]", "[good]", false
				if driver.SupportsAtomicDirs(reg.Driver()) {
					want, wantFirst, wantMore = "[bad good]", "[bad]", true
				}
				if fmt.Sprint(tags) != want {
					t.Errorf("Tags = %v, want %s", tags, want)
				}
				if page, more, err := r.Tags(ctx, "", 1); err != nil || fmt.Sprint(page) != wantFirst || more != wantMore {
					t.Errorf("Tags(n=1) = %v, %v, %v; want %s, %v", page, more, err, wantFirst, wantMore)
				}
				if what == "no manifest data" {
					// A process holding the payload in its cache (by
					// digest, so still right) serves it while the links
					// stand; one without it does not.
					if _, _, _, err := r.GetManifest(ctx, "bad"); err != nil {
						t.Errorf("GetManifest(bad) with the payload cached: %v", err)
					}
					r = mustRepo(t, New(reg.Driver(), Options{Delete: true}), r.Name())
				}
				_, _, _, err = r.GetManifest(ctx, "bad")
				wantErr(t, "GetManifest(bad)", err, ErrManifestUnknown)
				wantErr(t, "DeleteTag(bad)", r.DeleteTag(ctx, "bad"), ErrManifestUnknown)
				if _, err := reg.Driver().Stat(ctx, tagDir(r.Name(), "bad")); !driver.IsNotFound(err) {
					t.Errorf("DeleteTag left the damaged tag's directory: %v", err)
				}
				wantErr(t, "DeleteTag(bad) again", r.DeleteTag(ctx, "bad"), ErrManifestUnknown)
				if err := r.DeleteTag(ctx, "good"); err != nil {
					t.Errorf("DeleteTag(good): %v", err)
				}
			})
		})
	}
}

// danglingLayerLinks lists name's layer links whose blob data is gone.
func danglingLayerLinks(t *testing.T, d driver.Driver, name string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	err := d.Walk(ctx, repoPath(name)+"/_layers", func(fi driver.FileInfo) error {
		if fi.IsDir() || !strings.HasSuffix(fi.Path(), "/link") {
			return nil
		}
		b, err := d.GetContent(ctx, fi.Path())
		if err != nil {
			return err
		}
		dg, err := ParseLink(b)
		if err != nil {
			return err
		}
		if _, err := d.Stat(ctx, blobDataPath(dg)); driver.IsNotFound(err) {
			out = append(out, fi.Path())
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil && !driver.IsNotFound(err) {
		t.Fatal(err)
	}
	return out
}

// TestCrashDuringGC stops GC after each of its writes in turn: no layer
// link is left naming a swept blob, and every tag still pulls.
func TestCrashDuringGC(t *testing.T) {
	for _, untagged := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete-untagged=%t", untagged), func(t *testing.T) {
			for n := 0; ; n++ {
				cd := &crashDriver{Driver: drivers(t)["inmemory"](t), budget: -1}
				reg := New(cd, Options{Delete: true})
				buildGCFixture(t, reg)
				cd.arm(n)
				_, err := GC(context.Background(), cd, GCOptions{DeleteUntagged: untagged})
				done := err == nil
				if !done && !errors.Is(err, errCrash) {
					t.Fatalf("after %d writes: GC: %v", n, err)
				}
				cd.arm(-1)
				for _, name := range []string{"app", "lib"} {
					checkServable(t, mustRepo(t, reg, name))
					if dl := danglingLayerLinks(t, cd, name); len(dl) > 0 {
						t.Errorf("after %d writes: layer links to swept blobs: %v", n, dl)
					}
				}
				if done {
					return
				}
				if n > 200 {
					t.Fatal("GC never completed")
				}
			}
		})
	}
}

// TestGCRemovesLinksInRepositoriesWithoutManifests: a push that never got
// to its manifest leaves layer links in a repository GC does not see as
// one (no _manifests); sweeping the blobs must take those links too.
func TestGCRemovesLinksInRepositoriesWithoutManifests(t *testing.T) {
	forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
		r := mustRepo(t, reg, "half/pushed")
		b := pushBlob(t, r, []byte("a layer whose manifest never came"))
		res, err := GC(context.Background(), reg.Driver(), GCOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.BlobsSwept != 1 || res.LayerLinksRemoved != 1 {
			t.Errorf("GC swept %d blobs and %d layer links, want 1 and 1", res.BlobsSwept, res.LayerLinksRemoved)
		}
		if dl := danglingLayerLinks(t, reg.Driver(), r.Name()); len(dl) > 0 {
			t.Errorf("layer links to swept blobs: %v", dl)
		}
		_, err = r.StatBlob(context.Background(), b.Digest)
		wantErr(t, "StatBlob after GC", err, ErrBlobUnknown)
	})
}

// failPuts fails every PutContent, as a full disk does.
type failPuts struct{ driver.Driver }

func (failPuts) PutContent(context.Context, string, []byte) error {
	return fmt.Errorf("put: %w", driver.ErrNoSpace)
}

// TestNewUploadFailureLeavesNothing: an upload that could not be started
// (its startedat not written) must not leave its empty data behind.
func TestNewUploadFailureLeavesNothing(t *testing.T) {
	for name, nd := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			d := nd(t)
			r := mustRepo(t, New(failPuts{d}, Options{}), "full/disk")
			_, err := r.NewUpload(context.Background())
			wantErr(t, "NewUpload", err, ErrStorageFull)
			var left []string
			err = d.Walk(context.Background(), uploadsDir(r.Name()), func(fi driver.FileInfo) error {
				left = append(left, fi.Path())
				return nil
			})
			if err != nil && !driver.IsNotFound(err) {
				t.Fatal(err)
			}
			if len(left) > 0 {
				t.Errorf("a failed NewUpload left %v", left)
			}
		})
	}
}
