package cache

import (
	"container/list"
	"context"
	"sync"

	"github.com/opencontainers/go-digest"
)

// DefaultSize is the LRU's entry count when none is configured, as in
// distribution's blobdescriptorsize.
const DefaultSize = 10000

type key struct {
	repo string
	dgst digest.Digest
}

type entry struct {
	key  key
	desc Descriptor
}

// LRU is an in-memory BlobDescriptorCache that evicts the least recently
// used entry beyond its size.
type LRU struct {
	mu    sync.Mutex
	size  int // 0 = unbounded
	order *list.List
	items map[key]*list.Element
}

// NewLRU returns an LRU holding at most size entries; size 0 means
// unbounded and a negative size means DefaultSize.
func NewLRU(size int) *LRU {
	if size < 0 {
		size = DefaultSize
	}
	return &LRU{size: size, order: list.New(), items: make(map[key]*list.Element)}
}

// Stat implements BlobDescriptorCache.
func (c *LRU) Stat(_ context.Context, repo string, dgst digest.Digest) (Descriptor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key{repo, dgst}]
	if !ok {
		return Descriptor{}, ErrCacheMiss
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry).desc, nil
}

// Set implements BlobDescriptorCache.
func (c *LRU) Set(_ context.Context, repo string, dgst digest.Digest, desc Descriptor) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key{repo, dgst}
	if el, ok := c.items[k]; ok {
		el.Value.(*entry).desc = desc
		c.order.MoveToFront(el)
		return nil
	}
	c.items[k] = c.order.PushFront(&entry{key: k, desc: desc})
	for c.size > 0 && c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*entry).key)
	}
	return nil
}

// Clear implements BlobDescriptorCache.
func (c *LRU) Clear(_ context.Context, repo string, dgst digest.Digest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key{repo, dgst}
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
	return nil
}

// Len returns the number of entries held.
func (c *LRU) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

var _ BlobDescriptorCache = (*LRU)(nil)
