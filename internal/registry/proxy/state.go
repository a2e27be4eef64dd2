package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// statePath is where the cache keeps what it stored, beside (not inside)
// distribution's layout; registry:2 keeps its own at /scheduler-state.json.
const statePath = "/gatehouse/proxy-state.json"

const (
	kindManifest = "manifest"
	kindBlob     = "blob"
)

// entry is one piece of content the cache stored in one repository.
type entry struct {
	Kind   string        `json:"kind"`
	Repo   string        `json:"repository"`
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// Expires is when the TTL removes it; zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// Pulled is the last time a client pulled it.
	Pulled time.Time `json:"pulled"`
}

func (e *entry) key() string { return e.Kind + " " + e.Repo + "@" + e.Digest.String() }

type stateFile struct {
	Version int      `json:"version"`
	Entries []*entry `json:"entries"`
}

// state is the cache's record, in memory and saved to storage when dirty.
type state struct {
	d   driver.Driver
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	dirty   bool
}

func loadState(ctx context.Context, d driver.Driver, log *slog.Logger) (*state, error) {
	s := &state{d: d, log: log, entries: map[string]*entry{}}
	data, err := d.GetContent(ctx, statePath)
	switch {
	case driver.IsNotFound(err):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("proxy: reading the cache state %s: %w", statePath, err)
	}
	var f stateFile
	if jerr := json.Unmarshal(data, &f); jerr != nil || f.Version != 1 {
		// Losing it only means the content stays until a pull refreshes
		// its entry; refusing to start would be worse.
		log.Warn("proxy: the cache state is unreadable; starting afresh", "path", statePath, "err", jerr)
		return s, nil //nolint:nilerr // an unreadable record is replaced, not fatal
	}
	for _, e := range f.Entries {
		if e == nil || (e.Kind != kindBlob && e.Kind != kindManifest) || e.Digest.Validate() != nil {
			continue
		}
		s.entries[e.key()] = e
	}
	return s, nil
}

// add records content stored at now, expiring after ttl (never if ttl <= 0).
func (s *state) add(kind, repo string, dgst digest.Digest, size int64, now time.Time, ttl time.Duration) {
	e := &entry{Kind: kind, Repo: repo, Digest: dgst, Size: size, Pulled: now}
	if ttl > 0 {
		e.Expires = now.Add(ttl)
	}
	s.mu.Lock()
	s.entries[e.key()] = e
	s.dirty = true
	s.mu.Unlock()
}

// touch records a pull.
func (s *state) touch(kind, repo string, dgst digest.Digest, now time.Time) {
	k := (&entry{Kind: kind, Repo: repo, Digest: dgst}).key()
	s.mu.Lock()
	if e, ok := s.entries[k]; ok {
		e.Pulled = now
		s.dirty = true
	}
	s.mu.Unlock()
}

func (s *state) remove(e *entry) {
	s.mu.Lock()
	if s.entries[e.key()] == e {
		delete(s.entries, e.key())
		s.dirty = true
	}
	s.mu.Unlock()
}

// usage is the bytes of distinct cached blobs.
func (s *state) usage() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[digest.Digest]bool{}
	var n int64
	for _, e := range s.entries {
		if e.Kind == kindBlob && !seen[e.Digest] {
			seen[e.Digest] = true
			n += e.Size
		}
	}
	return n
}

// expired returns copies of the entries whose TTL has passed.
func (s *state) expired(now time.Time) []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*entry
	for _, e := range s.entries {
		if !e.Expires.IsZero() && !now.Before(e.Expires) {
			out = append(out, e)
		}
	}
	return out
}

// blobsByPull returns the blob entries, least recently pulled first.
func (s *state) blobsByPull() []*entry {
	s.mu.Lock()
	var out []*entry
	for _, e := range s.entries {
		if e.Kind == kindBlob {
			out = append(out, e)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Pulled.Equal(out[j].Pulled) {
			return out[i].Pulled.Before(out[j].Pulled)
		}
		return out[i].key() < out[j].key()
	})
	return out
}

// save writes the state to storage if it changed.
func (s *state) save(ctx context.Context) error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	f := stateFile{Version: 1, Entries: make([]*entry, 0, len(s.entries))}
	for _, e := range s.entries {
		c := *e
		f.Entries = append(f.Entries, &c)
	}
	s.dirty = false
	s.mu.Unlock()
	sort.Slice(f.Entries, func(i, j int) bool { return f.Entries[i].key() < f.Entries[j].key() })
	data, err := json.Marshal(f)
	if err == nil {
		err = s.d.PutContent(ctx, statePath, data)
	}
	if err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return fmt.Errorf("proxy: saving the cache state: %w", err)
	}
	return nil
}

// Run enforces expiry and the size cap and saves the state every
// interval (and the size cap soon after a fetch) until ctx is done; then
// it saves the state a last time.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	c.housekeep(ctx)
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := c.state.save(sctx); err != nil {
				c.log.Error("proxy: state not saved", "err", err)
			}
			cancel()
			return
		case <-t.C:
		case <-c.kick:
		}
		c.housekeep(ctx)
	}
}

// housekeep runs one round: expire, enforce the cap, save.
func (c *Cache) housekeep(ctx context.Context) {
	for _, e := range c.state.expired(c.now()) {
		if err := c.evict(ctx, e, "ttl"); err != nil {
			c.log.Warn("proxy: evicting expired content failed", "repository", e.Repo, "digest", e.Digest, "err", err)
		}
	}
	if max := c.opts.MaxSize; max > 0 {
		c.enforceCap(ctx, max)
	}
	c.metrics.cachedBytes.Set(float64(c.state.usage()))
	if err := c.state.save(ctx); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Warn("proxy: state not saved", "err", err)
	}
}

// enforceCap evicts the least recently pulled blobs until the cached
// bytes fit under max.
func (c *Cache) enforceCap(ctx context.Context, max int64) {
	usage := c.state.usage()
	if usage <= max {
		return
	}
	refs := map[digest.Digest]int{}
	blobs := c.state.blobsByPull()
	for _, e := range blobs {
		refs[e.Digest]++
	}
	for _, e := range blobs {
		if usage <= max || ctx.Err() != nil {
			return
		}
		if err := c.evict(ctx, e, "size"); err != nil {
			c.log.Warn("proxy: evicting for space failed", "repository", e.Repo, "digest", e.Digest, "err", err)
			continue
		}
		refs[e.Digest]--
		if refs[e.Digest] == 0 {
			usage -= e.Size
		}
	}
}

// evict removes one entry's content from storage and from the state.
func (c *Cache) evict(ctx context.Context, e *entry, reason string) error {
	repo, err := c.reg.Repository(e.Repo)
	if err != nil {
		c.state.remove(e)
		return err
	}
	if e.Kind == kindBlob {
		_, err = repo.EvictBlob(ctx, e.Digest)
	} else {
		_, err = repo.EvictManifest(ctx, e.Digest)
	}
	if err != nil {
		return err
	}
	c.state.remove(e)
	c.metrics.evictions.WithLabelValues(reason).Inc()
	c.log.Debug("proxy: evicted", "reason", reason, "kind", e.Kind, "repository", e.Repo, "digest", e.Digest)
	return nil
}

// Close stops fetches in flight and saves the state.
func (c *Cache) Close() error {
	c.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.state.save(ctx)
}
