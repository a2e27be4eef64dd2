package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/gatehouse-registry/gatehouse/internal/bootstrap"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
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
	debugAddr      string
	authMetrics    string
	adminPassword  secret.Secret      // GATEHOUSE_ADMIN_PASSWORD, for the first start
	explicit       bootstrap.Explicit // flags given on the command line
}

// Environment variables serve reads; flags win over them.
const (
	dataDirEnv       = "GATEHOUSE_DATA_DIR"
	adminPasswordEnv = "GATEHOUSE_ADMIN_PASSWORD"
)

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
on :5001; their Prometheus metrics are served on 127.0.0.1:5002 (the
registry's debug server) and 127.0.0.1:5003 (the auth server), off the public
ports. --log-format and --log-level set the logs of both halves.

The data directory can also be given as GATEHOUSE_DATA_DIR, and the admin's
password on first start as GATEHOUSE_ADMIN_PASSWORD; flags win. The
addresses, --public-host and --host are written into the files made on first
start; a later start with one of these flags that a file contradicts fails and
names the file to edit.

--auth-config and --registry-config run on files of your own instead of the
generated ones.`,
		Example: `  gatehouse serve
  gatehouse serve --public-host registry.example.com --host 10.0.0.5
  gatehouse serve --auth-config auth_config.yml --registry-config config.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			if d := os.Getenv(dataDirEnv); d != "" && !fl.Changed("data-dir") {
				f.dataDir = d
			}
			f.adminPassword = secret.Secret(os.Getenv(adminPasswordEnv))
			f.explicit = bootstrap.Explicit{
				RegistryAddr: fl.Changed("registry-addr"), AuthAddr: fl.Changed("auth-addr"),
				PublicHost: fl.Changed("public-host"), Hosts: fl.Changed("host"),
				DebugAddr: fl.Changed("debug-addr"), AuthMetricsAddr: fl.Changed("auth-metrics-addr"),
			}
			return runServe(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "gatehouse-data", "directory for certificates, generated configs and image storage (or $"+dataDirEnv+")")
	fl.StringArrayVar(&f.hosts, "host", nil, "extra DNS name or IP for the server certificate (repeatable)")
	fl.StringVar(&f.publicHost, "public-host", "localhost", "the name clients reach this machine by (token realm and certificate)")
	fl.StringVar(&f.registryAddr, "registry-addr", ":5000", "registry listen address, used when the registry config is generated")
	fl.StringVar(&f.authAddr, "auth-addr", ":5001", "auth server listen address, used when the auth config is generated")
	fl.StringVar(&f.debugAddr, "debug-addr", "127.0.0.1:5002", "registry debug server with Prometheus metrics, used when the registry config is generated; empty: none")
	fl.StringVar(&f.authMetrics, "auth-metrics-addr", "127.0.0.1:5003", "auth server metrics listener, used when the auth config is generated; empty: none")
	fl.StringVar(&f.authConfig, "auth-config", "", "docker_auth auth_config.yml to use instead of the generated one")
	fl.StringVar(&f.registryConfig, "registry-config", "", "distribution config.yml to use instead of the generated one")
	fl.StringVar(&f.logFormat, "log-format", "", "log format of both servers: text or json (default: each config file's, else text)")
	fl.StringVar(&f.logLevel, "log-level", "", "log level of both servers: debug, info, warn or error (default: each config file's, else info)")
	return c
}

func runServe(ctx context.Context, stdout, stderr io.Writer, f serveFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	authFile, regFile := f.authConfig, f.registryConfig
	if authFile == "" || regFile == "" {
		res, err := bootstrap.Ensure(bootstrap.Options{
			DataDir:         f.dataDir,
			Hosts:           f.hosts,
			PublicHost:      f.publicHost,
			RegistryAddr:    f.registryAddr,
			AuthAddr:        f.authAddr,
			DebugAddr:       f.debugAddr,
			AuthMetricsAddr: f.authMetrics,
			AdminPassword:   f.adminPassword,
			Explicit:        f.explicit,
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
		if res.TrustCA != "" {
			fmt.Fprintf(stdout, "clients trust the registry with %s (e.g. skopeo and podman --cert-dir %s, or /etc/docker/certs.d/%s:PORT/ca.crt)\n",
				res.TrustCA, filepath.Dir(res.TrustCA), f.publicHost)
		}
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
	// The service manager hears READY=1 once both servers listen.
	ready := server.ServiceReady(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() {
		defer cancel()
		errs[0] = runAuthServer(ctx, stderr, authFile, f.logFormat, f.logLevel, ready)
	})
	wg.Go(func() {
		defer cancel()
		errs[1] = runRegistryServer(ctx, stderr, regFile, server.LogOptions{Format: f.logFormat, Level: f.logLevel}, ready)
	})
	wg.Wait()
	return errors.Join(errs...)
}
