package storage

import (
	"sync"
	"time"
)

// tagCache remembers the sorted tag names of recently listed
// repositories, keyed by the modification time of their tags directory,
// so that the pages of a tags list (and repeated lists) read the directory
// once. It is used only where tags are created and removed whole
// (driver.AtomicDirs): adding or removing a tag then adds or removes an
// entry of the tags directory, which sets its modification time; moving a
// tag to another manifest changes no name.
//
// A modification time says nothing about two changes within one tick of
// the filesystem's clock, so a listing is kept only if the directory's
// time is older than the listing by more than a tick (see cacheable).
type tagCache struct {
	mu sync.Mutex
	m  map[string]tagListing // repository name -> listing
}

type tagListing struct {
	mod  time.Time
	tags []string // sorted; shared, never modified
}

// tagCacheRepos bounds the repositories the cache holds; past it, an
// arbitrary entry makes room.
const tagCacheRepos = 256

// Ticks of the filesystem clocks a directory's time can come from: the
// kernel's coarse clock (a jiffy, at most 10 ms), or whole seconds (ext4
// with 128-byte inodes: 1 s; FAT: 2 s) when the time has no fraction.
const (
	fineTick   = 20 * time.Millisecond
	coarseTick = 2 * time.Second
)

// cacheable reports whether a listing started at start may be kept under
// the directory time mod: no later change can share mod's tick.
func cacheable(mod, start time.Time) bool {
	tick := fineTick
	if mod.Nanosecond() == 0 {
		tick = coarseTick
	}
	return mod.Before(start.Add(-tick))
}

func (c *tagCache) get(name string, mod time.Time) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.m[name]
	if !ok || !l.mod.Equal(mod) {
		return nil, false
	}
	return l.tags, true
}

func (c *tagCache) put(name string, mod time.Time, tags []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]tagListing)
	}
	if _, ok := c.m[name]; !ok && len(c.m) >= tagCacheRepos {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[name] = tagListing{mod: mod, tags: tags}
}
