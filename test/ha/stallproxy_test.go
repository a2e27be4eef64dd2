//go:build integration

package ha

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// stallProxy is a TCP proxy in front of S3 that can be switched to stall:
// while stalled, a new connection is accepted and held (nothing forwarded),
// and a connection already open stops forwarding in the middle of whatever
// it carries. The bytes a held connection is sent are read and dropped, so
// the sender is never blocked by TCP: it must give up on its own clock.
// A held connection stays held until its client closes it.
type stallProxy struct {
	ln       net.Listener
	upstream string
	stalled  atomic.Bool

	clients   atomic.Int64 // client connections open
	upstreams atomic.Int64 // connections to upstream open
	held      atomic.Int64 // client connections that met a stall and are still open
	everHeld  atomic.Int64 // connections that met a stall, in all

	wg sync.WaitGroup
}

// startStallProxy listens on 127.0.0.1 and forwards to upstream
// (host:port). It stops when the test ends.
func startStallProxy(t *testing.T, upstream string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.clients.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.clients.Add(-1)
			defer c.Close()
			p.handle(c)
		}()
	}
}

func (p *stallProxy) handle(c net.Conn) {
	if p.stalled.Load() {
		p.hold(c)
		return
	}
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	p.upstreams.Add(1)
	defer p.upstreams.Add(-1)
	defer up.Close()
	var held atomic.Bool // once a connection stalls it never forwards again
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && p.stalled.Load() && held.CompareAndSwap(false, true) {
				p.held.Add(1)
				p.everHeld.Add(1)
			}
			if n > 0 && !held.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // one side ended: end both
	_ = c.Close()
	_ = up.Close()
	<-done
	if held.Load() {
		p.held.Add(-1)
	}
}

// hold reads and drops what c sends until its client closes it.
func (p *stallProxy) hold(c net.Conn) {
	p.held.Add(1)
	p.everHeld.Add(1)
	defer p.held.Add(-1)
	_, _ = io.Copy(io.Discard, c)
}
