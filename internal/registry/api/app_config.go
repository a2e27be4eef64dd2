package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/auth"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
	"github.com/gatehouse-registry/gatehouse/internal/server"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// Server timeouts. There is no overall read or write timeout: blob uploads
// and downloads may take as long as they need, but a client must send its
// headers promptly and idle connections are closed.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	defaultDrain      = 30 * time.Second
	maxHeaderBytes    = 1 << 20
)

// App is a registry built from a distribution config: storage, access
// control, the API handler, the debug server and upload purging.
type App struct {
	cfg      *regconfig.Config
	log      *slog.Logger
	driver   driver.Driver
	registry *storage.Registry
	handler  *Handler
	metrics  *prometheus.Registry
	tls      *tlsutil.Reloader
	healthy  atomic.Bool
}

// NewLogger builds the logger log: asks for (level, formatter, fields).
func NewLogger(cfg regconfig.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	switch cfg.Level {
	case "debug", "trace":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Formatter == "json" || cfg.Formatter == "logstash" {
		h = slog.NewJSONHandler(w, opts)
	}
	log := slog.New(h)
	for k, v := range cfg.Fields {
		log = log.With(k, v)
	}
	return log
}

// NewApp builds the registry cfg describes. It opens storage and reads
// certificates and htpasswd files, so every problem shows before serving.
func NewApp(cfg *regconfig.Config, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log, metrics: prometheus.NewRegistry()}
	a.healthy.Store(true)
	switch cfg.Driver() {
	case "filesystem":
		fs := cfg.Storage.Filesystem
		d, err := filesystem.New(filesystem.Options{RootDirectory: fs.RootDirectory, Durable: fs.IsDurable()})
		if err != nil {
			return nil, err
		}
		if !fs.IsDurable() {
			log.Warn("storage.filesystem.durable is false: writes are not fsynced and a crash can lose pushed content")
		}
		a.driver = d
	case "inmemory":
		log.Warn("storage.inmemory keeps content in memory only: it is lost when the registry stops")
		a.driver = inmemory.New()
	case "s3":
		return nil, errors.New("storage.s3 is not supported yet by gatehouse registry serve (config check accepts it); use storage.filesystem for now")
	default:
		return nil, errors.New("no storage driver configured")
	}

	var bdc cache.BlobDescriptorCache
	switch cfg.Storage.Cache.BlobDescriptor {
	case "inmemory":
		bdc = cache.NewLRU(*cfg.Storage.Cache.BlobDescriptorSize)
	case "redis":
		log.Warn("storage.cache.blobdescriptor: redis is not supported yet; using the in-memory cache (content is unaffected)")
		bdc = cache.NewLRU(*cfg.Storage.Cache.BlobDescriptorSize)
	}
	urls := cfg.Validation.Manifests.URLs
	urlPolicy, err := storage.CompileURLPolicy(cfg.Validation.Disabled, urls.Allow, urls.Deny)
	if err != nil {
		return nil, err
	}
	a.registry = storage.New(a.driver, storage.Options{
		Delete:       cfg.Storage.Delete.Enabled,
		ReadOnly:     cfg.ReadOnly(),
		Cache:        bdc,
		ManifestURLs: urlPolicy,
		Logger:       log,
	})

	ctl, err := newController(cfg)
	if err != nil {
		return nil, err
	}
	m, err := NewMetrics(a.metrics)
	if err != nil {
		return nil, err
	}
	_ = a.metrics.Register(collectors.NewGoCollector())
	_ = a.metrics.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err := New(Options{
		Registry:        a.registry,
		Auth:            ctl,
		Logger:          log,
		AccessLog:       !cfg.Log.AccessLog.Disabled,
		Prefix:          cfg.HTTP.Prefix,
		Host:            cfg.HTTP.Host,
		RelativeURLs:    cfg.HTTP.RelativeURLs,
		Headers:         cfg.HTTP.Headers,
		Delete:          cfg.Storage.Delete.Enabled,
		ReadOnly:        cfg.ReadOnly(),
		AnonymousMount:  cfg.Auth.Token == nil || cfg.Auth.Token.AnonymousMount,
		MaxTags:         cfg.Tags.MaxTags,
		MaxEntries:      cfg.Catalog.MaxEntries,
		DisableRedirect: cfg.Storage.Redirect.Disable,
		Metrics:         m,
	})
	if err != nil {
		return nil, err
	}
	a.handler = h
	if cfg.HTTP.TLS.Enabled() {
		r, err := tlsutil.NewReloader(cfg.HTTP.TLS.Certificate, cfg.HTTP.TLS.Key, log)
		if err != nil {
			return nil, err
		}
		a.tls = r
	}
	return a, nil
}

// newController builds the access controller of cfg.auth (nil: none).
func newController(cfg *regconfig.Config) (auth.Controller, error) {
	switch {
	case cfg.Auth.Token != nil:
		tk := cfg.Auth.Token
		opts := token.VerifierOptions{Issuer: tk.Issuer, Service: tk.Service, Algorithms: tk.SigningAlgorithms}
		if tk.RootCertBundle != "" {
			certs, err := tlsutil.LoadCertificates(tk.RootCertBundle)
			if err != nil {
				return nil, fmt.Errorf("auth.token.rootcertbundle: %w", err)
			}
			opts.RootCerts = certs
		}
		if tk.JWKS != "" {
			data, err := os.ReadFile(tk.JWKS)
			if err != nil {
				return nil, fmt.Errorf("auth.token.jwks: %w", err)
			}
			opts.JWKS = data
		}
		v, err := token.NewVerifier(opts)
		if err != nil {
			return nil, fmt.Errorf("auth.token: %w", err)
		}
		return auth.NewToken(auth.TokenOptions{Realm: tk.Realm, Service: tk.Service, AutoRedirect: tk.AutoRedirect,
			AutoRedirectPath: tk.AutoRedirectPath, Verifier: v})
	case cfg.Auth.Htpasswd != nil:
		return auth.LoadHtpasswd(cfg.Auth.Htpasswd.Realm, cfg.Auth.Htpasswd.Path)
	}
	return nil, nil
}

// Handler returns the API handler with the health gate in front.
func (a *App) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.healthy.Load() {
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			writeError(w, r, &Error{Code: CodeUnavailable, Message: "storage is unhealthy"})
			return
		}
		a.handler.ServeHTTP(w, r)
	})
}

// Registry returns the storage logic (for gc and tests).
func (a *App) Registry() *storage.Registry { return a.registry }

// tlsConfig builds the listener's TLS settings from http.tls.
func (a *App) tlsConfig() (*tls.Config, error) {
	t := a.cfg.HTTP.TLS
	tc, err := tlsutil.ServerConfig(tlsutil.ServerOptions{
		GetCertificate: a.tls.GetCertificate,
		MinVersion:     strings.TrimPrefix(strings.ToLower(t.MinimumTLS), "tls"),
		CipherSuites:   t.CipherSuites,
	})
	if err != nil {
		return nil, fmt.Errorf("http.tls: %w", err)
	}
	if len(t.ClientCAs) > 0 || t.ClientAuth != "" {
		pool := x509.NewCertPool()
		for _, f := range t.ClientCAs {
			certs, err := tlsutil.LoadCertificates(f)
			if err != nil {
				return nil, fmt.Errorf("http.tls.clientcas: %w", err)
			}
			for _, c := range certs {
				pool.AddCert(c)
			}
		}
		tc.ClientCAs = pool
		tc.ClientAuth = map[string]tls.ClientAuthType{
			"request-client-cert":            tls.RequestClientCert,
			"require-any-client-cert":        tls.RequireAnyClientCert,
			"verify-client-cert-if-given":    tls.VerifyClientCertIfGiven,
			"require-and-verify-client-cert": tls.RequireAndVerifyClientCert,
		}[t.ClientAuth]
	}
	if a.cfg.HTTP.HTTP2.Disabled {
		tc.NextProtos = []string{"http/1.1"}
	} else {
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	return tc, nil
}

// Listen opens the registry listener (http.addr on http.net).
func (a *App) Listen() (net.Listener, error) {
	l, err := net.Listen(a.cfg.HTTP.Net, a.cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr: %w", err)
	}
	if a.tls != nil {
		tc, err := a.tlsConfig()
		if err != nil {
			_ = l.Close()
			return nil, err
		}
		l = tls.NewListener(l, tc)
	}
	return l, nil
}

func (a *App) newServer(h http.Handler) *http.Server {
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	if a.cfg.HTTP.HTTP2.Disabled {
		s.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	return s
}

// Serve runs the registry on l until ctx is done, then drains requests in
// flight for up to http.draintimeout. The debug server and upload purging
// run alongside.
func (a *App) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := a.newServer(a.Handler())
	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	if a.tls != nil {
		go a.tls.Watch(ctx, 30*time.Second)
	}
	go a.onHangup(ctx)
	if addr := a.cfg.HTTP.Debug.Addr; addr != "" {
		dl, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("http.debug.addr: %w", err)
		}
		ds := a.newServer(a.debugHandler())
		servers = append(servers, ds)
		go func() { errc <- serveErr(ds.Serve(dl)) }()
		a.log.Info("debug server listening", "addr", dl.Addr().String())
	}
	if a.cfg.Health.StorageDriver.Enabled {
		go a.watchHealth(ctx)
	}
	if a.cfg.Storage.Maintenance.UploadPurging.IsEnabled() && !a.cfg.ReadOnly() {
		go a.purgeUploads(ctx)
	}
	go func() { errc <- serveErr(srv.Serve(l)) }()
	a.log.Info("registry listening", "addr", l.Addr().String(), "tls", a.tls != nil, "storage", a.driver.Name(), "auth", authName(a.cfg))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	drain := a.cfg.HTTP.DrainTimeout
	if drain <= 0 {
		drain = defaultDrain
	}
	a.log.Info("shutting down", "drain_timeout", drain.String())
	sctx, scancel := context.WithTimeout(context.Background(), drain)
	defer scancel()
	for _, s := range servers {
		if serr := s.Shutdown(sctx); serr != nil && err == nil {
			err = fmt.Errorf("shutdown: %w", serr)
			_ = s.Close()
		}
	}
	return err
}

func authName(cfg *regconfig.Config) string {
	if k := cfg.AuthKind(); k != "" {
		return k
	}
	return "none"
}

func serveErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// debugHandler serves /debug/health, metrics and pprof.
func (a *App) debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !a.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"storagedriver":"unhealthy"}`)
			return
		}
		_, _ = io.WriteString(w, "{}")
	})
	if p := a.cfg.HTTP.Debug.Prometheus; p.Enabled {
		mux.Handle(p.Path, promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// watchHealth stats the storage root every interval; threshold failures in
// a row mark the registry unhealthy (503) until a check passes.
func (a *App) watchHealth(ctx context.Context) {
	hc := a.cfg.Health.StorageDriver
	t := time.NewTicker(hc.Interval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, hc.Interval)
		_, err := a.driver.Stat(cctx, "/")
		cancel()
		if err != nil && !driver.IsNotFound(err) {
			failures++
			if failures >= hc.Threshold && a.healthy.Swap(false) {
				a.log.Error("storage health check failing; answering 503", "err", err)
			}
			continue
		}
		failures = 0
		if !a.healthy.Swap(true) {
			a.log.Info("storage health check passing again")
		}
	}
}

// purgeUploads removes abandoned uploads every interval (first run after a
// random delay of up to a minute, so replicas do not all run together).
func (a *App) purgeUploads(ctx context.Context) {
	up := a.cfg.Storage.Maintenance.UploadPurging
	delay := time.Duration(rand.Int64N(int64(time.Minute))) //nolint:gosec // scheduling jitter, not a secret
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = up.Interval
		res, err := storage.PurgeUploads(ctx, a.driver, up.Age, up.DryRun)
		if err != nil {
			a.log.Error("upload purge failed", "err", err)
			continue
		}
		a.log.Info("upload purge", "purged", res.Purged, "errors", res.Errors, "dry_run", up.DryRun)
	}
}

// onHangup answers SIGHUP: the TLS certificate is reloaded at once (it is
// also polled); other settings need a restart, which the log says, instead
// of SIGHUP's default of ending the process.
func (a *App) onHangup(ctx context.Context) {
	for range server.Signals(ctx) {
		if a.tls != nil {
			if err := a.tls.Reload(); err != nil {
				a.log.Error("SIGHUP: certificate not reloaded; the current one stays", "err", err)
			} else {
				a.log.Info("SIGHUP: certificate reloaded")
			}
		}
		a.log.Info("SIGHUP: registry settings other than the certificate take effect at the next start")
	}
}
