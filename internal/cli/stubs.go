package cli

import "github.com/spf13/cobra"

// Commands not built yet. Each moves to a file of its own when it is.

func newGCCmd() *cobra.Command {
	return &cobra.Command{Use: "gc CONFIG", Short: "Delete blobs that no manifest references", Args: cobra.ExactArgs(1), RunE: notImplemented}
}
