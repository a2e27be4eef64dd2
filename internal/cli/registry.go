package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/api"
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
			stderr := cmd.ErrOrStderr()
			cfg, err := regconfig.Load(args[0])
			if err != nil {
				var ps config.Problems
				if errors.As(err, &ps) {
					for _, p := range ps {
						_, _ = fmt.Fprintln(stderr, p.String())
					}
					return fail(exitFailure, fmt.Errorf("%s: %d problem(s); not starting", args[0], len(ps)))
				}
				return fail(exitFailure, err)
			}
			log := api.NewLogger(cfg.Log, stderr)
			for _, w := range cfg.Warnings {
				log.Warn(w, "config", args[0])
			}
			app, err := api.NewApp(cfg, log)
			if err != nil {
				return fail(exitFailure, err)
			}
			l, err := app.Listen()
			if err != nil {
				return fail(exitFailure, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := app.Serve(ctx, l); err != nil && !errors.Is(err, context.Canceled) {
				return fail(exitFailure, err)
			}
			return nil
		},
	}
}
