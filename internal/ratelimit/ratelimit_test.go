package ratelimit

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	l := New(6, time.Minute, 0) // 6 per minute: one token every 10 s
	l.SetClock(c.now)

	for i := range 6 {
		if ok, _ := l.Allow("alice"); !ok {
			t.Fatalf("attempt %d refused", i)
		}
		l.Fail("alice")
	}
	ok, wait := l.Allow("alice")
	if ok || wait != 10*time.Second {
		t.Fatalf("after burst: ok=%v wait=%v, want refused for 10s", ok, wait)
	}
	if ok, _ := l.Allow("bob"); !ok {
		t.Fatal("another key is refused")
	}
	c.t = c.t.Add(4 * time.Second)
	if ok, wait := l.Allow("alice"); ok || wait != 6*time.Second {
		t.Fatalf("after 4s: ok=%v wait=%v", ok, wait)
	}
	c.t = c.t.Add(6 * time.Second)
	if ok, _ := l.Allow("alice"); !ok {
		t.Fatal("refused after refill")
	}
	// A full bucket is forgotten.
	c.t = c.t.Add(time.Hour)
	l.Allow("alice")
	if n := l.Len(); n != 0 {
		t.Fatalf("Len = %d after idle, want 0", n)
	}
}

func TestWindow(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	l := New(2, 10*time.Minute, 0) // one token every 5 minutes
	l.SetClock(c.now)
	l.Fail("k")
	l.Fail("k")
	if ok, wait := l.Allow("k"); ok || wait != 5*time.Minute {
		t.Fatalf("ok=%v wait=%v, want refused for 5m", ok, wait)
	}
}

func TestNilLimiterAllows(t *testing.T) {
	l := New(0, 0, 0)
	if l != nil {
		t.Fatal("New(0) should return nil")
	}
	l.Fail("x")
	if ok, _ := l.Allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestBoundedMemory(t *testing.T) {
	l := New(10, 0, 100)
	for i := range 10_000 {
		l.Fail(fmt.Sprint("k", i))
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("Len = %d, want <= 100", n)
	}
}

// TestKeySizeBounded: a bucket's map key has a fixed size however long the
// caller's key is (account names come from unauthenticated requests), and
// long keys still get their own bucket.
func TestKeySizeBounded(t *testing.T) {
	l := New(1, time.Minute, 0)
	long := strings.Repeat("a", 60<<10)
	l.Fail(long)
	if ok, _ := l.Allow(long); ok {
		t.Fatal("long key: allowed after its only failure")
	}
	if ok, _ := l.Allow(long + "b"); !ok {
		t.Fatal("a different long key was refused")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.buckets {
		if len(k) > 64 {
			t.Errorf("bucket key is %d bytes long, want at most 64", len(k))
		}
	}
}
