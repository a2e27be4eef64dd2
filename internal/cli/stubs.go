package cli

import "github.com/spf13/cobra"

// Commands not built yet. Each moves to a file of its own when it is.

func newServeCmd() *cobra.Command {
	return &cobra.Command{Use: "serve", Short: "Run the auth server and the registry in one process", RunE: notImplemented}
}

func newAuthServerCmd() *cobra.Command {
	return &cobra.Command{Use: "auth-server CONFIG", Short: "Run the token auth server on a docker_auth auth_config.yml", Args: cobra.ExactArgs(1), RunE: notImplemented}
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Config file tools"}
	c.AddCommand(&cobra.Command{Use: "check FILE...", Short: "Check config files and report every error", Args: cobra.MinimumNArgs(1), RunE: notImplemented})
	return c
}

func newGCCmd() *cobra.Command {
	return &cobra.Command{Use: "gc CONFIG", Short: "Delete blobs that no manifest references", Args: cobra.ExactArgs(1), RunE: notImplemented}
}
