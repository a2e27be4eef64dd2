// Package health runs the registry's periodic health checks (storage,
// files, HTTP and TCP dependencies) and reports which are failing, as
// distribution's health package does: a check fails after Threshold failed
// probes in a row and passes again at its first successful probe.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// Check is one periodic probe.
type Check struct {
	Name      string
	Interval  time.Duration
	Threshold int                             // failed probes in a row before the check fails; at least 1
	Timeout   time.Duration                   // bounds one probe; default Interval
	Probe     func(ctx context.Context) error // nil error: healthy
}

// Checks runs a set of checks. The zero value has no checks and is
// healthy.
type Checks struct {
	checks []Check
	log    *slog.Logger

	mu      sync.Mutex
	failing map[string]string // check name -> last error
}

// New returns the checks, all passing until their first probes say
// otherwise.
func New(checks []Check, log *slog.Logger) *Checks {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for i := range checks {
		if checks[i].Threshold < 1 {
			checks[i].Threshold = 1
		}
		if checks[i].Timeout <= 0 {
			checks[i].Timeout = checks[i].Interval
		}
	}
	return &Checks{checks: checks, log: log, failing: map[string]string{}}
}

// Run probes every check at once and then every Interval until ctx is
// done.
func (c *Checks) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ch := range c.checks {
		wg.Go(func() { c.run(ctx, ch) })
	}
	wg.Wait()
}

func (c *Checks) run(ctx context.Context, ch Check) {
	t := time.NewTicker(ch.Interval)
	defer t.Stop()
	failures := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, ch.Timeout)
		err := ch.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			if failures >= ch.Threshold {
				c.set(ch.Name, err)
			}
		} else {
			failures = 0
			c.set(ch.Name, nil)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Checks) set(name string, err error) {
	c.mu.Lock()
	_, was := c.failing[name]
	if err != nil {
		c.failing[name] = err.Error()
	} else {
		delete(c.failing, name)
	}
	c.mu.Unlock()
	switch {
	case err != nil && !was:
		c.log.Error("health check failing; the registry answers 503", "check", name, "err", err)
	case err == nil && was:
		c.log.Info("health check passing again", "check", name)
	}
}

// Healthy reports whether no check is failing.
func (c *Checks) Healthy() bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.failing) == 0
}

// Failing returns the failing checks and their last errors.
func (c *Checks) Failing() map[string]string {
	out := map[string]string{}
	if c == nil {
		return out
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.failing {
		out[k] = v
	}
	return out
}

// FileProbe fails while path exists: an operator creates the file to take
// the registry out of a load balancer.
func FileProbe(path string) func(context.Context) error {
	return func(context.Context) error {
		if _, err := os.Stat(path); err == nil {
			return errors.New("file exists")
		}
		return nil
	}
}

// HTTPProbe fails unless a HEAD of uri answers status. header is sent
// with it (it may hold credentials; it is never part of the error).
func HTTPProbe(uri string, header http.Header, status int) func(context.Context) error {
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, uri, nil)
		if err != nil {
			return err
		}
		for k, vs := range header {
			req.Header[k] = append([]string(nil), vs...)
		}
		resp, err := client.Do(req)
		if err != nil {
			// The error names the URL, which may carry a password.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("HEAD failed: %w", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode != status {
			return fmt.Errorf("downstream service answered %d, want %d", resp.StatusCode, status)
		}
		return nil
	}
}

// TCPProbe fails while addr does not accept connections.
func TCPProbe(addr string) func(context.Context) error {
	var d net.Dialer
	return func(ctx context.Context) error {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("connection to %s failed: %w", addr, err)
		}
		return conn.Close()
	}
}
