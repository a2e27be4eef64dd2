package cache

import (
	"bytes"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestPayloadsBudget(t *testing.T) {
	c := NewPayloads(10, 4)
	put := func(s string) digest.Digest {
		d := digest.FromString(s)
		c.Put(d, []byte(s))
		return d
	}
	a, b, big := put("aaaa"), put("bbbb"), put("too big")
	if _, ok := c.Get(big); ok {
		t.Error("an entry over the per-entry limit was kept")
	}
	if _, ok := c.Get(a); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	cc := put("cccc") // 12 bytes > 10: the least recent (b) goes
	if _, ok := c.Get(b); ok {
		t.Error("b kept past the budget; it was the least recently used")
	}
	for _, d := range []digest.Digest{a, cc} {
		if _, ok := c.Get(d); !ok {
			t.Errorf("%s evicted", d)
		}
	}
	if c.Bytes() != 8 {
		t.Errorf("Bytes = %d, want 8", c.Bytes())
	}
	z := NewPayloads(0, 4)
	z.Put(a, []byte("aaaa"))
	if _, ok := z.Get(a); ok || z.Bytes() != 0 {
		t.Error("a zero budget held something")
	}
}

func TestPayloadsCopies(t *testing.T) {
	c := NewPayloads(100, 100)
	in := []byte("manifest")
	d := digest.FromBytes(in)
	c.Put(d, in)
	in[0] = 'X'
	got, _ := c.Get(d)
	got[1] = 'Y'
	again, _ := c.Get(d)
	if !bytes.Equal(again, []byte("manifest")) {
		t.Errorf("cached payload changed through a caller's slice: %q", again)
	}
}
