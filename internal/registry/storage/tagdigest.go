package storage

import (
	"context"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/opencontainers/go-digest"
)

// TagDigest points tag at the manifest dgst, which must already be in the
// repository. It serves PUT .../manifests/<digest>?tag=T, where a manifest
// pushed by a non-canonical digest (sha512) keeps that digest under its tags.
func (r *Repository) TagDigest(ctx context.Context, tag string, dgst digest.Digest) error {
	if err := r.reg.writable(); err != nil {
		return err
	}
	if err := ValidateTag(tag); err != nil {
		return err
	}
	if _, err := r.StatManifest(ctx, dgst.String()); err != nil {
		return err
	}
	if err := r.reg.writeLink(ctx, tagIndexLinkDir(r.name, tag, dgst)+"/link", dgst); err != nil {
		return err
	}
	err := r.reg.writeLink(ctx, tagCurrentLink(r.name, tag), dgst)
	r.reg.clearLink(ctx, cache.Link{Repo: r.name, Kind: cache.TagLink, Name: tag})
	return err
}
