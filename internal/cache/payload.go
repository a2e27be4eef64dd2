package cache

import (
	"container/list"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Payloads is an in-memory LRU of content-addressed bytes (manifest
// payloads) by digest, bounded in total bytes. What a digest names never
// changes, so an entry is true on any replica for as long as it is kept;
// whether the content may be served (a repository still links it) is for
// the caller to check. Get and Put copy, so no caller can change what
// another one reads.
type Payloads struct {
	mu       sync.Mutex
	budget   int64 // total bytes held at most
	maxEntry int64 // larger contents are not kept
	used     int64
	order    *list.List // of *payload, most recent first
	items    map[digest.Digest]*list.Element
}

type payload struct {
	dgst digest.Digest
	b    []byte
}

// NewPayloads returns a cache holding at most budget bytes of content,
// none of it in entries larger than maxEntry. A budget <= 0 holds nothing.
func NewPayloads(budget, maxEntry int64) *Payloads {
	return &Payloads{budget: budget, maxEntry: min(maxEntry, budget), order: list.New(), items: make(map[digest.Digest]*list.Element)}
}

// Get returns a copy of the content cached for dgst.
func (c *Payloads) Get(dgst digest.Digest) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[dgst]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return slices.Clone(el.Value.(*payload).b), true
}

// Put keeps a copy of b as the content of dgst; the caller vouches that b
// is that content.
func (c *Payloads) Put(dgst digest.Digest, b []byte) {
	n := int64(len(b))
	if n == 0 || n > c.maxEntry {
		return
	}
	cp := slices.Clone(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[dgst]; ok {
		c.order.MoveToFront(el)
		return
	}
	c.items[dgst] = c.order.PushFront(&payload{dgst: dgst, b: cp})
	c.used += n
	for c.used > c.budget {
		last := c.order.Back()
		p := last.Value.(*payload)
		c.order.Remove(last)
		delete(c.items, p.dgst)
		c.used -= int64(len(p.b))
	}
}

// Bytes returns the bytes held.
func (c *Payloads) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
