// Package storage is the registry logic over a storage driver: blobs,
// uploads, manifests, tags, referrers and garbage collection, kept in
// distribution's (registry:2) layout under /docker/registry/v2 so that
// data is interchangeable with registry:2 in both directions.
//
// Durability rules: a blob becomes visible only after its bytes were
// hashed, verified, flushed and moved into place; links are replaced
// atomically. A crash at any point leaves no half-written blob visible.
package storage

import (
	_ "crypto/sha256" // digest algorithms: registered for go-digest
	_ "crypto/sha512"
	"log/slog"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/gatehouse-registry/gatehouse/internal/reference"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// Options configure a Registry.
type Options struct {
	// Delete enables deleting blobs, manifests and tags (ErrUnsupported
	// otherwise), as storage.delete.enabled does.
	Delete bool
	// ReadOnly refuses every write with ErrReadOnly.
	ReadOnly bool
	// Cache memoizes blob descriptors; nil means no cache. When it also
	// implements cache.LinkCache (Redis), manifest GET reads tags' current
	// links and revision links through it.
	Cache cache.BlobDescriptorCache
	// ManifestCacheBytes bounds the in-process cache of manifest payloads
	// by digest: 0 means DefaultManifestCacheBytes, negative means none.
	ManifestCacheBytes int64
	// ManifestURLs restricts the urls of non-distributable layers in
	// pushed manifests (validation.manifests.urls); the zero value
	// applies only the structural rules.
	ManifestURLs URLPolicy
	// Logger receives warnings about unexpected storage content; nil
	// discards them.
	Logger *slog.Logger
	// Redirector, when set, hands out blob URLs in place of the driver's
	// own (the redirect storage middleware).
	Redirector driver.Redirector
}

// Registry is the registry logic over a driver. It is safe for concurrent
// use.
type Registry struct {
	d    driver.Driver
	opts Options
	log  *slog.Logger
	// dirs is d when it makes directories appear and disappear whole
	// (driver.SupportsAtomicDirs), else nil. Tags are then created and
	// removed whole, and listed without reading each one.
	dirs driver.AtomicDirs
	// tags caches tag listings when dirs is set.
	tags tagCache
	// links is opts.Cache when it is a cache.LinkCache, else nil.
	links cache.LinkCache
	// payloads holds manifest payloads by digest (see GetManifest).
	payloads *cache.Payloads

	// uploadLocks serialises operations on one upload within this
	// process (a client racing two PATCHes on the same upload).
	uploadLocks uploadLocks
}

// DefaultManifestCacheBytes is the default budget of the in-process
// manifest payload cache.
const DefaultManifestCacheBytes = 32 << 20

// maxCachedManifest is the largest manifest payload kept in that cache
// (the API's default manifest size limit).
const maxCachedManifest = 4 << 20

// New returns a Registry storing its content in d.
func New(d driver.Driver, opts Options) *Registry {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{d: d, opts: opts, log: log}
	r.links, _ = opts.Cache.(cache.LinkCache)
	budget := opts.ManifestCacheBytes
	if budget == 0 {
		budget = DefaultManifestCacheBytes
	}
	r.payloads = cache.NewPayloads(budget, maxCachedManifest)
	if a, ok := d.(driver.AtomicDirs); ok && driver.SupportsAtomicDirs(d) {
		r.dirs = a
	}
	return r
}

// Driver returns the storage driver.
func (r *Registry) Driver() driver.Driver { return r.d }

// Repository is one repository (a name) of a Registry.
type Repository struct {
	reg  *Registry
	name string
}

// ValidateName checks a repository name with reference.ValidateRepository
// (distribution's grammar, at most 255 characters).
func ValidateName(name string) error {
	if err := reference.ValidateRepository(name); err != nil {
		return errorf(ErrNameInvalid, map[string]any{"name": name}, "%s", reference.Reason(err))
	}
	return nil
}

// Repository returns the repository called name, which need not exist
// yet. It returns ErrNameInvalid for a name outside the grammar.
func (r *Registry) Repository(name string) (*Repository, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return &Repository{reg: r, name: name}, nil
}

// Name returns the repository's name.
func (r *Repository) Name() string { return r.name }
