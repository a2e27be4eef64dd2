package ratelimit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// fail reserves a token for key and keeps it, as a failed attempt does.
func fail(t *testing.T, l *Limiter, key string) {
	t.Helper()
	if _, ok, wait := l.Reserve(key); !ok {
		t.Fatalf("attempt for %q refused (retry after %v)", key, wait)
	}
}

// step is one action on a Limiter: advance the clock, then reserve for key
// and either keep the token (a failure) or release it (a success).
type step struct {
	advance  time.Duration
	key      string
	release  bool
	wantOK   bool
	wantWait time.Duration
}

func TestReserve(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		steps  []step
	}{
		{
			name: "failures use up the burst", limit: 3, window: time.Minute, // one token every 20 s
			steps: []step{
				{key: "alice", wantOK: true},
				{key: "alice", wantOK: true},
				{key: "alice", wantOK: true},
				{key: "alice", wantWait: 20 * time.Second},
				{key: "bob", wantOK: true},
			},
		},
		{
			name: "successes give their token back", limit: 2, window: time.Minute,
			steps: []step{
				{key: "alice", release: true, wantOK: true},
				{key: "alice", release: true, wantOK: true},
				{key: "alice", release: true, wantOK: true},
				{key: "alice", wantOK: true},
				{key: "alice", wantOK: true},
				{key: "alice", wantWait: 30 * time.Second},
			},
		},
		{
			name: "tokens come back over the window", limit: 6, window: time.Minute, // one every 10 s
			steps: []step{
				{key: "k", wantOK: true}, {key: "k", wantOK: true}, {key: "k", wantOK: true},
				{key: "k", wantOK: true}, {key: "k", wantOK: true}, {key: "k", wantOK: true},
				{key: "k", wantWait: 10 * time.Second},
				{advance: 4 * time.Second, key: "k", wantWait: 6 * time.Second},
				{advance: 6 * time.Second, key: "k", wantOK: true},
				{key: "k", wantWait: 10 * time.Second},
			},
		},
		{
			name: "zero window means the default", limit: 2, window: 0, // one every 2.5 minutes
			steps: []step{
				{key: "k", wantOK: true}, {key: "k", wantOK: true},
				{key: "k", wantWait: DefaultWindow / 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1_000_000, 0)}
			l := New(tt.limit, tt.window, 0)
			l.SetClock(c.now)
			for i, s := range tt.steps {
				c.t = c.t.Add(s.advance)
				res, ok, wait := l.Reserve(s.key)
				if ok != s.wantOK || wait != s.wantWait {
					t.Fatalf("step %d (%s): ok=%v wait=%v, want ok=%v wait=%v", i, s.key, ok, wait, s.wantOK, s.wantWait)
				}
				if s.release {
					res.Release()
				}
			}
		})
	}
}

func TestRelease(t *testing.T) {
	t.Run("twice gives back one token", func(t *testing.T) {
		l := New(2, time.Minute, 0)
		fail(t, l, "k")
		res, _, _ := l.Reserve("k")
		res.Release()
		res.Release()
		fail(t, l, "k")
		if _, ok, _ := l.Reserve("k"); ok {
			t.Fatal("a double release gave back two tokens")
		}
	})
	t.Run("refused reservation holds nothing", func(t *testing.T) {
		l := New(1, time.Minute, 0)
		fail(t, l, "k")
		res, ok, _ := l.Reserve("k")
		if ok {
			t.Fatal("reserved past the limit")
		}
		res.Release()
		if _, ok, _ := l.Reserve("k"); ok {
			t.Fatal("releasing a refused reservation gave a token back")
		}
	})
	t.Run("full bucket is forgotten", func(t *testing.T) {
		l := New(3, time.Minute, 0)
		res, _, _ := l.Reserve("k")
		res.Release()
		if n := l.Len(); n != 0 {
			t.Fatalf("Len = %d after a released reservation, want 0", n)
		}
	})
	t.Run("idle bucket is forgotten", func(t *testing.T) {
		c := &clock{t: time.Unix(0, 0)}
		l := New(3, time.Minute, 0)
		l.SetClock(c.now)
		fail(t, l, "k")
		c.t = c.t.Add(time.Hour)
		res, _, _ := l.Reserve("k")
		res.Release()
		if n := l.Len(); n != 0 {
			t.Fatalf("Len = %d after idle, want 0", n)
		}
	})
}

// TestReserveConcurrent: attempts running at the same time cannot together
// take more tokens than the limit, however many there are.
func TestReserveConcurrent(t *testing.T) {
	const limit, attempts = 10, 200
	l := New(limit, time.Hour, 0)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted int
	)
	start := make(chan struct{})
	for range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, ok, _ := l.Reserve("alice"); ok {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if granted != limit {
		t.Fatalf("%d of %d attempts reserved a token, want %d", granted, attempts, limit)
	}
}

func TestNilLimiterAllows(t *testing.T) {
	l := New(0, 0, 0)
	if l != nil {
		t.Fatal("New(0) should return nil")
	}
	for i := range 3 {
		res, ok, _ := l.Reserve("x")
		if !ok {
			t.Fatalf("attempt %d: nil limiter refused", i)
		}
		res.Release()
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("Len = %d", n)
	}
}

func TestBoundedMemory(t *testing.T) {
	l := New(10, 0, 100)
	for i := range 10_000 {
		fail(t, l, fmt.Sprint("k", i))
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
	fail(t, l, long)
	if _, ok, _ := l.Reserve(long); ok {
		t.Fatal("long key: reserved after its only token was kept")
	}
	if _, ok, _ := l.Reserve(long + "b"); !ok {
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
