package cli

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/api"
	"github.com/gatehouse-registry/gatehouse/internal/server"
)

func newRegistryCmd() *cobra.Command {
	c := &cobra.Command{Use: "registry", Short: "Registry commands"}
	c.AddCommand(newRegistryServeCmd())
	return c
}

func newRegistryServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve CONFIG",
		Short: "Run the registry on a distribution config.yml",
		Long: `Run the OCI / Docker registry on a distribution (registry:2 / registry:3)
config.yml. The config is checked first and every problem is reported at
once (exit 1). SIGTERM or SIGINT drains requests in flight for up to
http.draintimeout, then exits.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := server.ShutdownContext(cmd.Context())
			defer stop()
			return runRegistryServer(ctx, cmd.ErrOrStderr(), args[0])
		},
	}
}

// runRegistryServer serves the registry on a distribution config until ctx
// ends, then drains requests in flight for up to http.draintimeout.
func runRegistryServer(ctx context.Context, stderr io.Writer, file string) error {
	cfg, err := regconfig.Load(file)
	if err != nil {
		return printProblems(stderr, file, err)
	}
	log := api.NewLogger(cfg.Log, stderr)
	for _, w := range cfg.Warnings {
		log.Warn(w, "config", file)
	}
	app, err := api.NewApp(cfg, log)
	if err != nil {
		return fail(exitFailure, err)
	}
	l, err := app.Listen()
	if err != nil {
		return fail(exitFailure, err)
	}
	if err := app.Serve(ctx, l); err != nil && !errors.Is(err, context.Canceled) {
		return fail(exitFailure, err)
	}
	return nil
}
