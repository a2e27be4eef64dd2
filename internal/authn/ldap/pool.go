package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// maxIdle is how long an idle pooled connection is kept; directories (Active
// Directory among them) drop idle connections after some minutes, and a
// connection reused after that fails its first request.
const maxIdle = 2 * time.Minute

// conn is one LDAP connection and what the pool knows about it.
type conn struct {
	*goldap.Conn
	lastUsed time.Time
	reused   bool // taken from the idle list rather than freshly dialed
}

// dialer opens connections to one endpoint.
type dialer struct {
	ep             endpoint
	dialTimeout    time.Duration
	requestTimeout time.Duration
	tlsConfig      func() *tls.Config
}

// dial connects, runs the TLS handshake (LDAPS or StartTLS) within the dial
// timeout, and sets the request timeout on the connection.
func (d *dialer) dial(ctx context.Context) (*goldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.dialTimeout)
	defer cancel()
	nd := net.Dialer{Timeout: d.dialTimeout, KeepAlive: 30 * time.Second}
	raw, err := nd.DialContext(ctx, "tcp", d.ep.hostPort)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	switch d.ep.tls {
	case TLSAlways:
		tc := tls.Client(raw, d.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c := goldap.NewConn(tc, true)
		c.Start()
		c.SetTimeout(d.requestTimeout)
		return c, nil
	case TLSStartTLS:
		// The deadline on the raw connection bounds the StartTLS operation
		// and the handshake that follows; it is lifted afterwards.
		if err := raw.SetDeadline(deadline); err != nil {
			_ = raw.Close()
			return nil, err
		}
		c := goldap.NewConn(raw, false)
		c.Start()
		c.SetTimeout(d.dialTimeout)
		if err := c.StartTLS(d.tlsConfig()); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
		if err := raw.SetDeadline(time.Time{}); err != nil {
			_ = c.Close()
			return nil, err
		}
		c.SetTimeout(d.requestTimeout)
		return c, nil
	default:
		c := goldap.NewConn(raw, false)
		c.Start()
		c.SetTimeout(d.requestTimeout)
		return c, nil
	}
}

// pool keeps up to size open connections prepared by setup (the service
// pool binds them as the service account). At most size connections are in
// use at once; callers beyond that wait, bounded by their context and wait.
type pool struct {
	name  string
	dial  func(ctx context.Context) (*goldap.Conn, error)
	slots chan struct{}
	wait  time.Duration
	keep  bool // false: close every connection after use (no pooling)

	mu     sync.Mutex
	idle   []*conn
	closed bool
}

var errClosed = errors.New("ldap: authenticator closed")

func newPool(name string, size int, wait time.Duration, keep bool, dial func(ctx context.Context) (*goldap.Conn, error)) *pool {
	return &pool{name: name, dial: dial, slots: make(chan struct{}, size), wait: wait, keep: keep}
}

// get returns an idle connection, or dials a new one.
func (p *pool) get(ctx context.Context) (*conn, error) {
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, &transportError{op: "waiting for a connection", err: ctx.Err()}
	case <-t.C:
		return nil, &transportError{op: "waiting for a connection", err: fmt.Errorf("all %d %s connections stayed busy for %s", cap(p.slots), p.name, p.wait)}
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.slots
			return nil, errClosed
		}
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if c.IsClosing() || time.Since(c.lastUsed) > maxIdle {
			go func() { _ = c.Close() }()
			continue
		}
		c.reused = true
		return c, nil
	}
	lc, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		var sb *serviceBindError
		if errors.As(err, &sb) || isTransport(err) {
			return nil, err
		}
		return nil, netErr("connect", err)
	}
	return &conn{Conn: lc}, nil
}

// put gives c back. A connection that saw an error (healthy false) is
// closed rather than reused.
func (p *pool) put(c *conn, healthy bool) {
	defer func() { <-p.slots }()
	p.mu.Lock()
	if !healthy || !p.keep || p.closed || c.IsClosing() || len(p.idle) >= cap(p.slots) {
		p.mu.Unlock()
		go func() { _ = c.Close() }()
		return
	}
	c.lastUsed = time.Now()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// drain closes the idle connections, so the next requests dial afresh.
func (p *pool) drain() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

// close drains the pool and refuses further use.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.drain()
}
