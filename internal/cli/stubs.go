package cli

import "github.com/spf13/cobra"

// Commands not built yet. Each moves to a file of its own when it is.

func newServeCmd() *cobra.Command {
	return &cobra.Command{Use: "serve", Short: "Run the auth server and the registry in one process", RunE: notImplemented}
}

func newGCCmd() *cobra.Command {
	return &cobra.Command{Use: "gc CONFIG", Short: "Delete blobs that no manifest references", Args: cobra.ExactArgs(1), RunE: notImplemented}
}
