package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Endpoint is one receiver and its delivery settings.
type Endpoint struct {
	Name string
	URL  string
	// Headers go with every request. They may carry credentials: they are
	// never logged.
	Headers   http.Header
	Timeout   time.Duration // per request; default 1s
	Threshold int           // failures in a row before backing off; default 10
	Backoff   time.Duration // the first wait once backing off; default 1s
	// MaxBackoff caps the doubling wait; default max(Backoff, 1m).
	MaxBackoff time.Duration
	// QueueSize bounds the queued events; the oldest is dropped when a new
	// one would not fit. Zero means unbounded.
	QueueSize int
	// IgnoreMediaTypes and IgnoreActions drop matching events before they
	// are queued.
	IgnoreMediaTypes []string
	IgnoreActions    []string
	// Transport, when set, replaces the default HTTP transport (tests).
	Transport http.RoundTripper
}

// Options configure a Notifier.
type Options struct {
	// Dir holds one queue directory per endpoint.
	Dir       string
	Endpoints []Endpoint
	// IncludeReferences adds a manifest's references to its events.
	IncludeReferences bool
	Source            Source
	Logger            *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Notifier queues events on disk and delivers them to its endpoints.
// Create it with New, start delivery with Run, release it with Close.
type Notifier struct {
	opts      Options
	log       *slog.Logger
	endpoints []*endpoint
	lock      *os.File
	m         *metrics
	now       func() time.Time
}

type endpoint struct {
	Endpoint
	q      *queue
	client *http.Client
	url    string // for logs: without credentials
}

// New opens the queues under opts.Dir (taking a lock, so that two
// processes never share them) and picks up the events a previous run left.
func New(opts Options) (_ *Notifier, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dir == "" {
		return nil, errors.New("notifications: no queue directory")
	}
	n := &Notifier{opts: opts, log: opts.Logger.With("component", "notifications"), now: time.Now}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("notifications: queue directory: %w", err)
	}
	if n.lock, err = lockDir(opts.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	if n.m, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range opts.Endpoints {
		if e.Name == "" || seen[e.Name] {
			return nil, fmt.Errorf("notifications: endpoint name %q is empty or used twice", e.Name)
		}
		seen[e.Name] = true
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("notifications: endpoint %q: url is not an http(s) URL", e.Name)
		}
		if e.Timeout <= 0 {
			e.Timeout = time.Second
		}
		if e.Threshold <= 0 {
			e.Threshold = 10
		}
		if e.Backoff <= 0 {
			e.Backoff = time.Second
		}
		if e.MaxBackoff <= 0 {
			e.MaxBackoff = max(e.Backoff, time.Minute)
		}
		tr := e.Transport
		if tr == nil {
			tr = http.DefaultTransport.(*http.Transport).Clone()
		}
		q, err := openQueue(filepath.Join(opts.Dir, dirName(e.Name)), e.QueueSize)
		if err != nil {
			return nil, err
		}
		ep := &endpoint{Endpoint: e, q: q, client: &http.Client{Transport: tr, Timeout: e.Timeout}, url: u.Redacted()}
		n.endpoints = append(n.endpoints, ep)
		n.m.queued.WithLabelValues(e.Name).Set(float64(q.len()))
		for _, c := range []*prometheus.CounterVec{n.m.delivered, n.m.failed} {
			c.WithLabelValues(e.Name)
		}
		n.m.dropped.WithLabelValues(e.Name, "full")
		n.m.dropped.WithLabelValues(e.Name, "error")
		if l := q.len(); l > 0 {
			n.log.Info("notification events left by the previous run will be delivered", "endpoint", e.Name, "events", l)
		}
	}
	return n, nil
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// dirName turns an endpoint name into a directory name: the name itself
// when it is plain, else a hash of it.
func dirName(name string) string {
	if plainName.MatchString(name) && len(name) <= 100 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "endpoint-" + hex.EncodeToString(sum[:8])
}

// lockDir takes an exclusive lock on dir's lock file, held until Close.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // the queue directory comes from the operator's config
	if err != nil {
		return nil, fmt.Errorf("notifications: queue directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil { //nolint:gosec // a file descriptor fits in an int
		_ = f.Close()
		return nil, fmt.Errorf("notifications: queue directory %s is in use by another process (give each registry process its own notifications.queuedir): %w", dir, err)
	}
	return f, nil
}

// Emit queues e for every endpoint that does not ignore it. It returns once
// the event is on disk; push, delete and mount events on stable storage
// (fsynced), pull events without waiting for it: a pull event is queued
// after its content was sent and may be lost in a crash anyway, and the
// pull path should not pay two fsyncs per endpoint. A queue that cannot be written is logged and
// counted as dropped; the request that caused the event is not failed.
func (n *Notifier) Emit(_ context.Context, e Event) {
	var data []byte
	for _, ep := range n.endpoints {
		if ep.ignores(e) {
			continue
		}
		if data == nil {
			var err error
			if data, err = encode(e, n.opts.Source, n.now(), n.opts.IncludeReferences); err != nil {
				n.log.Error("notification event not encoded", "err", err)
				return
			}
		}
		dropped, err := ep.q.append(data, e.Action != ActionPull)
		if err != nil {
			n.m.dropped.WithLabelValues(ep.Name, "error").Inc()
			n.log.Error("notification event could not be queued and is lost", "endpoint", ep.Name, "action", e.Action, "repository", e.Repository, "err", err)
			continue
		}
		if dropped > 0 {
			n.m.dropped.WithLabelValues(ep.Name, "full").Add(float64(dropped))
			n.log.Warn("notification queue full: oldest events dropped", "endpoint", ep.Name, "dropped", dropped, "queuesize", ep.QueueSize)
		}
		n.m.queued.WithLabelValues(ep.Name).Set(float64(ep.q.len()))
	}
}

func (ep *endpoint) ignores(e Event) bool {
	return slices.Contains(ep.IgnoreActions, e.Action) || (e.MediaType != "" && slices.Contains(ep.IgnoreMediaTypes, e.MediaType))
}

// Run delivers queued events until ctx is done, one goroutine per
// endpoint, each in queue order.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ep := range n.endpoints {
		wg.Go(func() { n.deliver(ctx, ep) })
	}
	wg.Wait()
}

// deliver sends ep's events one at a time. After Threshold failures in a
// row it waits Backoff, doubling the wait after each further failure up to
// MaxBackoff; a success resets it.
func (n *Notifier) deliver(ctx context.Context, ep *endpoint) {
	failures := 0
	for ctx.Err() == nil {
		seq, data, ok, err := ep.q.head()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-ep.q.wake:
			}
			continue
		}
		if err == nil {
			err = n.post(ctx, ep, data)
		}
		if err == nil {
			ep.q.remove(seq)
			n.m.delivered.WithLabelValues(ep.Name).Inc()
			n.m.queued.WithLabelValues(ep.Name).Set(float64(ep.q.len()))
			if failures >= ep.Threshold {
				n.log.Info("notification endpoint accepts events again", "endpoint", ep.Name, "url", ep.url, "failures", failures)
			}
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		n.m.failed.WithLabelValues(ep.Name).Inc()
		if failures < ep.Threshold {
			n.log.Debug("notification delivery failed; retrying", "endpoint", ep.Name, "url", ep.url, "failures", failures, "err", err)
			continue
		}
		wait := backoff(ep.Backoff, ep.MaxBackoff, failures-ep.Threshold)
		if failures == ep.Threshold {
			n.log.Warn("notification endpoint failing; backing off", "endpoint", ep.Name, "url", ep.url, "failures", failures, "queued", ep.q.len(), "err", err)
		} else {
			n.log.Debug("notification delivery failed; backing off", "endpoint", ep.Name, "url", ep.url, "failures", failures, "wait", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is base doubled k times, capped at limit.
func backoff(base, limit time.Duration, k int) time.Duration {
	d := base
	for range k {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// errStatus is an answer outside 2xx and 3xx.
type errStatus int

func (e errStatus) Error() string { return fmt.Sprintf("endpoint answered %d", int(e)) }

// post sends one event in an envelope. Any 2xx or 3xx answer accepts it,
// as in distribution.
func (n *Notifier) post(ctx context.Context, ep *endpoint, event []byte) error {
	body := make([]byte, 0, len(event)+14)
	body = append(body, `{"events":[`...)
	body = append(body, event...)
	body = append(body, "]}"...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range ep.Headers {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Content-Type", MediaType)
	resp, err := ep.client.Do(req)
	if err != nil {
		// The error names the URL, which may carry a password: keep only
		// the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return errStatus(resp.StatusCode)
	}
	return nil
}

// QueueLen returns the number of events queued for the endpoint name.
func (n *Notifier) QueueLen(name string) int {
	for _, ep := range n.endpoints {
		if ep.Name == name {
			return ep.q.len()
		}
	}
	return 0
}

// Close releases the queue directory's lock. Queued events stay on disk
// for the next run.
func (n *Notifier) Close() error {
	if n.lock == nil {
		return nil
	}
	err := n.lock.Close()
	n.lock = nil
	return err
}

type metrics struct {
	queued    *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
	dropped   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "gatehouse", Subsystem: "registry", Name: name, Help: help}
	}
	m := &metrics{
		queued:    prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("notifications_queued", "Notification events waiting on disk for delivery, per endpoint.")), []string{"endpoint"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts(opts("notifications_delivered_total", "Notification events an endpoint accepted.")), []string{"endpoint"}),
		failed:    prometheus.NewCounterVec(prometheus.CounterOpts(opts("notifications_failed_total", "Failed delivery attempts (errors, timeouts, answers other than 2xx and 3xx); the event stays queued.")), []string{"endpoint"}),
		dropped:   prometheus.NewCounterVec(prometheus.CounterOpts(opts("notifications_dropped_total", "Notification events lost: the queue was full (the oldest is dropped) or could not be written.")), []string{"endpoint", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.queued, m.delivered, m.failed, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
