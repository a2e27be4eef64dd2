// Package app composes the registry from a distribution config.yml: the
// storage driver, the blob descriptor cache, access control, the API
// handler, the debug server (health, metrics, pprof), upload purging and
// certificate reloads, all run on internal/server's lifecycle.
//
// It is the registry's half of the "config -> driver -> caches -> auth ->
// handler" wiring; the HTTP package (registry/api) knows nothing of config
// files, drivers or listeners.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/gatehouse-registry/gatehouse/internal/cache/redis"
	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/api"
	"github.com/gatehouse-registry/gatehouse/internal/registry/auth"
	"github.com/gatehouse-registry/gatehouse/internal/registry/health"
	"github.com/gatehouse-registry/gatehouse/internal/registry/notify"
	"github.com/gatehouse-registry/gatehouse/internal/registry/proxy"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/server"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// Registry server limits. There is no overall read or write timeout: blob
// uploads and downloads take as long as they need while data flows. A
// client must send its headers within ReadHeaderTimeout, and a request body
// that stops arriving is cut off after BodyReadTimeout.
const (
	maxHeaderBytes = 128 << 10
	// certPollInterval is how often certificate and key files are checked
	// for changes (SIGHUP reloads at once).
	certPollInterval = time.Second
)

// App is a registry built from a distribution config. Create it with New,
// serve with Run, release it with Close.
type App struct {
	cfg      *regconfig.Config
	log      *slog.Logger
	driver   driver.Driver
	registry *storage.Registry
	handler  *api.Handler
	metrics  *prometheus.Registry
	tls      *tlsutil.Reloader
	redis    *redis.Cache     // nil unless storage.cache.blobdescriptor is redis
	notifier *notify.Notifier // nil without enabled notification endpoints
	health   *health.Checks
	proxy    *proxy.Cache // nil unless the proxy section is set

	main, debug *server.Server
	closeOnce   sync.Once
}

// New builds the registry cfg describes and opens its listeners (so a port
// in use is an error before anything is served). It opens storage and
// reads certificates and htpasswd files, so every problem shows before
// serving. On error nothing is left open.
func New(ctx context.Context, cfg *regconfig.Config, log *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: log, metrics: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if a.driver, err = OpenDriver(cfg, log); err != nil {
		return nil, err
	}

	var bdc cache.BlobDescriptorCache
	switch cfg.Storage.Cache.BlobDescriptor {
	case "inmemory":
		bdc = cache.NewLRU(*cfg.Storage.Cache.BlobDescriptorSize)
	case "redis":
		if a.redis, err = openRedisCache(ctx, cfg.Redis, log, a.metrics); err != nil {
			return nil, err
		}
		bdc = a.redis
	}
	urls := cfg.Validation.Manifests.URLs
	urlPolicy, err := storage.CompileURLPolicy(cfg.Validation.Disabled, urls.Allow, urls.Deny)
	if err != nil {
		return nil, err
	}
	rd, err := redirector(cfg)
	if err != nil {
		return nil, err
	}
	a.registry = storage.New(a.driver, storage.Options{
		Redirector:   rd,
		Delete:       cfg.Storage.Delete.Enabled,
		ReadOnly:     cfg.ReadOnly(),
		Cache:        bdc,
		ManifestURLs: urlPolicy,
		Logger:       log,
	})

	a.health = health.New(healthChecks(cfg, a.driver), log)

	ctl, err := newController(cfg)
	if err != nil {
		return nil, err
	}
	m, err := api.NewMetrics(a.metrics)
	if err != nil {
		return nil, err
	}
	if a.notifier, err = openNotifier(cfg, log, a.metrics); err != nil {
		return nil, err
	}
	var events api.Events
	if a.notifier != nil {
		events = a.notifier
	}
	_ = a.metrics.Register(collectors.NewGoCollector())
	_ = a.metrics.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var pull api.PullThrough
	if cfg.Proxy != nil {
		if a.proxy, err = newProxy(ctx, cfg, a.registry, log, a.metrics); err != nil {
			return nil, err
		}
		pull = a.proxy
	}
	a.handler, err = api.New(api.Options{
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
		Events:          events,
		Healthy:         a.health.Healthy,
		Proxy:           pull,
	})
	if err != nil {
		return nil, err
	}

	scfg := server.Config{
		Name:    "registry",
		Network: cfg.HTTP.Net,
		Addr:    cfg.HTTP.Addr,
		Handler: a.handler,
		Logger:  log,
		// No overall limits: a blob transfer takes as long as it needs
		// while data flows.
		ReadTimeout:       -1,
		WriteTimeout:      -1,
		ReadHeaderTimeout: cfg.HTTP.Timeouts.ReadHeader,
		BodyReadTimeout:   cfg.HTTP.Timeouts.BodyRead,
		IdleTimeout:       cfg.HTTP.Timeouts.Idle,
		// Zero: server.DefaultDrainTimeout.
		DrainTimeout:   cfg.HTTP.DrainTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		DisableHTTP2:   cfg.HTTP.HTTP2.Disabled,
	}
	if cfg.HTTP.TLS.Enabled() {
		if a.tls, err = tlsutil.NewReloader(cfg.HTTP.TLS.Certificate, cfg.HTTP.TLS.Key, log); err != nil {
			return nil, err
		}
		if scfg.TLS, err = a.tlsConfig(); err != nil {
			return nil, err
		}
	}
	if a.main, err = server.New(ctx, scfg); err != nil {
		return nil, fmt.Errorf("http.addr: %w", err)
	}
	if addr := cfg.HTTP.Debug.Addr; addr != "" {
		a.debug, err = server.New(ctx, server.Config{Name: "registry-debug", Addr: addr, Handler: a.debugHandler(), Logger: log,
			ReadTimeout: -1, WriteTimeout: -1, DrainTimeout: time.Second})
		if err != nil {
			return nil, fmt.Errorf("http.debug.addr: %w", err)
		}
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

// Handler returns the API handler (health gate included).
func (a *App) Handler() http.Handler { return a.handler }

// Registry returns the storage logic (for tests).
func (a *App) Registry() *storage.Registry { return a.registry }

// URL is the registry's base URL ("https://127.0.0.1:5000").
func (a *App) URL() string { return a.main.URL() }

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
	tc.NextProtos = []string{"h2", "http/1.1"}
	return tc, nil
}

// Run serves the registry until ctx is done, then drains requests in
// flight for up to http.draintimeout. The debug server, health checks,
// upload purging and certificate reloads (SIGHUP, or a changed file) run
// alongside. Either listener failing stops both.
func (a *App) Run(ctx context.Context) error {
	tasks := []func(context.Context){
		func(ctx context.Context) { server.ReloadLoop(ctx, a.log, certPollInterval, a.watched(), a.reload, nil) },
		a.health.Run,
	}
	if a.redis != nil {
		tasks = append(tasks, a.redis.Run)
	}
	if a.notifier != nil {
		tasks = append(tasks, a.notifier.Run)
	}
	if a.proxy != nil {
		tasks = append(tasks, a.proxy.Run)
	}
	if a.cfg.Storage.Maintenance.UploadPurging.IsEnabled() && !a.cfg.ReadOnly() {
		tasks = append(tasks, a.purgeUploads)
	}
	a.log.Info("registry starting", "url", a.main.URL(), "storage", a.driver.Name(), "auth", authName(a.cfg))
	return server.Group{Main: a.main, Extra: []*server.Server{a.debug}, Tasks: tasks}.Run(ctx)
}

// Close releases the listeners and the storage driver. It is safe to call
// more than once and after Run.
func (a *App) Close() error {
	var err error
	a.closeOnce.Do(func() {
		err = server.Group{Main: a.main, Extra: []*server.Server{a.debug}}.Close()
		if c, ok := a.driver.(io.Closer); ok {
			err = errors.Join(err, c.Close())
		}
		if a.redis != nil {
			err = errors.Join(err, a.redis.Close())
		}
		if a.notifier != nil {
			err = errors.Join(err, a.notifier.Close())
		}
		if a.proxy != nil {
			err = errors.Join(err, a.proxy.Close())
		}
	})
	return err
}

// watched lists the files a reload follows: the certificate and key.
func (a *App) watched() []string {
	if a.tls == nil {
		return nil
	}
	return []string{a.cfg.HTTP.TLS.Certificate, a.cfg.HTTP.TLS.Key}
}

// reload re-reads the certificate. Other registry settings take effect at
// the next start, which the log says (instead of SIGHUP's default of
// ending the process).
func (a *App) reload(_ context.Context, reason string) error {
	if a.tls != nil {
		if err := a.tls.Reload(); err != nil {
			return fmt.Errorf("certificate not reloaded; the current one stays: %w", err)
		}
	}
	if reason == "SIGHUP" {
		a.log.Info("registry settings other than the certificate take effect at the next start")
	}
	return nil
}

func authName(cfg *regconfig.Config) string {
	if k := cfg.AuthKind(); k != "" {
		return k
	}
	return "none"
}

// debugHandler serves /debug/health (also as /readyz, the name the auth
// server and load balancers use), /healthz, metrics and pprof.
func (a *App) debugHandler() http.Handler {
	mux := http.NewServeMux()
	// /healthz: the process serves (liveness); nothing is checked.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	ready := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// The health checks decide the status. The cache is optional: a
		// Redis that is down is reported, but the registry stays healthy
		// (it serves from storage).
		detail := a.health.Failing()
		status := http.StatusOK
		if len(detail) > 0 {
			status = http.StatusServiceUnavailable
		}
		if a.redis != nil && !a.redis.Up() {
			detail["redis"] = "unreachable"
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(detail)
	}
	mux.HandleFunc("/debug/health", ready)
	mux.HandleFunc("/readyz", ready)
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

// ping checks that d's storage can be reached.
func ping(ctx context.Context, d driver.Driver) error {
	if p, ok := d.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	if _, err := d.Stat(ctx, "/"); err != nil && !driver.IsNotFound(err) {
		return err
	}
	return nil
}

// purgeUploads removes abandoned uploads, then the stale debris of
// interrupted writes, every interval (first run after a random delay of up
// to a minute, so replicas do not all run together).
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
		} else {
			a.log.Info("upload purge", "purged", res.Purged, "staged_writes", res.Staged, "errors", res.Errors, "dry_run", up.DryRun)
		}
		if !up.DryRun {
			a.removeDebris(ctx)
		}
	}
}

// debrisTimeout bounds one removal of debris, so a huge store does not
// keep the purge goroutine walking for ever.
const debrisTimeout = 30 * time.Minute

// removeDebris removes what interrupted writes left (temporary files,
// blob directories without data) once it is older than an hour: a write
// in flight is younger.
func (a *App) removeDebris(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, debrisTimeout)
	defer cancel()
	res, err := storage.RemoveDebris(ctx, a.driver, storage.DefaultStaleAge)
	if err != nil {
		a.log.Error("removing debris of interrupted writes failed", "removed", res.Removed, "err", err)
		return
	}
	if res.Removed > 0 {
		a.log.Info("removed debris of interrupted writes", "removed", res.Removed)
	}
}
