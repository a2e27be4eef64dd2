package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-registry/gatehouse/internal/authserver"
	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/server"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

func newAuthServerCmd() *cobra.Command {
	var logFormat, logLevel string
	c := &cobra.Command{
		Use:   "auth-server CONFIG",
		Short: "Run the token auth server on a docker_auth auth_config.yml",
		Long: `Run the Docker registry token server on a cesanta/docker_auth auth_config.yml.

The config is checked first and every problem is printed with file:line (exit 1).
SIGHUP, or any change to the config file or the certificate and key files it
names, reloads it: a config with problems is refused (each problem is logged)
and the running one stays. SIGTERM or SIGINT drains requests in flight, then exits.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAuthServer(cmd.Context(), cmd.ErrOrStderr(), args[0], logFormat, logLevel)
		},
	}
	c.Flags().StringVar(&logFormat, "log-format", "", "log format: text or json (default: server.log_format, else text)")
	c.Flags().StringVar(&logLevel, "log-level", "", "log level: debug, info, warn or error (default: server.log_level, else info)")
	return c
}

// printProblems writes every problem of a config error on a line of its own
// and returns the error to exit with.
func printProblems(stderr io.Writer, file string, err error) error {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			_, _ = fmt.Fprintln(stderr, p.String())
		}
		return fail(exitFailure, fmt.Errorf("%s: %d problem(s); not starting", file, len(ps)))
	}
	return fail(exitFailure, err)
}

// firstSet returns the first non-empty value.
func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func runAuthServer(ctx context.Context, stderr io.Writer, file, logFormat, logLevel string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// Flags are checked before the file so a typo in them is a usage error.
	if _, err := server.NewLogger(io.Discard, server.LogOptions{Format: logFormat, Level: logLevel}); err != nil {
		return fail(exitUsage, err)
	}
	cfg, err := authconfig.Load(file)
	if err != nil {
		return printProblems(stderr, file, err)
	}
	log, err := server.NewLogger(stderr, server.LogOptions{Format: firstSet(logFormat, cfg.Server.LogFormat), Level: firstSet(logLevel, cfg.Server.LogLevel)})
	if err != nil {
		return fail(exitFailure, err)
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: "+w.Msg, "at", w.String())
	}

	ctx, stop := server.ShutdownContext(ctx)
	defer stop()

	chain, err := authserver.Build(ctx, cfg, log)
	if err != nil {
		return fail(exitFailure, fmt.Errorf("%s: %w", file, err))
	}
	separateMetrics := cfg.Server.Metrics.Addr != ""
	srv, err := authserver.New(chain, authserver.Options{Logger: log, NoMetricsRoute: separateMetrics})
	if err != nil {
		_ = chain.Close()
		return fail(exitFailure, err)
	}
	defer func() { _ = srv.Close() }()

	var certs *tlsutil.Reloader
	scfg := server.Config{Name: "auth", Network: cfg.Server.Net, Addr: cfg.Server.Addr, Handler: srv, Logger: log}
	if cfg.Server.Certificate != "" {
		certs, err = tlsutil.NewReloader(cfg.Server.Certificate, cfg.Server.Key, log)
		if err != nil {
			return fail(exitFailure, fmt.Errorf("server certificate: %w", err))
		}
		scfg.TLS, err = tlsutil.ServerConfig(tlsutil.ServerOptions{
			GetCertificate: certs.GetCertificate,
			MinVersion:     cfg.Server.TLSMinVersion,
			CipherSuites:   cfg.Server.TLSCipherSuites,
			Curves:         cfg.Server.TLSCurvePreferences,
		})
		if err != nil {
			return fail(exitFailure, fmt.Errorf("server TLS: %w", err))
		}
	}
	hs, err := server.New(ctx, scfg)
	if err != nil {
		return fail(exitFailure, err)
	}

	var wg sync.WaitGroup
	runErr := make(chan error, 2)
	if separateMetrics {
		mux := http.NewServeMux()
		mux.Handle(cfg.Server.Metrics.Path, srv.MetricsHandler())
		ms, err := server.New(ctx, server.Config{Name: "auth-metrics", Addr: cfg.Server.Metrics.Addr, Handler: mux, Logger: log})
		if err != nil {
			return fail(exitFailure, fmt.Errorf("metrics listener: %w", err))
		}
		wg.Go(func() { runErr <- ms.Run(ctx) })
	}

	watched := func(c *authconfig.Config) []string {
		return []string{file, c.Server.Certificate, c.Server.Key, c.Token.Certificate, c.Token.Key}
	}
	reload := func(ctx context.Context, _ string) error {
		return srv.Reload(ctx, func(ctx context.Context) (*authserver.Chain, error) {
			next, err := authconfig.Load(file)
			if err != nil {
				return nil, err
			}
			authWarnRestart(log, cfg, next)
			if certs != nil {
				if err := certs.Reload(); err != nil {
					return nil, fmt.Errorf("server certificate: %w", err)
				}
			}
			return authserver.Build(ctx, next, log)
		})
	}
	wg.Go(func() { server.ReloadLoop(ctx, log, time.Second, authNonEmpty(watched(cfg)), reload, nil) })

	log.Info("gatehouse auth server starting", "config", file, "issuer", cfg.Token.Issuer, "url", hs.URL())
	err = hs.Run(ctx)
	stop()
	wg.Wait()
	close(runErr)
	for e := range runErr {
		err = errors.Join(err, e)
	}
	if err != nil {
		return fail(exitFailure, err)
	}
	return nil
}

// authWarnRestart logs settings a reload cannot apply.
func authWarnRestart(log *slog.Logger, old, next *authconfig.Config) {
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

func authNonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
