package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/gatehouse-registry/gatehouse/internal/bootstrap"
	"github.com/gatehouse-registry/gatehouse/internal/server"
)

type serveFlags struct {
	dataDir        string
	hosts          []string
	publicHost     string
	registryAddr   string
	authAddr       string
	authConfig     string
	registryConfig string
	logFormat      string
	logLevel       string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the auth server and the registry in one process",
		Long: `Run the token auth server and the registry in one process, TLS and token auth on.

With no flags, everything lives in the data directory (--data-dir, else
$GATEHOUSE_DATA_DIR, else ./gatehouse-data), made on first start: a CA and
server certificate (certs/), an admin account whose password is in
admin-password (mode 0600), the auth server's auth_config.yml and the
registry's config.yml. Both files are in the formats the drop-in commands read
(docker_auth's and distribution's); edit them and restart, or send SIGHUP for the
auth server's users and ACL. The registry listens on :5000 and the auth server
on :5001.

--auth-config and --registry-config run on files of your own instead of the
generated ones.`,
		Example: `  gatehouse serve
  gatehouse serve --public-host registry.example.com --host 10.0.0.5
  gatehouse serve --auth-config auth_config.yml --registry-config config.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "directory for certificates, generated configs and image storage; $"+dataDirEnv+" sets the default")
	fl.StringArrayVar(&f.hosts, "host", nil, "extra DNS name or IP for the server certificate (repeatable)")
	fl.StringVar(&f.publicHost, "public-host", "localhost", "the name clients reach this machine by (token realm and certificate)")
	fl.StringVar(&f.registryAddr, "registry-addr", ":5000", "registry listen address, used when the registry config is generated")
	fl.StringVar(&f.authAddr, "auth-addr", ":5001", "auth server listen address, used when the auth config is generated")
	fl.StringVar(&f.authConfig, "auth-config", "", "docker_auth auth_config.yml to use instead of the generated one")
	fl.StringVar(&f.registryConfig, "registry-config", "", "distribution config.yml to use instead of the generated one")
	fl.StringVar(&f.logFormat, "log-format", "", "log format of both servers: text or json (default: each config file's, else text)")
	fl.StringVar(&f.logLevel, "log-level", "", "log level of both servers: debug, info, warn or error (default: each config file's, else info)")
	return c
}

// dataDirEnv names the environment variable that sets the default of
// --data-dir (service managers and container images set it).
const dataDirEnv = "GATEHOUSE_DATA_DIR"

func defaultDataDir() string {
	if d := os.Getenv(dataDirEnv); d != "" {
		return d
	}
	return "gatehouse-data"
}

func runServe(ctx context.Context, stdout, stderr io.Writer, f serveFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	authFile, regFile := f.authConfig, f.registryConfig
	if authFile == "" || regFile == "" {
		res, err := bootstrap.Ensure(bootstrap.Options{
			DataDir:      f.dataDir,
			Hosts:        f.hosts,
			PublicHost:   f.publicHost,
			RegistryAddr: f.registryAddr,
			AuthAddr:     f.authAddr,
		})
		if err != nil {
			return fail(exitFailure, err)
		}
		for _, p := range res.Created {
			fmt.Fprintf(stdout, "created %s\n", p)
		}
		if !res.AdminPassword.IsEmpty() {
			fmt.Fprintf(stdout, "the admin password is in %s (readable by this user only)\n", res.AdminPasswordFile)
		}
		fmt.Fprintf(stdout, "clients trust the registry with %s, e.g. /etc/docker/certs.d/%s:PORT/ca.crt\n", res.CACert, f.publicHost)
		if authFile == "" {
			authFile = res.AuthConfig
		}
		if regFile == "" {
			regFile = res.RegistryConfig
		}
	}

	ctx, stop := server.ShutdownContext(ctx)
	defer stop()
	// Either server failing stops the other: a half-running pair is worse
	// than a clear exit.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() {
		defer cancel()
		errs[0] = runAuthServer(ctx, stderr, authFile, f.logFormat, f.logLevel)
	})
	wg.Go(func() {
		defer cancel()
		errs[1] = runRegistryServer(ctx, stderr, regFile, server.LogOptions{Format: f.logFormat, Level: f.logLevel})
	})
	wg.Wait()
	return errors.Join(errs...)
}
