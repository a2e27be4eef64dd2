package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

func desc(s string) Descriptor {
	return Descriptor{Digest: digest.FromString(s), Size: int64(len(s)), MediaType: "application/octet-stream"}
}

func TestLRU(t *testing.T) {
	ctx := context.Background()
	a, b, c := desc("a"), desc("b"), desc("c")
	tests := []struct {
		name string
		size int
		ops  func(c *LRU)
		hit  map[string]Descriptor // "repo|content" -> want; absent = miss
		miss []string
	}{
		{
			name: "set and stat, repos apart",
			size: 10,
			ops: func(l *LRU) {
				_ = l.Set(ctx, "r1", a.Digest, a)
				_ = l.Set(ctx, "", b.Digest, b)
			},
			hit:  map[string]Descriptor{"r1|a": a, "|b": b},
			miss: []string{"r2|a", "|a", "r1|b"},
		},
		{
			name: "evicts the least recently used",
			size: 2,
			ops: func(l *LRU) {
				_ = l.Set(ctx, "r", a.Digest, a)
				_ = l.Set(ctx, "r", b.Digest, b)
				_, _ = l.Stat(ctx, "r", a.Digest) // a is now the most recent
				_ = l.Set(ctx, "r", c.Digest, c)
			},
			hit:  map[string]Descriptor{"r|a": a, "r|c": c},
			miss: []string{"r|b"},
		},
		{
			name: "clear",
			size: 2,
			ops: func(l *LRU) {
				_ = l.Set(ctx, "r", a.Digest, a)
				_ = l.Clear(ctx, "r", a.Digest)
				_ = l.Clear(ctx, "r", b.Digest) // absent: fine
			},
			miss: []string{"r|a"},
		},
		{
			name: "set replaces",
			size: 1,
			ops: func(l *LRU) {
				_ = l.Set(ctx, "r", a.Digest, b)
				_ = l.Set(ctx, "r", a.Digest, a)
			},
			hit: map[string]Descriptor{"r|a": a},
		},
		{
			name: "unbounded",
			size: 0,
			ops: func(l *LRU) {
				for i := range 100 {
					d := desc(fmt.Sprint(i))
					_ = l.Set(ctx, "r", d.Digest, d)
				}
			},
			hit: map[string]Descriptor{"r|0": desc("0"), "r|99": desc("99")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLRU(tc.size)
			tc.ops(l)
			split := func(k string) (string, digest.Digest) {
				for i := range k {
					if k[i] == '|' {
						return k[:i], digest.FromString(k[i+1:])
					}
				}
				t.Fatalf("bad key %q", k)
				return "", ""
			}
			for k, want := range tc.hit {
				repo, dg := split(k)
				got, err := l.Stat(ctx, repo, dg)
				if err != nil {
					t.Errorf("Stat(%s): %v", k, err)
					continue
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Stat(%s) (-want +got):\n%s", k, diff)
				}
			}
			for _, k := range tc.miss {
				repo, dg := split(k)
				if _, err := l.Stat(ctx, repo, dg); !errors.Is(err, ErrCacheMiss) {
					t.Errorf("Stat(%s) = %v, want ErrCacheMiss", k, err)
				}
			}
			if tc.size > 0 && l.Len() > tc.size {
				t.Errorf("Len %d > size %d", l.Len(), tc.size)
			}
		})
	}
}

func TestLRUDefaultSizeAndConcurrency(t *testing.T) {
	l := NewLRU(-1)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				d := desc(fmt.Sprint(g, "-", i))
				_ = l.Set(ctx, "r", d.Digest, d)
				_, _ = l.Stat(ctx, "r", d.Digest)
				if i%3 == 0 {
					_ = l.Clear(ctx, "r", d.Digest)
				}
			}
		}()
	}
	wg.Wait()
	if l.Len() != DefaultSize {
		t.Errorf("Len = %d, want the default size %d", l.Len(), DefaultSize)
	}
}
