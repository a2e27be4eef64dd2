package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/gatehouse-registry/gatehouse/internal/cache/redis"
	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// Redis timeouts when the config leaves them out. The cache only
// accelerates, so they are short: a slow Redis costs a request at most
// dial + read + write before the cache steps aside.
const (
	defaultRedisDialTimeout  = 500 * time.Millisecond
	defaultRedisReadTimeout  = 250 * time.Millisecond
	defaultRedisWriteTimeout = 250 * time.Millisecond
)

// redisOptions maps the redis section, in either of its forms, onto
// go-redis options. The registry 2 form (addr, pool.maxidle,
// pool.maxactive, pool.idletimeout) and the registry 3 form (addrs,
// maxidleconns, poolsize, connmaxidletime) may not both set one setting
// (regconfig refuses that); the deprecation warnings are regconfig's.
// Several addresses make a cluster client, one a plain client.
func redisOptions(r regconfig.Redis) (goredis.UniversalOptions, error) {
	o := goredis.UniversalOptions{
		Addrs:           r.Addresses(),
		Username:        r.Username,
		Password:        r.Password.Reveal(),
		DB:              r.DB,
		DialTimeout:     orDefault(r.DialTimeout, defaultRedisDialTimeout),
		ReadTimeout:     orDefault(r.ReadTimeout, defaultRedisReadTimeout),
		WriteTimeout:    orDefault(r.WriteTimeout, defaultRedisWriteTimeout),
		PoolSize:        r.PoolSize,
		MaxIdleConns:    r.MaxIdleConns,
		ConnMaxIdleTime: r.ConnMaxIdleTime,
		// One retry on a fresh connection covers a connection Redis closed
		// (a restart); the operation timeout bounds both tries.
		MaxRetries: 1,
	}
	// Waiting for a pooled connection counts as a read: as long, no longer.
	o.PoolTimeout = o.ReadTimeout
	p := r.Pool
	if p.MaxActive > 0 && o.PoolSize == 0 {
		// redigo's maxactive was a hard cap on connections.
		o.PoolSize, o.MaxActiveConns = p.MaxActive, p.MaxActive
	}
	if p.MaxIdle > 0 && o.MaxIdleConns == 0 {
		o.MaxIdleConns = p.MaxIdle
	}
	if p.IdleTimeout > 0 && o.ConnMaxIdleTime == 0 {
		o.ConnMaxIdleTime = p.IdleTimeout
	}
	t := r.TLS
	if t.Enabled || t.Certificate != "" || len(t.RootCAs) > 0 {
		tc, err := tlsutil.ClientConfig(t.RootCAs, t.Certificate, t.Key)
		if err != nil {
			return o, fmt.Errorf("redis.tls.%w", err)
		}
		o.TLSConfig = tc
	}
	return o, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// openRedisCache connects the blob descriptor cache to the redis section.
// An unreachable Redis is not an error: the registry serves from storage
// and the cache reconnects by itself.
func openRedisCache(ctx context.Context, r regconfig.Redis, log *slog.Logger, reg prometheus.Registerer) (*redis.Cache, error) {
	o, err := redisOptions(r)
	if err != nil {
		return nil, err
	}
	m, err := redis.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := redis.New(ctx, redis.Options{Client: o, Logger: log.With("cache", "redis"), Metrics: m})
	log.Info("blob descriptor cache on redis", "addrs", o.Addrs, "db", o.DB, "tls", o.TLSConfig != nil, "reachable", c.Up())
	return c, nil
}

// ForgetSwept clears, in the Redis blob descriptor cache cfg names, the
// entries of blobs GC deleted: each blob's own entry and its entry in
// every repository whose link GC removed, and the revision link entries of
// the manifests GC deleted (unlinked). GC runs in a process of its own,
// so without this a registry could answer HEAD 200 for a swept blob, or
// serve a deleted manifest, until the entry expires. It returns the number
// of entries that could not be cleared (Redis unreachable: they are named
// by warn), never an error about Redis itself; cfg without a Redis cache
// does nothing.
func ForgetSwept(ctx context.Context, cfg *regconfig.Config, swept []storage.SweptBlob, unlinked []storage.UnlinkedManifest, warn func(format string, args ...any)) (int, error) {
	if cfg.Storage.Cache.BlobDescriptor != "redis" || len(swept)+len(unlinked) == 0 {
		return 0, nil
	}
	o, err := redisOptions(cfg.Redis)
	if err != nil {
		return 0, err
	}
	c := redis.New(ctx, redis.Options{Client: o})
	defer func() { _ = c.Close() }()
	if !c.Up() {
		n := 0
		for _, b := range swept {
			n += 1 + len(b.Repositories)
		}
		n += len(unlinked)
		warn("redis at %s is unreachable: the cache entries of %d swept blobs and %d deleted manifests were not cleared; a registry may answer HEAD 200 for the blobs until they expire (1 h) and serve the manifests for a minute. Flush them: redis-cli --scan --pattern '%s*' | xargs -r redis-cli unlink",
			strings.Join(o.Addrs, ","), len(swept), len(unlinked), redis.KeyPrefix)
		return n, nil
	}
	for _, b := range swept {
		_ = c.Clear(ctx, "", b.Digest)
		for _, repo := range b.Repositories {
			_ = c.Clear(ctx, repo, b.Digest)
		}
	}
	for _, m := range unlinked {
		c.ClearLink(ctx, cache.Link{Repo: m.Repository, Kind: cache.RevisionLink, Name: m.Digest.String()})
	}
	if n := c.Pending(); n > 0 {
		warn("redis at %s failed during the cleanup: %d cache entries of swept blobs or deleted manifests were not cleared; a registry may answer HEAD 200 for the blobs until they expire (1 h) and serve the manifests for a minute. Flush them: redis-cli --scan --pattern '%s*' | xargs -r redis-cli unlink",
			strings.Join(o.Addrs, ","), n, redis.KeyPrefix)
		return n, nil
	}
	return 0, nil
}
