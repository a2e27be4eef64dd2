// Package cache holds the blob descriptor cache: a memo of digest ->
// (size, media type) per repository, so blob HEAD and GET skip a storage
// round trip. The in-memory LRU is the default; a Redis implementation of
// the same interface serves several replicas, and also implements
// LinkCache (manifest links). Payloads is the in-process cache of
// manifest payloads by digest.
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

// LinkKind says what a Link is.
type LinkKind string

// The links a LinkCache remembers.
const (
	// RevisionLink: manifest Name (a digest) has a revision link in the
	// repository. Only its presence is cached; the target is that digest.
	RevisionLink LinkKind = "revisions"
	// TagLink: tag Name's current link names the target.
	TagLink LinkKind = "tags"
)

// Link names a link file of a repository: a manifest's revision link or
// a tag's current link.
type Link struct {
	Repo string
	Kind LinkKind
	Name string // a digest for RevisionLink, a tag for TagLink
}

// LinkCache memoizes what manifest links name, for caches shared by every
// replica that writes the storage (Redis); an in-process cache cannot
// implement it, since a tag moved through another replica would stay
// cached here.
//
// It must never keep an entry older than the storage write that
// contradicts it, however reads and writes interleave, so the protocol is:
// a reader calls LookupLink; on a miss it gets a claim, reads storage and
// passes what it read to FillLink with that claim. A writer changes
// storage first and calls ClearLink after. The implementation must refuse
// a fill whose claim was taken before a ClearLink that completed before
// the fill (the reader may have read storage before the write).
// Failures are misses; a fill or clear the implementation cannot apply
// must not leave an entry it might serve later.
type LinkCache interface {
	// LookupLink returns the target cached for l (ok true), or a claim for
	// FillLink ("" when the cache cannot take a fill now).
	LookupLink(ctx context.Context, l Link) (target digest.Digest, claim string, ok bool)
	// FillLink records target for l if nothing cleared l since claim was
	// handed out.
	FillLink(ctx context.Context, l Link, claim string, target digest.Digest)
	// ClearLink forgets l and voids every claim handed out for it.
	ClearLink(ctx context.Context, l Link)
}
