// Package proxy is the pull-through cache: repositories mirrored from
// upstream registries, served from storage and filled on demand.
//
// A manifest asked for by tag is revalidated against the upstream (HEAD)
// on every pull; the cached copy answers when the upstream is unreachable,
// rate limiting (429), failing (5xx) or refusing our credentials. A
// manifest asked for by digest, and a blob, are served from storage when
// there, else fetched once: a blob streams to every client asking for it
// while it is being stored, from one upstream GET. Content expires after
// its upstream's TTL, and with a size cap the least recently pulled blobs
// are evicted; what the cache stored and when is kept in storage, so it
// survives restarts. Hosted repositories (under no upstream's prefix) are
// never touched.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Upstream is one mirrored registry.
type Upstream struct {
	// Prefix is the local repository prefix it is mirrored under: name
	// "<Prefix>/<repo>" is "<repo>" upstream. Empty: every repository.
	Prefix   string
	URL      string
	Username string
	Password secret.Secret
	// TTL is how long fetched content stays; <= 0 keeps it until evicted
	// for space.
	TTL time.Duration
}

// Options configure a Cache.
type Options struct {
	Registry  *storage.Registry
	Upstreams []Upstream
	// MaxSize caps the bytes of cached blobs (0: no cap).
	MaxSize int64
	Logger  *slog.Logger
	// Metrics registers the cache's metrics when set.
	Metrics prometheus.Registerer
	// Transport carries upstream calls; nil: NewTransport().
	Transport http.RoundTripper
	// StallTimeout ends an upstream body that sends nothing for this long
	// (default 1m).
	StallTimeout time.Duration
	// Interval is how often expiry and the size cap are enforced and the
	// state is saved (default 1m).
	Interval time.Duration
	// TempDir holds blobs while they are fetched when the readers cannot
	// read storage's own copy (storage whose files are not local, or that
	// gave up part way) (default os.TempDir()).
	TempDir string
	// Now is the clock (tests).
	Now func() time.Time
}

// Cache is the pull-through cache. Create it with New, run its
// housekeeping with Run, save its state with Close.
type Cache struct {
	opts    Options
	reg     *storage.Registry
	log     *slog.Logger
	ups     []*upstream
	metrics *metrics
	state   *state
	now     func() time.Time

	// ctx is the lifetime of background fetches; cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	fetches   map[string]*fetch // blob fetches in flight, by repository@digest
	fetching  sync.WaitGroup    // the goroutines of those fetches, until stored
	manifests group             // manifest fetches and revalidations in flight
	kick      chan struct{}     // asks Run to enforce the size cap now
}

type upstream struct {
	Upstream
	remote *remote
}

// manifestAccept is what a manifest request accepts from an upstream.
var manifestAccept = []string{
	v1.MediaTypeImageIndex,
	v1.MediaTypeImageManifest,
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// New returns a Cache over opts.Registry and loads its state from storage.
func New(ctx context.Context, opts Options) (*Cache, error) {
	if opts.Registry == nil {
		return nil, errors.New("proxy: no storage")
	}
	if len(opts.Upstreams) == 0 {
		return nil, errors.New("proxy: no upstream")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport()
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{opts: opts, reg: opts.Registry, log: opts.Logger, now: opts.Now,
		fetches: map[string]*fetch{}, kick: make(chan struct{}, 1)}
	for _, u := range opts.Upstreams {
		r, err := newRemote(u.URL, u.Username, u.Password, opts.Transport, opts.StallTimeout, opts.Now)
		if err != nil {
			return nil, err
		}
		c.ups = append(c.ups, &upstream{Upstream: u, remote: r})
	}
	var err error
	if c.metrics, err = newMetrics(opts.Metrics); err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if c.state, err = loadState(ctx, opts.Registry.Driver(), c.log); err != nil {
		c.cancel()
		return nil, err
	}
	c.metrics.cachedBytes.Set(float64(c.state.usage()))
	return c, nil
}

// route finds the upstream of repository name and its name there.
func (c *Cache) route(name string) (*upstream, string, bool) {
	for _, u := range c.ups {
		if u.Prefix == "" {
			return u, name, true
		}
		if rest, ok := strings.CutPrefix(name, u.Prefix+"/"); ok && rest != "" {
			return u, rest, true
		}
	}
	return nil, "", false
}

// Proxied reports whether repository name is mirrored from an upstream
// (and so refuses pushes and deletes).
func (c *Cache) Proxied(name string) bool {
	_, _, ok := c.route(name)
	return ok
}

// PrepareManifest makes storage hold the manifest ref (a tag or a digest)
// of the mirrored repository name, as current as the upstream can tell:
// a tag is revalidated with a HEAD and moved when the upstream moved it;
// a digest is fetched when missing. When the upstream cannot answer and a
// copy is cached, nil is returned and the copy is served. Upstream
// answers come back as storage errors (404: unknown) or *UpstreamError.
func (c *Cache) PrepareManifest(ctx context.Context, name, ref string) error {
	up, rname, ok := c.route(name)
	if !ok {
		return nil
	}
	repo, err := c.reg.Repository(name)
	if err != nil {
		return err
	}
	if dgst, err := digest.Parse(ref); err == nil {
		if _, err := repo.StatManifest(ctx, ref); err == nil {
			c.metrics.hit("manifest")
			c.state.touch(kindManifest, name, dgst, c.now())
			return nil
		}
		c.metrics.miss("manifest")
		_, err := c.manifests.do(name+"@"+ref, func() (any, error) {
			return nil, c.fetchManifest(up, rname, repo, "", dgst)
		})
		return err
	}
	// A tag: ask the upstream which digest it names now.
	local, lerr := repo.StatManifest(ctx, ref)
	v, err := c.manifests.do(name+":"+ref, func() (any, error) {
		return c.revalidate(up, rname, repo, ref, local.Digest)
	})
	if err != nil {
		if lerr == nil && fallback(err) {
			c.log.WarnContext(ctx, "upstream unavailable; serving the cached manifest", "repository", name, "tag", ref, "err", err)
			c.metrics.stale.WithLabelValues("manifest").Inc()
			c.state.touch(kindManifest, name, local.Digest, c.now())
			return nil
		}
		return err
	}
	if fetched, _ := v.(bool); fetched {
		c.metrics.miss("manifest")
	} else {
		c.metrics.hit("manifest")
		c.state.touch(kindManifest, name, local.Digest, c.now())
	}
	return nil
}

// revalidate asks the upstream for tag's digest and brings storage up to
// date: nothing when it matches cached, a retag when the manifest is
// cached under another tag, else a fetch. It reports whether it fetched.
func (c *Cache) revalidate(up *upstream, rname string, repo *storage.Repository, tag string, cached digest.Digest) (any, error) {
	ctx, cancel := context.WithTimeout(c.ctx, smallCallTimeout)
	defer cancel()
	resp, err := up.remote.get(ctx, http.MethodHead, rname, "/manifests/"+tag, manifestAccept)
	if err != nil {
		return false, notFound(err, storage.ErrManifestUnknown)
	}
	_ = resp.Body.Close()
	dgst, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		// No digest in the HEAD answer: fetch by tag and hash it.
		return true, c.fetchManifest(up, rname, repo, tag, "")
	}
	if dgst == cached {
		return false, nil
	}
	if _, err := repo.StatManifest(ctx, dgst.String()); err == nil {
		if err := repo.TagDigest(ctx, tag, dgst); err != nil {
			return false, err
		}
		return false, nil
	}
	return true, c.fetchManifest(up, rname, repo, tag, dgst)
}

// fetchManifest GETs a manifest (by dgst, else by tag), checks it against
// dgst and stores it, tagged tag when tag is set.
func (c *Cache) fetchManifest(up *upstream, rname string, repo *storage.Repository, tag string, dgst digest.Digest) error {
	ctx, cancel := context.WithTimeout(c.ctx, smallCallTimeout)
	defer cancel()
	ref := tag
	if dgst != "" {
		ref = dgst.String()
	}
	resp, err := up.remote.get(ctx, http.MethodGet, rname, "/manifests/"+ref, manifestAccept)
	if err != nil {
		return notFound(err, storage.ErrManifestUnknown)
	}
	defer func() { _ = resp.Body.Close() }()
	payload, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return &UpstreamError{Op: "GET manifest " + rname + ":" + ref, Err: err}
	}
	if len(payload) > maxManifestSize {
		return &UpstreamError{Op: "GET manifest " + rname + ":" + ref, Err: errors.New("manifest larger than 4 MiB")}
	}
	got := digest.FromBytes(payload)
	if dgst != "" {
		got = dgst.Algorithm().FromBytes(payload)
		if got != dgst {
			return &UpstreamError{Op: "GET manifest " + rname + ":" + ref, Err: fmt.Errorf("the upstream sent a manifest that is not %s", dgst)}
		}
	} else if hd, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil && hd.Algorithm().Available() {
		got = hd.Algorithm().FromBytes(payload)
		if got != hd {
			return &UpstreamError{Op: "GET manifest " + rname + ":" + ref, Err: fmt.Errorf("the upstream sent a manifest that is not %s", hd)}
		}
	}
	mt := resp.Header.Get("Content-Type")
	if parsed, _, err := mime.ParseMediaType(mt); err == nil {
		mt = parsed
	}
	if err := repo.PutCachedManifest(ctx, tag, mt, payload, got); err != nil {
		return err
	}
	c.metrics.fetchedBytes.WithLabelValues("manifest").Add(float64(len(payload)))
	c.state.add(kindManifest, repo.Name(), got, int64(len(payload)), c.now(), up.TTL)
	return nil
}

// maxManifestSize is the largest manifest copied from an upstream.
const maxManifestSize = 4 << 20

// notFound turns an upstream 404 into the storage sentinel a client
// understands; other errors pass unchanged.
func notFound(err, sentinel error) error {
	var ue *UpstreamError
	if errors.As(err, &ue) && ue.Status == http.StatusNotFound {
		return fmt.Errorf("%w (%s)", sentinel, ue.Error())
	}
	return err
}

// StatBlob describes a blob of a mirrored repository that storage does
// not hold, from the upstream (HEAD; nothing is fetched).
func (c *Cache) StatBlob(ctx context.Context, name string, dgst digest.Digest) (storage.Descriptor, error) {
	up, rname, ok := c.route(name)
	if !ok {
		return storage.Descriptor{}, storage.ErrBlobUnknown
	}
	ctx, cancel := context.WithTimeout(ctx, smallCallTimeout)
	defer cancel()
	resp, err := up.remote.get(ctx, http.MethodHead, rname, "/blobs/"+dgst.String(), nil)
	if err != nil {
		return storage.Descriptor{}, notFound(err, storage.ErrBlobUnknown)
	}
	_ = resp.Body.Close()
	return storage.Descriptor{MediaType: storage.BlobMediaType, Digest: dgst, Size: contentLength(resp.Header)}, nil
}

// LinkStored links into mirrored repository name a blob whose bytes
// storage already holds for another repository, once the upstream has
// confirmed (HEAD) that name has that digest with the same size: a base
// layer shared by many mirrored images crosses the network once. The link
// is cached content like a fetched blob (it expires and is evicted). It
// reports whether it linked; any doubt (the upstream unreachable or
// silent about the size, a read-only registry) is false, and the caller
// fetches as usual.
func (c *Cache) LinkStored(ctx context.Context, name string, dgst digest.Digest) bool {
	up, rname, ok := c.route(name)
	if !ok {
		return false
	}
	desc, err := c.reg.StatStored(ctx, dgst)
	if err != nil {
		return false
	}
	hctx, cancel := context.WithTimeout(ctx, smallCallTimeout)
	defer cancel()
	resp, err := up.remote.get(hctx, http.MethodHead, rname, "/blobs/"+dgst.String(), nil)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	if contentLength(resp.Header) != desc.Size {
		return false
	}
	repo, err := c.reg.Repository(name)
	if err != nil {
		return false
	}
	if _, err := repo.MountBlob(ctx, nil, dgst); err != nil {
		c.log.Warn("linking a stored blob into a mirrored repository failed; fetching it", "repository", name, "digest", dgst, "err", err)
		return false
	}
	c.metrics.linked.Inc()
	c.state.add(kindBlob, name, dgst, desc.Size, c.now(), up.TTL)
	c.metrics.cachedBytes.Set(float64(c.state.usage()))
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return true
}

// Served records a pull of cached content (for least-recently-pulled
// eviction) and counts it as a hit.
func (c *Cache) Served(name string, dgst digest.Digest) {
	if !c.Proxied(name) {
		return
	}
	c.metrics.hit("blob")
	c.state.touch(kindBlob, name, dgst, c.now())
}

// group runs one call per key at a time; callers with the same key wait
// for the call in flight and share its result.
type group struct {
	mu sync.Mutex
	m  map[string]*call
}

type call struct {
	done chan struct{}
	val  any
	err  error
}

func (g *group) do(key string, fn func() (any, error)) (any, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*call{}
	}
	if c, ok := g.m[key]; ok {
		g.mu.Unlock()
		<-c.done
		return c.val, c.err
	}
	c := &call{done: make(chan struct{})}
	g.m[key] = c
	g.mu.Unlock()
	c.val, c.err = fn()
	g.mu.Lock()
	delete(g.m, key)
	g.mu.Unlock()
	close(c.done)
	return c.val, c.err
}
