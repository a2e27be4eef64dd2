// Package cli builds gatehouse's command tree. Each command lives in a file
// of its own; the work itself is done by the internal packages they call.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // the command ran and found a problem (bad config, denied, ...)
	exitUsage    = 2 // bad flags or arguments, or a command that does not exist yet
	exitInternal = 3
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// fail returns an error that makes the process exit with code after printing err.
func fail(code int, err error) error { return &exitError{code: code, err: err} }

// silent is an exitError whose message was already printed.
type silentExit struct{ code int }

func (e silentExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Main runs gatehouse with args and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var se silentExit
	if errors.As(err, &se) {
		return se.code
	}
	fmt.Fprintln(stderr, "gatehouse:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Errors from cobra itself are about flags and arguments.
	return exitUsage
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "gatehouse",
		Short: "A container registry and Docker token auth server in one binary",
		Long: `Gatehouse is an OCI / Docker registry and a Docker token auth server in one binary.
It reads cesanta/docker_auth's auth_config.yml and distribution's config.yml as they are.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newAuthServerCmd(),
		newRegistryCmd(),
		newConfigCmd(),
		newACLCmd(),
		newHashPasswordCmd(),
		newUsersCmd(),
		newCertsCmd(),
		newTokenCmd(),
		newDoctorCmd(),
		newGCCmd(),
		newStorageCmd(),
		newVersionCmd(),
	)
	return root
}
