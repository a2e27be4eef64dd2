package storage

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

var errTODO = errors.New("not implemented yet")

// PutResult is what PutManifest stored.
type PutResult struct {
	Digest  digest.Digest
	Subject *digest.Digest // the manifest's subject, if it has one
}

// PutManifest validates and stores a manifest under ref (a tag or a digest).
func (r *Repository) PutManifest(ctx context.Context, ref, mediaType string, payload []byte) (PutResult, error) {
	return PutResult{}, errTODO
}

// GetManifest returns a manifest by tag or digest.
func (r *Repository) GetManifest(ctx context.Context, ref string) (mediaType string, payload []byte, dgst digest.Digest, err error) {
	return "", nil, "", errTODO
}

// StatManifest describes a manifest by tag or digest.
func (r *Repository) StatManifest(ctx context.Context, ref string) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// DeleteManifest removes the manifest's revision link, the tags pointing to
// it and its referrers index entry.
func (r *Repository) DeleteManifest(ctx context.Context, dgst digest.Digest) error { return errTODO }

// DeleteTag removes a tag (the manifest stays).
func (r *Repository) DeleteTag(ctx context.Context, tag string) error { return errTODO }

// Tags lists tags after last (exclusive), at most n (n <= 0 = all), sorted.
func (r *Repository) Tags(ctx context.Context, last string, n int) (tags []string, more bool, err error) {
	return nil, false, errTODO
}

// Referrers lists the manifests whose subject is subject, filtered by
// artifactType when it is not "".
func (r *Repository) Referrers(ctx context.Context, subject digest.Digest, artifactType string) ([]Descriptor, error) {
	return nil, errTODO
}

// GCOptions tune GC.
type GCOptions struct {
	DryRun         bool
	DeleteUntagged bool
	// Progress, when set, receives one line per step.
	Progress func(format string, args ...any)
}

// GCResult counts what GC did (or would do, in a dry run).
type GCResult struct {
	Repositories      int
	ManifestsMarked   int
	BlobsMarked       int
	ManifestsDeleted  int
	BlobsSwept        int
	BytesFreed        int64
	LayerLinksRemoved int
}

// GC marks every blob reachable from a manifest and deletes the rest. The
// registry must not accept writes while it runs.
func GC(ctx context.Context, d driver.Driver, opts GCOptions) (GCResult, error) {
	return GCResult{}, errTODO
}

// PurgeResult counts removed uploads.
type PurgeResult struct {
	Purged int
	Errors int
}

// PurgeUploads removes uploads started more than olderThan ago.
func PurgeUploads(ctx context.Context, d driver.Driver, olderThan time.Duration, dryRun bool) (PurgeResult, error) {
	return PurgeResult{}, errTODO
}
