package cli

import (
	"context"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/app"
	"github.com/gatehouse-registry/gatehouse/internal/server"
)

func newRegistryCmd() *cobra.Command {
	c := &cobra.Command{Use: "registry", Short: "Registry commands"}
	c.AddCommand(newRegistryServeCmd())
	return c
}

func newRegistryServeCmd() *cobra.Command {
	var logFormat, logLevel string
	c := &cobra.Command{
		Use:   "serve CONFIG",
		Short: "Run the registry on a distribution config.yml",
		Long: `Run the OCI / Docker registry on a distribution (registry:2 / registry:3)
config.yml. The config is checked first and every problem is reported at
once (exit 1). SIGHUP, or a change to the certificate or key file, reloads
the certificate. SIGTERM or SIGINT drains requests in flight for up to
http.draintimeout, then exits.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := server.ShutdownContext(cmd.Context())
			defer stop()
			return runRegistryServer(ctx, cmd.ErrOrStderr(), args[0], server.LogOptions{Format: logFormat, Level: logLevel}, server.ServiceReady(1))
		},
	}
	c.Flags().StringVar(&logFormat, "log-format", "", "log format: text or json (default: log.formatter, else text)")
	c.Flags().StringVar(&logLevel, "log-level", "", "log level: debug, info, warn or error (default: log.level, else info)")
	return c
}

// runRegistryServer serves the registry on a distribution config until ctx
// ends, then drains requests in flight for up to http.draintimeout. Flags
// in over win over the file's log settings.
// runRegistryServer serves file's registry until ctx ends; ready is called
// once its listeners are bound.
func runRegistryServer(ctx context.Context, stderr io.Writer, file string, over server.LogOptions, ready func(context.Context, *slog.Logger)) error {
	if _, err := server.NewLogger(io.Discard, over); err != nil {
		return fail(exitUsage, err)
	}
	cfg, err := regconfig.Load(file)
	if err != nil {
		return printProblems(stderr, file, err)
	}
	fields := make(map[string]any, len(cfg.Log.Fields))
	for k, v := range cfg.Log.Fields {
		fields[k] = v
	}
	log, err := server.NewLogger(stderr, server.LogOptions{
		Format: firstSet(over.Format, cfg.Log.Formatter),
		Level:  firstSet(over.Level, cfg.Log.Level),
		Fields: fields,
	})
	if err != nil {
		return fail(exitFailure, err)
	}
	for _, w := range cfg.Warnings {
		log.Warn(w, "config", file)
	}
	a, err := app.New(ctx, cfg, log)
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
