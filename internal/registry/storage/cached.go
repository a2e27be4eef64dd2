package storage

import (
	"context"
	"errors"
	"path"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// What a pull-through cache needs beyond the push path: storing a manifest
// copied from an upstream before its blobs, and evicting what it stored.

// PutCachedManifest stores a manifest copied from an upstream registry
// under dgst (which the payload must hash to) and, when tag is not empty,
// points tag at it. Unlike PutManifest it does not require the blobs and
// child manifests it references: the cache fetches them when asked.
func (r *Repository) PutCachedManifest(ctx context.Context, tag, mediaType string, payload []byte, dgst digest.Digest) error {
	if err := checkDigest(dgst); err != nil {
		return err
	}
	if _, err := r.putManifest(ctx, dgst.String(), mediaType, payload, false); err != nil {
		return err
	}
	if tag == "" {
		return nil
	}
	return r.TagDigest(ctx, tag, dgst)
}

// EvictManifest removes manifest dgst from the repository with the tags
// that point at it, then its bytes if no repository links that digest any
// more. It works whatever storage.delete.enabled says: it is for content
// a pull-through cache stored. freed reports whether the bytes went.
func (r *Repository) EvictManifest(ctx context.Context, dgst digest.Digest) (freed bool, err error) {
	if err := checkDigest(dgst); err != nil {
		return false, err
	}
	if err := r.reg.unlinkManifest(ctx, r.name, dgst); err != nil {
		return false, err
	}
	return r.reg.removeUnreferenced(ctx, dgst)
}

// EvictBlob unlinks blob dgst from the repository, then removes its bytes
// if no repository links that digest any more (as a layer or as a
// manifest). As EvictManifest, it is for content a pull-through cache
// stored. freed reports whether the bytes went.
//
// A push of the same blob to another repository at the very moment of the
// check can find the bytes present, then lose them; `gatehouse storage
// check` reports such a link.
func (r *Repository) EvictBlob(ctx context.Context, dgst digest.Digest) (freed bool, err error) {
	if err := checkDigest(dgst); err != nil {
		return false, err
	}
	if err := r.reg.d.Delete(ctx, layerLinkDir(r.name, dgst)); err != nil && !driver.IsNotFound(err) {
		return false, err
	}
	r.reg.cacheClear(ctx, r.name, dgst)
	return r.reg.removeUnreferenced(ctx, dgst)
}

// removeUnreferenced deletes the bytes of dgst when no repository links
// it as a layer or a manifest revision. Every repository directory counts,
// also one holding only blobs (a push under way has no manifest yet).
func (reg *Registry) removeUnreferenced(ctx context.Context, dgst digest.Digest) (bool, error) {
	referenced := false
	seen := map[string]bool{}
	err := reg.d.Walk(ctx, reposRoot, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		base := path.Base(fi.Path())
		if !strings.HasPrefix(base, "_") {
			return nil
		}
		name := strings.TrimPrefix(path.Dir(fi.Path()), reposRoot+"/")
		if (base == "_layers" || base == "_manifests") && !seen[name] {
			seen[name] = true
			for _, p := range []string{layerLinkDir(name, dgst) + "/link", revisionLinkDir(name, dgst) + "/link"} {
				_, err := reg.d.Stat(ctx, p)
				if err == nil {
					referenced = true
					return errStopWalk
				}
				if !driver.IsNotFound(err) {
					return err
				}
			}
		}
		return driver.ErrSkipDir
	})
	if errors.Is(err, errStopWalk) {
		err = nil
	}
	if driver.IsNotFound(err) {
		err = nil
	}
	if err != nil || referenced {
		return false, err
	}
	if err := reg.d.Delete(ctx, blobDir(dgst)); err != nil {
		if driver.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	reg.cacheClear(ctx, "", dgst)
	return true, nil
}
