package redis

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/opencontainers/go-digest"
)

// The behaviour against a real Redis is tested in test/redis (integration).

func TestKeys(t *testing.T) {
	d := digest.FromString("x")
	for _, tt := range []struct{ got, want string }{
		{key("", d), "gatehouse::v1::blobs::{" + d.String() + "}"},
		{key("library/alpine", d), "gatehouse::v1::repository::library/alpine::blobs::{" + d.String() + "}"},
	} {
		if tt.got != tt.want {
			t.Errorf("key %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	d := digest.FromString("x")
	for _, tt := range []struct {
		name string
		v    []any
		ok   bool
	}{
		{"complete", []any{d.String(), "12", "application/octet-stream"}, true},
		{"no media type", []any{d.String(), "12", nil}, true},
		{"absent", []any{nil, nil, nil}, false},
		{"other digest", []any{digest.FromString("y").String(), "12", nil}, false},
		{"bad size", []any{d.String(), "twelve", nil}, false},
		{"negative size", []any{d.String(), "-1", nil}, false},
		{"short", []any{d.String()}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			desc, ok := parseGlobal(d, tt.v)
			if ok != tt.ok || (ok && (desc.Size != 12 || desc.Digest != d)) {
				t.Errorf("parseGlobal = %+v, %v; want ok %v", desc, ok, tt.ok)
			}
		})
	}
	if _, ok := parseRepo(d, []any{nil, nil}); ok {
		t.Error("absent repository entry is a member")
	}
	if mt, ok := parseRepo(d, []any{d.String(), "x/y"}); !ok || mt != "x/y" {
		t.Errorf("parseRepo = %q, %v", mt, ok)
	}
}

// TestUnreachable: with nothing listening, every call returns at once as
// a miss or nil, invalidations are remembered, and the metrics say so.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := New(ctx, Options{Client: goredis.UniversalOptions{Addrs: []string{addr}, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond}, Metrics: m})
	defer c.Close()
	if c.Up() {
		t.Fatal("cache up with nothing listening")
	}
	d := digest.FromString("blob")
	start := time.Now()
	if _, err := c.Stat(ctx, "a", d); !errors.Is(err, cache.ErrCacheMiss) {
		t.Errorf("Stat: %v, want a miss", err)
	}
	if err := c.Set(ctx, "a", d, cache.Descriptor{Digest: d, Size: 1}); err != nil {
		t.Errorf("Set: %v", err)
	}
	if err := c.Clear(ctx, "a", d); err != nil {
		t.Errorf("Clear: %v", err)
	}
	if err := c.Clear(ctx, "", d); err != nil {
		t.Errorf("Clear: %v", err)
	}
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("calls on a down cache took %v; they must not touch Redis", el)
	}
	if got := c.Pending(); got != 2 {
		t.Errorf("pending = %d, want 2", got)
	}
	if c.Probe(ctx) {
		t.Error("probe succeeded with nothing listening")
	}
	if got := testutil.ToFloat64(m.misses); got != 1 {
		t.Errorf("misses = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.up); got != 0 {
		t.Errorf("up = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.pending); got != 2 {
		t.Errorf("pending gauge = %v, want 2", got)
	}
	if err := c.Set(ctx, "a", "sha256:short", cache.Descriptor{}); err == nil {
		t.Error("Set accepted an invalid digest")
	}
}

// TestPendingOverflow: past maxPending remembered invalidations the cache
// forgets them and deletes every entry on recovery instead.
func TestPendingOverflow(t *testing.T) {
	c := &Cache{pending: make(map[string]struct{})}
	c.mu.Lock()
	for i := range maxPending + 1 {
		c.addPending(key("r", digest.FromString(strconv.Itoa(i))))
	}
	c.mu.Unlock()
	if !c.flushAll || len(c.pending) != 0 {
		t.Errorf("flushAll %v, pending %d; want a full flush and no list", c.flushAll, len(c.pending))
	}
	if c.setUp() {
		t.Error("cache resumed before the full flush")
	}
}
