package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// pacer is a TCP relay on 127.0.0.1 that forwards every connection to an
// address at no more than a given rate in each direction, shared by all
// its connections as a network link is: the proxy suite's upstream seen
// through a network slower than the local disk.
type pacer struct {
	ln    net.Listener
	to    string
	up    *bucket // client -> upstream
	down  *bucket // upstream -> client
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// newPacer starts a relay to address to at bytesPerSec each way.
func newPacer(to string, bytesPerSec float64) (*pacer, error) {
	if bytesPerSec <= 0 {
		return nil, errors.New("pacer: the rate must be positive")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pacer{ln: ln, to: to, up: newBucket(bytesPerSec), down: newBucket(bytesPerSec), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

// Addr is the relay's host:port.
func (p *pacer) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, breaks the open connections and waits for them.
func (p *pacer) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil // track refuses from now on
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// track adds c to the open connections, or says the pacer is closed.
func (p *pacer) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *pacer) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *pacer) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.relay(c) })
	}
}

func (p *pacer) relay(client net.Conn) {
	if !p.track(client) {
		_ = client.Close()
		return
	}
	defer p.untrack(client)
	server, err := net.Dial("tcp", p.to)
	if err != nil {
		return
	}
	if !p.track(server) {
		_ = server.Close()
		return
	}
	defer p.untrack(server)
	var wg sync.WaitGroup
	wg.Go(func() { pace(server, client, p.up) })
	pace(client, server, p.down)
	wg.Wait()
}

// pace copies src to dst through bucket b. At src's end it half-closes
// dst, so the other end sees the end of what was sent; on an error it
// closes both, which ends the other direction too.
func pace(dst, src net.Conn, b *bucket) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b.take(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err == nil {
			continue
		}
		if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
			_ = tc.CloseWrite()
			return
		}
		_ = dst.Close()
		_ = src.Close()
		return
	}
}

// bucket is a token bucket in virtual time: each take moves the time at
// which the bytes taken so far may have gone by n/rate, and sleeps until
// then. Up to burst of unused time carries over, so sleeping late once is
// made up by the next takes.
type bucket struct {
	rate  float64 // bytes per second
	burst time.Duration
	mu    sync.Mutex
	at    time.Time
}

func newBucket(bytesPerSec float64) *bucket {
	return &bucket{rate: bytesPerSec, burst: 10 * time.Millisecond}
}

func (b *bucket) take(n int) {
	b.mu.Lock()
	now := time.Now()
	if floor := now.Add(-b.burst); b.at.Before(floor) {
		b.at = floor
	}
	b.at = b.at.Add(time.Duration(float64(n) / b.rate * float64(time.Second)))
	wait := b.at.Sub(now)
	b.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
}
