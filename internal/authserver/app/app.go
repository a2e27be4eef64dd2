// Package app runs the auth server from a docker_auth auth_config.yml: the
// chain built from the file (authserver.Build), the token server, its
// listener and optional metrics listener on internal/server's lifecycle,
// and reloads on SIGHUP or a changed file (config, certificates, keys),
// which build a new chain and swap it in atomically while the listeners
// stay.
//
// It is the auth half's counterpart of internal/registry/app; `gatehouse
// auth-server` and `gatehouse serve` both run it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authserver"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/server"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// pollInterval is how often the config, certificate and key files are
// checked for changes (SIGHUP reloads at once).
const pollInterval = time.Second

// App is a running auth server. Create it with New, serve with Run,
// release it with Close.
type App struct {
	file  string
	cfg   *authconfig.Config
	log   *slog.Logger
	srv   *authserver.Server
	certs *tlsutil.Reloader

	main, metrics *server.Server
	closeOnce     sync.Once
}

// New builds the auth server that cfg (loaded from file) describes and
// opens its listeners. Backends are connected and keys loaded here, so
// every problem shows before serving. On error nothing is left open.
func New(ctx context.Context, file string, cfg *authconfig.Config, log *slog.Logger) (_ *App, err error) {
	a := &App{file: file, cfg: cfg, log: log}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	chain, err := authserver.Build(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	separateMetrics := cfg.Server.Metrics.Addr != ""
	a.srv, err = authserver.New(chain, authserver.Options{Logger: log, NoMetricsRoute: separateMetrics})
	if err != nil {
		_ = chain.Close()
		return nil, err
	}

	scfg := server.Config{Name: "auth", Network: cfg.Server.Net, Addr: cfg.Server.Addr, Handler: a.srv, Logger: log}
	if cfg.Server.Certificate != "" {
		a.certs, err = tlsutil.NewReloader(cfg.Server.Certificate, cfg.Server.Key, log)
		if err != nil {
			return nil, fmt.Errorf("server certificate: %w", err)
		}
		scfg.TLS, err = tlsutil.ServerConfig(tlsutil.ServerOptions{
			GetCertificate: a.certs.GetCertificate,
			MinVersion:     cfg.Server.TLSMinVersion,
			CipherSuites:   cfg.Server.TLSCipherSuites,
			Curves:         cfg.Server.TLSCurvePreferences,
		})
		if err != nil {
			return nil, fmt.Errorf("server TLS: %w", err)
		}
	}
	if a.main, err = server.New(ctx, scfg); err != nil {
		return nil, err
	}
	if separateMetrics {
		mux := http.NewServeMux()
		mux.Handle(cfg.Server.Metrics.Path, a.srv.MetricsHandler())
		a.metrics, err = server.New(ctx, server.Config{Name: "auth-metrics", Addr: cfg.Server.Metrics.Addr, Handler: mux, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
	}
	return a, nil
}

// URL is the token server's base URL ("https://127.0.0.1:5001").
func (a *App) URL() string { return a.main.URL() }

// Run serves until ctx ends, reloading on SIGHUP or a changed file, then
// drains requests in flight. Either listener failing stops both.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("gatehouse auth server starting", "config", a.file, "issuer", a.cfg.Token.Issuer, "url", a.main.URL())
	return server.Group{
		Main:  a.main,
		Extra: []*server.Server{a.metrics},
		Tasks: []func(context.Context){func(ctx context.Context) {
			server.ReloadLoop(ctx, a.log, pollInterval, a.watched(), a.reload, nil)
		}},
	}.Run(ctx)
}

// Close releases the listeners and the chain's backends. It is safe to
// call more than once and after Run.
func (a *App) Close() error {
	var err error
	a.closeOnce.Do(func() {
		err = server.Group{Main: a.main, Extra: []*server.Server{a.metrics}}.Close()
		if a.srv != nil {
			err = errors.Join(err, a.srv.Close())
		}
	})
	return err
}

// watched lists the files whose change triggers a reload.
func (a *App) watched() []string {
	var out []string
	for _, f := range []string{a.file, a.cfg.Server.Certificate, a.cfg.Server.Key, a.cfg.Token.Certificate, a.cfg.Token.Key} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// reload re-reads the file, builds a new chain and swaps it in; a file
// with problems keeps the running chain.
func (a *App) reload(ctx context.Context, _ string) error {
	return a.srv.Reload(ctx, func(ctx context.Context) (*authserver.Chain, error) {
		next, err := authconfig.Load(a.file)
		if err != nil {
			return nil, err
		}
		warnRestart(a.log, a.cfg, next)
		if a.certs != nil {
			if err := a.certs.Reload(); err != nil {
				return nil, fmt.Errorf("server certificate: %w", err)
			}
		}
		return authserver.Build(ctx, next, a.log)
	})
}

// warnRestart logs settings a reload cannot apply.
func warnRestart(log *slog.Logger, old, next *authconfig.Config) {
	for _, d := range []struct{ key, a, b string }{
		{"server.addr", old.Server.Addr, next.Server.Addr},
		{"server.net", old.Server.Net, next.Server.Net},
		{"server.certificate", old.Server.Certificate, next.Server.Certificate},
		{"server.key", old.Server.Key, next.Server.Key},
		{"server.tls_min_version", old.Server.TLSMinVersion, next.Server.TLSMinVersion},
		{"server.metrics.addr", old.Server.Metrics.Addr, next.Server.Metrics.Addr},
		{"server.log_format", old.Server.LogFormat, next.Server.LogFormat},
		{"server.log_level", old.Server.LogLevel, next.Server.LogLevel},
	} {
		if d.a != d.b {
			log.Warn("this setting changed but takes effect only after a restart", "key", d.key)
		}
	}
}
