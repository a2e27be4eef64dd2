package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	authapp "github.com/gatehouse-registry/gatehouse/internal/authserver/app"
	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/server"
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
			return runAuthServer(cmd.Context(), cmd.ErrOrStderr(), args[0], logFormat, logLevel, server.ServiceReady(1))
		},
	}
	c.Flags().StringVar(&logFormat, "log-format", "", "log format: text or json (default: server.log_format, else text)")
	c.Flags().StringVar(&logLevel, "log-level", "", "log level: debug, info, warn or error (default: server.log_level, else info)")
	return c
}

// printProblems writes every problem of a config error on a line of its own
// and returns the error to exit with.
func printProblems(stderr io.Writer, file string, err error) error {
	return reportProblems(stderr, file, err, "not starting")
}

// reportProblems is printProblems with the refusal said at the end
// ("not starting", "not collecting garbage").
func reportProblems(stderr io.Writer, file string, err error, refusal string) error {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			_, _ = fmt.Fprintln(stderr, p.String())
		}
		return fail(exitFailure, fmt.Errorf("%s: %d problem(s); %s", file, len(ps), refusal))
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

// runAuthServer serves file's auth server until ctx ends; ready is called
// once its listeners are bound.
func runAuthServer(ctx context.Context, stderr io.Writer, file, logFormat, logLevel string, ready func(context.Context, *slog.Logger)) error {
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
	a, err := authapp.New(ctx, file, cfg, log)
	if err != nil {
		return fail(exitFailure, err)
	}
	defer func() { _ = a.Close() }()
	ready(ctx, log)
	if err := a.Run(ctx); err != nil {
		return fail(exitFailure, err)
	}
	return nil
}
