package ratelimit

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// A Shared whose Redis refuses connections never refuses an attempt
// because of it: the local buckets limit, and the outage is logged once,
// without the password.
func TestSharedUnreachableFallsBackToLocal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	var logs bytes.Buffer
	s := NewShared(context.Background(), SharedOptions{
		Client:  goredis.UniversalOptions{Addrs: []string{addr}, Password: "redis-pw-do-not-log"},
		Timeout: 100 * time.Millisecond,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	defer s.Close()
	if s.Shared() {
		t.Fatal("Shared() = true with nothing listening")
	}
	l := New(2, time.Minute, 0)
	l.Share(s, "account")
	s.nextTry.Store(0) // let the next call try Redis again
	for i := range 2 {
		res, ok, _ := l.ReserveContext(context.Background(), "alice")
		if !ok || res.shared {
			t.Fatalf("attempt %d: ok=%v shared=%v, want a local reservation", i+1, ok, res.shared)
		}
	}
	if _, ok, wait := l.ReserveContext(context.Background(), "alice"); ok || wait <= 0 {
		t.Fatalf("third attempt: ok=%v wait=%v, want refused locally", ok, wait)
	}
	out := logs.String()
	if n := strings.Count(out, "redis unreachable"); n != 1 {
		t.Errorf("logged the outage %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "redis-pw-do-not-log") {
		t.Errorf("the password reached the log:\n%s", out)
	}
}
