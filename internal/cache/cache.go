// Package cache holds the blob descriptor cache: a memo of digest ->
// (size, media type) per repository, so blob HEAD and GET skip a storage
// round trip. The in-memory LRU is the default; a Redis implementation of
// the same interface serves several replicas.
package cache

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
)

// ErrCacheMiss is returned by Stat when the cache holds nothing for the key.
var ErrCacheMiss = errors.New("blob descriptor cache miss")

// Descriptor is what the cache remembers about a blob.
type Descriptor struct {
	Digest    digest.Digest
	Size      int64
	MediaType string
}

// BlobDescriptorCache memoizes blob descriptors. repo "" is the global
// scope (the blob exists in the registry); a repository name scopes the
// entry to that repository's links. Implementations are safe for
// concurrent use and must treat their own failures as misses where they
// can: a cache never decides what exists, storage does.
type BlobDescriptorCache interface {
	// Stat returns the cached descriptor or ErrCacheMiss.
	Stat(ctx context.Context, repo string, dgst digest.Digest) (Descriptor, error)
	// Set remembers desc for (repo, dgst).
	Set(ctx context.Context, repo string, dgst digest.Digest, desc Descriptor) error
	// Clear forgets (repo, dgst).
	Clear(ctx context.Context, repo string, dgst digest.Digest) error
}
