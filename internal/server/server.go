// Package server is the process lifecycle shared by Gatehouse's servers:
// listening on TCP or a unix socket, TLS through a GetCertificate callback
// (so certificates reload without restarting the listener), HTTP timeouts,
// graceful shutdown, and reload triggers (SIGHUP and polled config files).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Defaults used when a Config field is zero.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultDrainTimeout      = 30 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Config describes one HTTP server.
//
// For every timeout, zero means the default above and a negative value
// means no limit (a registry serving multi-gigabyte blobs sets ReadTimeout
// and WriteTimeout to -1 and relies on ReadHeaderTimeout and IdleTimeout).
type Config struct {
	// Name labels the server in logs ("auth", "registry").
	Name string
	// Network is "tcp" (the default) or "unix".
	Network string
	// Addr is host:port for tcp, or the socket path for unix. A stale
	// socket file (one nobody listens on) is removed first.
	Addr string
	// Handler serves the requests.
	Handler http.Handler
	// TLS enables HTTPS. Set GetCertificate (see TLSConfig) so certificates
	// can be reloaded. Nil serves plain HTTP and logs a warning.
	TLS *tls.Config
	// Logger receives lifecycle messages and net/http's own errors; nil
	// discards them.
	Logger *slog.Logger

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// DrainTimeout bounds the graceful shutdown: requests still running
	// after it are cut off.
	DrainTimeout time.Duration
	// BodyReadTimeout is the longest a request body may pause between two
	// reads that return data (and before the first): a client that announces
	// a body and stops sending is cut off after it, whatever the other
	// timeouts say, while an upload that keeps sending is not. Zero means
	// DefaultBodyReadTimeout; negative, no limit.
	BodyReadTimeout time.Duration
	// MaxHeaderBytes limits request headers (default 64 KiB).
	MaxHeaderBytes int
	// DisableHTTP2 serves HTTP/1.1 only (distribution's http.http2.disabled).
	DisableHTTP2 bool
}

// Server is a listening HTTP server. Create it with New, serve with Run.
type Server struct {
	name  string
	ln    net.Listener
	hs    *http.Server
	log   *slog.Logger
	drain time.Duration
	tls   bool
}

func pick(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	default:
		return v
	}
}

// TLSConfig returns a server TLS configuration that takes its certificate
// from getCert on every handshake (for example tlsutil.Reloader's
// GetCertificate) and refuses versions below minVersion (TLS 1.2 when zero).
func TLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), minVersion uint16) *tls.Config {
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	return &tls.Config{
		GetCertificate: getCert,
		MinVersion:     minVersion,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// New listens on cfg's address and returns a Server ready to Run. It
// listens at once, so Addr reports the real port when Addr asked for port 0.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("server: no handler")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name != "" {
		log = log.With("server", cfg.Name)
	}
	if cfg.TLS != nil && cfg.TLS.GetCertificate == nil && len(cfg.TLS.Certificates) == 0 {
		return nil, errors.New("server: TLS config has no certificate")
	}
	ln, err := Listen(ctx, cfg.Network, cfg.Addr)
	if err != nil {
		return nil, err
	}
	maxHeader := cfg.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxHeaderBytes
	}
	handler := cfg.Handler
	readTimeout := pick(cfg.ReadTimeout, DefaultReadTimeout)
	if idle := pick(cfg.BodyReadTimeout, DefaultBodyReadTimeout); idle > 0 {
		handler = withBodyTimeout(handler, idle, readTimeout)
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: pick(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       readTimeout,
		WriteTimeout:      pick(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       pick(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s := &Server{name: cfg.Name, ln: ln, hs: hs, log: log, drain: pick(cfg.DrainTimeout, DefaultDrainTimeout)}
	if cfg.TLS != nil {
		hs.TLSConfig = cfg.TLS.Clone()
		if cfg.DisableHTTP2 {
			hs.TLSConfig.NextProtos = []string{"http/1.1"}
			hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
		s.ln = tls.NewListener(ln, hs.TLSConfig)
		s.tls = true
	}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the base URL of a TCP server ("https://127.0.0.1:5001"),
// for logs and tests.
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Run serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting, lets running requests finish for up to the drain timeout, and
// closes what is left. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	if s.tls {
		s.log.Info("listening", "addr", s.ln.Addr().String(), "tls", true)
	} else {
		s.log.Warn("listening WITHOUT TLS: credentials and tokens travel in clear text; configure a certificate", "addr", s.ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- s.hs.Serve(s.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("server %s: %w", s.name, err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "drain_timeout", s.drain.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.drain)
	defer cancel()
	err := s.hs.Shutdown(sctx)
	if err != nil {
		s.log.Warn("drain timeout reached; closing remaining connections", "err", err)
		_ = s.hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("serve", "err", err)
	}
	s.log.Info("stopped")
	return nil
}

// Close stops the server at once, dropping running requests. It also
// releases a listener that was never Run.
func (s *Server) Close() error {
	err := s.hs.Close()
	if cerr := s.ln.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// Listen opens a listener. network is "tcp" (or empty) or "unix". For unix,
// an existing socket file at addr that nobody listens on is removed first;
// a live socket or any other kind of file is an error.
func Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	switch network {
	case "", "tcp", "tcp4", "tcp6":
		if network == "" {
			network = "tcp"
		}
	case "unix":
		if err := removeStaleSocket(ctx, addr); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("listen: network %q is not supported (use tcp or unix)", network)
	}
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

func removeStaleSocket(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("listen: %s exists and is not a socket; refusing to remove it", path)
	}
	d := net.Dialer{Timeout: time.Second}
	if c, err := d.DialContext(ctx, "unix", path); err == nil {
		_ = c.Close()
		return fmt.Errorf("listen: another process is serving on %s", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listen: remove stale socket: %w", err)
	}
	return nil
}

// Group runs a process's servers and background tasks together: Run
// serves main and every extra server (a debug or metrics listener) and
// runs every task until ctx ends or any server fails, then drains them all
// and waits for the tasks to return. It is how both halves, and serve,
// run. Nil servers are skipped.
type Group struct {
	Main  *Server
	Extra []*Server
	Tasks []func(ctx context.Context)
}

// Run runs the group (see Group). Its error joins every server's.
func (g Group) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(g.Extra))
	for _, s := range g.Extra {
		if s == nil {
			continue
		}
		wg.Go(func() {
			defer cancel()
			errs <- s.Run(ctx)
		})
	}
	for _, task := range g.Tasks {
		wg.Go(func() { task(ctx) })
	}
	err := g.Main.Run(ctx)
	cancel()
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	return err
}

// Close closes every server of the group at once (see Server.Close).
func (g Group) Close() error {
	var err error
	for _, s := range append([]*Server{g.Main}, g.Extra...) {
		if s != nil {
			err = errors.Join(err, s.Close())
		}
	}
	return err
}
