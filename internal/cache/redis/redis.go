// Package redis is the blob descriptor cache kept in Redis, shared by
// registry replicas (storage.cache.blobdescriptor: redis).
//
// The cache only accelerates: storage decides what exists. A Redis that is
// down, slow or flushed turns into cache misses, never into a failed
// request. After the first failure the cache stops asking Redis (every
// call is a miss) until a background probe reaches it again, so a stalled
// Redis delays at most the requests in flight when it stalled, by at most
// the operation timeout. Invalidations that could not reach Redis are kept
// in memory and applied before the cache is used again, so an entry
// storage has contradicted (a deleted link, missing data) is never served
// after Redis comes back.
//
// Keys, in the spirit of distribution's layout but in a namespace of
// their own (distribution never deletes its per-repository entries, so a
// Redis shared with, or inherited from, registry:2 must not be read as
// ours):
//
//	gatehouse::v1::blobs::{<digest>}                      hash: digest, size, mediatype
//	gatehouse::v1::repository::<name>::blobs::{<digest>}  hash: digest, mediatype
//
// (and the manifest link keys described in links.go).
//
// The first says the blob's data exists in the registry; the second that
// it is linked into repository <name>. A repository-scoped lookup is a hit
// only when both are present, so clearing the global entry (data gone)
// hides the blob from every repository, and a blob cached for one
// repository never appears linked in another. The {digest} hash tag keeps
// both keys of a digest in one Redis Cluster slot. Every entry expires
// after Options.TTL, which bounds staleness from changes made behind the
// registry's back (garbage collection by another process).
package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/opencontainers/go-digest"
)

// Defaults for Options.
const (
	// DefaultTTL is how long an entry lives in Redis.
	DefaultTTL = time.Hour
	// DefaultProbeInterval is how often Redis is pinged while unreachable
	// (five times that while reachable, to notice an outage for /debug/health).
	DefaultProbeInterval = time.Second
	// maxPending bounds the invalidations remembered while Redis is
	// unreachable; beyond it every Gatehouse key is deleted on recovery.
	maxPending = 100000
	// remindEvery is how often a still-unreachable Redis is logged again.
	remindEvery = 5 * time.Minute
	// KeyPrefix starts every key the cache writes.
	KeyPrefix = "gatehouse::v1::"
)

// Options configures a Cache.
type Options struct {
	// Client is the connection: one address makes a plain client, several
	// a cluster client (goredis.NewUniversalClient). Its timeouts should all
	// be set; ContextTimeoutEnabled is forced on.
	Client goredis.UniversalOptions
	// OpTimeout bounds one cache call made for a request. 0: the client's
	// dial + read + write timeouts.
	OpTimeout time.Duration
	// TTL is the lifetime of an entry; 0: DefaultTTL.
	TTL time.Duration
	// LinkTTL is the lifetime of a manifest link entry (cache.LinkCache)
	// after its fill; 0: DefaultLinkTTL, and never more than TTL.
	LinkTTL time.Duration
	// ProbeInterval is the reconnection probe period; 0: DefaultProbeInterval.
	ProbeInterval time.Duration
	// Logger receives state changes (unreachable, reachable again); nil: none.
	Logger *slog.Logger
	// Metrics, when not nil, counts hits, misses and errors.
	Metrics *Metrics
}

// Cache is a cache.BlobDescriptorCache on Redis. Create it with New, run
// its reconnection probe with Run, release it with Close.
type Cache struct {
	client    goredis.UniversalClient
	opTimeout time.Duration
	ttl       time.Duration
	linkTTL   time.Duration
	probe     time.Duration
	log       *slog.Logger
	m         *Metrics

	up atomic.Bool // false: every call bypasses Redis
	// mu guards pending, flushAll and the transitions of up that depend
	// on them.
	mu       sync.Mutex
	pending  map[string]struct{} // keys to delete before using Redis again
	flushAll bool                // pending overflowed: delete every key
	lastLog  time.Time           // last "unreachable" log
}

// New returns a cache on the Redis opts.Client describes and pings it once
// (bounded by the operation timeout). An unreachable Redis is not an
// error: the cache starts bypassed and Run reconnects.
func New(ctx context.Context, opts Options) *Cache {
	co := opts.Client
	co.ContextTimeoutEnabled = true
	if co.DialerRetries <= 0 {
		// One dial attempt per try: the probe is the retry loop.
		co.DialerRetries = 1
	}
	c := &Cache{
		client:    goredis.NewUniversalClient(&co),
		opTimeout: opts.OpTimeout,
		ttl:       opts.TTL,
		probe:     opts.ProbeInterval,
		log:       opts.Logger,
		m:         opts.Metrics,
		pending:   make(map[string]struct{}),
	}
	if c.opTimeout <= 0 {
		c.opTimeout = max(co.DialTimeout, 0) + max(co.ReadTimeout, 0) + max(co.WriteTimeout, 0)
		if c.opTimeout <= 0 {
			c.opTimeout = time.Second
		}
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	c.linkTTL = opts.LinkTTL
	if c.linkTTL <= 0 {
		c.linkTTL = DefaultLinkTTL
	}
	c.linkTTL = min(c.linkTTL, c.ttl)
	if c.probe <= 0 {
		c.probe = DefaultProbeInterval
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	quietOnce.Do(func() { goredis.SetLogger(debugLogger{c.log}) })
	c.m.setUp(false)
	if err := c.ping(ctx); err != nil {
		c.markDown(err)
	} else {
		c.setUp()
	}
	return c
}

// quietOnce routes go-redis's own log lines (one per failed dial, which
// would otherwise go to stderr on every probe) to the first cache's
// logger at debug level; the cache logs Redis's state itself.
var quietOnce sync.Once

type debugLogger struct{ log *slog.Logger }

func (l debugLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// Up reports whether the cache is using Redis (false while Redis is
// unreachable or invalidations are waiting to be applied).
func (c *Cache) Up() bool { return c.up.Load() }

// Pending returns the number of invalidations waiting for Redis.
func (c *Cache) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Close releases the connections.
func (c *Cache) Close() error { return c.client.Close() }

func globalKey(dgst digest.Digest) string {
	return KeyPrefix + "blobs::{" + dgst.String() + "}"
}

func repoKey(repo string, dgst digest.Digest) string {
	return KeyPrefix + "repository::" + repo + "::blobs::{" + dgst.String() + "}"
}

func key(repo string, dgst digest.Digest) string {
	if repo == "" {
		return globalKey(dgst)
	}
	return repoKey(repo, dgst)
}

// Stat implements cache.BlobDescriptorCache. Any failure is a miss.
func (c *Cache) Stat(ctx context.Context, repo string, dgst digest.Digest) (cache.Descriptor, error) {
	if !c.up.Load() {
		c.m.miss()
		return cache.Descriptor{}, cache.ErrCacheMiss
	}
	octx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	var g, r *goredis.SliceCmd
	_, err := c.client.Pipelined(octx, func(p goredis.Pipeliner) error {
		g = p.HMGet(octx, globalKey(dgst), "digest", "size", "mediatype")
		if repo != "" {
			r = p.HMGet(octx, repoKey(repo, dgst), "digest", "mediatype")
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			// Not the caller giving up: Redis failed or was too slow.
			c.failed("stat", err)
		}
		c.m.miss()
		return cache.Descriptor{}, cache.ErrCacheMiss
	}
	desc, ok := parseGlobal(dgst, g.Val())
	if ok && r != nil {
		var mt string
		mt, ok = parseRepo(dgst, r.Val())
		if mt != "" {
			desc.MediaType = mt
		}
	}
	if !ok {
		c.m.miss()
		return cache.Descriptor{}, cache.ErrCacheMiss
	}
	c.m.hit()
	return desc, nil
}

// parseGlobal reads the global hash's fields (digest, size, mediatype);
// anything missing or malformed is a miss.
func parseGlobal(dgst digest.Digest, v []any) (cache.Descriptor, bool) {
	if len(v) != 3 {
		return cache.Descriptor{}, false
	}
	d, _ := v[0].(string)
	s, _ := v[1].(string)
	mt, _ := v[2].(string)
	size, err := strconv.ParseInt(s, 10, 64)
	if d != dgst.String() || err != nil || size < 0 {
		return cache.Descriptor{}, false
	}
	return cache.Descriptor{Digest: dgst, Size: size, MediaType: mt}, true
}

// parseRepo reads the repository hash's fields (digest, mediatype): the
// membership holds when the digest field is the digest.
func parseRepo(dgst digest.Digest, v []any) (string, bool) {
	if len(v) != 2 {
		return "", false
	}
	d, _ := v[0].(string)
	mt, _ := v[1].(string)
	return mt, d == dgst.String()
}

// Set implements cache.BlobDescriptorCache. A repository-scoped entry
// also records the global one. Failures are counted and logged by the
// cache (not per call) and not returned: the caller can do nothing about
// them.
func (c *Cache) Set(ctx context.Context, repo string, dgst digest.Digest, desc cache.Descriptor) error {
	if err := dgst.Validate(); err != nil {
		return err
	}
	if !c.up.Load() {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	_, err := c.client.TxPipelined(octx, func(p goredis.Pipeliner) error {
		gk := globalKey(dgst)
		p.HSet(octx, gk, "digest", dgst.String(), "size", strconv.FormatInt(desc.Size, 10), "mediatype", desc.MediaType)
		p.Expire(octx, gk, c.ttl)
		if repo != "" {
			rk := repoKey(repo, dgst)
			p.HSet(octx, rk, "digest", dgst.String(), "mediatype", desc.MediaType)
			p.Expire(octx, rk, c.ttl)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		c.failed("set", err)
	}
	return nil
}

// Clear implements cache.BlobDescriptorCache. Clearing the global entry
// hides the blob from every repository. An invalidation that cannot reach
// Redis is remembered and applied before Redis is used again; it is not
// abandoned when the caller's context ends.
func (c *Cache) Clear(ctx context.Context, repo string, dgst digest.Digest) error {
	c.clearKey(ctx, key(repo, dgst))
	return nil
}

// clearKey deletes k, or remembers to delete it before Redis is used
// again.
func (c *Cache) clearKey(ctx context.Context, k string) {
	c.mu.Lock()
	if !c.up.Load() {
		c.addPending(k)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opTimeout)
	defer cancel()
	if err := c.client.Del(octx, k).Err(); err != nil {
		c.mu.Lock()
		c.addPending(k)
		c.mu.Unlock()
		c.failed("clear", err)
	}
}

// addPending remembers an invalidation; c.mu is held. It also takes the
// cache down, so nothing is read from Redis before it is applied.
func (c *Cache) addPending(k string) {
	c.up.Store(false)
	c.m.setUp(false)
	if c.flushAll {
		return
	}
	if len(c.pending) >= maxPending {
		c.flushAll = true
		c.pending = make(map[string]struct{})
	} else {
		c.pending[k] = struct{}{}
	}
	c.m.setPending(len(c.pending))
}

// failed counts an operation's error and takes the cache down, unless
// Redis answered that a key holds something else than a hash (a foreign
// value under our prefix): that is a miss, not an outage.
func (c *Cache) failed(op string, err error) {
	c.m.error(op)
	if strings.HasPrefix(err.Error(), "WRONGTYPE") {
		return
	}
	c.markDown(err)
}

// markDown stops using Redis until the probe reaches it again, logging
// the first failure (and a reminder every remindEvery), not every call.
func (c *Cache) markDown(err error) {
	c.mu.Lock()
	was := c.up.Swap(false)
	c.m.setUp(false)
	now := time.Now()
	logIt := was || now.Sub(c.lastLog) >= remindEvery
	if logIt {
		c.lastLog = now
	}
	c.mu.Unlock()
	if logIt {
		c.log.Warn("redis blob descriptor cache unreachable; serving from storage until it returns", "err", err)
	}
}

// setUp uses Redis again if no invalidation is waiting; c.mu must not be held.
func (c *Cache) setUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) > 0 || c.flushAll {
		return false
	}
	c.up.Store(true)
	c.m.setUp(true)
	return true
}

func (c *Cache) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	return c.client.Ping(ctx).Err()
}

// Run probes Redis until ctx is done: while it is unreachable every
// ProbeInterval, applying the remembered invalidations and resuming the
// cache once it answers; while it is reachable every 5 × ProbeInterval, so
// an idle registry still notices an outage.
func (c *Cache) Run(ctx context.Context) {
	for {
		wait := c.probe
		if c.up.Load() {
			wait = 5 * c.probe
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		c.Probe(ctx)
	}
}

// Probe checks Redis once; when it answers and the cache was down, it
// applies the waiting invalidations and resumes the cache. It reports
// whether the cache is up afterwards.
func (c *Cache) Probe(ctx context.Context) bool {
	if err := c.ping(ctx); err != nil {
		if ctx.Err() == nil {
			c.markDown(err)
		}
		return false
	}
	if c.up.Load() {
		return true
	}
	if err := c.flushPending(ctx); err != nil {
		if ctx.Err() == nil {
			c.markDown(err)
		}
		return false
	}
	if !c.setUp() {
		return false // a new invalidation arrived; the next probe applies it
	}
	c.log.Info("redis blob descriptor cache reachable again")
	return true
}

// flushPending deletes the remembered keys (or, after an overflow, every
// key of the cache).
func (c *Cache) flushPending(ctx context.Context) error {
	c.mu.Lock()
	all := c.flushAll
	c.mu.Unlock()
	if all {
		if err := c.deleteAll(ctx); err != nil {
			return err
		}
		c.mu.Lock()
		c.flushAll = false
		c.mu.Unlock()
	}
	for {
		c.mu.Lock()
		batch := make([]string, 0, 512)
		for k := range c.pending {
			if len(batch) == cap(batch) {
				break
			}
			batch = append(batch, k)
		}
		c.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		octx, cancel := context.WithTimeout(ctx, c.opTimeout)
		_, err := c.client.Pipelined(octx, func(p goredis.Pipeliner) error {
			for _, k := range batch {
				p.Del(octx, k)
			}
			return nil
		})
		cancel()
		if err != nil {
			return err
		}
		c.mu.Lock()
		for _, k := range batch {
			delete(c.pending, k)
		}
		c.m.setPending(len(c.pending))
		c.mu.Unlock()
	}
}

// deleteAll removes every key under KeyPrefix, on every master of a cluster.
func (c *Cache) deleteAll(ctx context.Context) error {
	c.log.Warn("too many invalidations were missed while redis was unreachable; deleting every cache entry")
	del := func(ctx context.Context, cl goredis.Cmdable) error {
		it := cl.Scan(ctx, 0, KeyPrefix+"*", 1000).Iterator()
		var keys []string
		for it.Next(ctx) {
			keys = append(keys, it.Val())
			if len(keys) == 1000 {
				if err := cl.Unlink(ctx, keys...).Err(); err != nil {
					return err
				}
				keys = keys[:0]
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
		if len(keys) > 0 {
			return cl.Unlink(ctx, keys...).Err()
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if cc, ok := c.client.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, cl *goredis.Client) error { return del(ctx, cl) })
	}
	return del(ctx, c.client)
}

var _ cache.BlobDescriptorCache = (*Cache)(nil)
