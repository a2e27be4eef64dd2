package s3

import (
	"errors"
	"testing"
)

// TestPipeBudget: a pipe sends in the background only with a second
// buffer from the driver's budget; when the budget is spent, start
// returns nil and the caller sends in turn. Releasing gives it back.
func TestPipeBudget(t *testing.T) {
	d := &Driver{spares: make(chan struct{}, 1)}
	a, b := &pipe{d: d}, &pipe{d: d}
	gate := make(chan struct{})
	var got [][]byte
	put := func(buf []byte) (string, error) {
		<-gate
		got = append(got, buf)
		return "etag-" + string(buf), nil
	}
	next := a.start([]byte("one"), put)
	if next == nil || len(next) != 0 || cap(next) != 3 {
		t.Fatalf("first start: %v (cap %d), want an empty buffer of the same capacity", next, cap(next))
	}
	if b.start([]byte("two"), put) != nil {
		t.Fatal("a second pipe started in the background with the budget spent")
	}
	close(gate)
	etag, flew, err := a.wait()
	if etag != "etag-one" || !flew || err != nil {
		t.Fatalf("wait = %q, %v, %v", etag, flew, err)
	}
	// The buffer that flew comes back for the next chunk.
	if next := a.start([]byte("three"), put); next == nil || cap(next) != 3 {
		t.Fatalf("start after wait: %v, want the first buffer back", next)
	}
	a.release()
	if len(got) != 2 || string(got[1]) != "three" {
		t.Fatalf("sent %q, want one and three", got)
	}
	if b.start([]byte("four"), put) == nil {
		t.Fatal("the budget was not given back by release")
	}
	b.release()
	if len(d.spares) != 0 {
		t.Fatalf("%d tokens held after every pipe released", len(d.spares))
	}
}

// TestPipeError: the error of the chunk in flight comes from wait.
func TestPipeError(t *testing.T) {
	d := &Driver{spares: newSpares(5 << 20)}
	p := &pipe{d: d}
	boom := errors.New("boom")
	p.start([]byte("x"), func([]byte) (string, error) { return "", boom })
	if _, flew, err := p.wait(); !flew || !errors.Is(err, boom) {
		t.Fatalf("wait = %v, %v; want the put's error", flew, err)
	}
	if _, flew, _ := p.wait(); flew {
		t.Fatal("a second wait saw a flight")
	}
	p.release()
}
