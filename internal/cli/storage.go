package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/app"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// errRepairWritable explains why storage check --repair refuses to run on
// a writable registry.
var errRepairWritable = errors.New(`refusing to repair: the registry may be accepting pushes.
A push in progress writes its links one after the other, and a repair racing
it could remove what it has just written. Either set
storage.maintenance.readonly.enabled: true in the config and restart the
registry (pulls keep working), or stop it; then run the repair again, passing
--i-know-registry-is-read-only if you stopped it instead. Without --repair the
check only reads and is safe on a running registry`)

func newStorageCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "storage",
		Short: "Inspect and repair a registry's storage",
	}
	c.AddCommand(newStorageCheckCmd())
	return c
}

func newStorageCheckCmd() *cobra.Command {
	var repair, verify, readOnly bool
	c := &cobra.Command{
		Use:   "check CONFIG",
		Short: "Check a registry's storage for dangling tags and links, missing blobs and debris",
		Long: `Check the storage of the registry configured by CONFIG (a distribution
config.yml): every repository's tags, revision links, layer links and uploads,
every blob directory, and the temporary files of interrupted writes. It reports
tags that cannot be pulled, links to blobs that are gone, blob directories
without data, temporaries and empty blob directories older than an hour, and
uploads older than the upload purge age. With --verify-digests it also reads
every blob and reports those whose content does not match their digest.

Exit status: 0 when the storage is consistent, 1 when a problem was found (or
is left after --repair).

With --repair it prints exactly what it will remove, then removes what is
broken or unreachable: dangling and incomplete tags, links to missing blobs,
stale temporaries, empty blob directories and stale uploads. It never removes
blob data, not even a corrupt blob's. Like gc, --repair runs only when the
config sets storage.maintenance.readonly.enabled: true, or with
--i-know-registry-is-read-only when the registry is stopped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			cfg, err := loadRegistryConfig(stderr, args[0], "not checking storage")
			if err != nil {
				return err
			}
			if repair && !cfg.Storage.Maintenance.ReadOnly.Enabled && !readOnly {
				return fail(exitFailure, errRepairWritable)
			}
			if cfg.Storage.InMemory != nil {
				return fail(exitFailure, errors.New("storage.inmemory lives inside the registry process: there is no storage to check"))
			}
			d, err := app.OpenDriver(cfg, nil)
			if err != nil {
				return fail(exitFailure, err)
			}
			if c, ok := d.(io.Closer); ok {
				defer func() { _ = c.Close() }()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := storage.Check(ctx, d, storage.CheckOptions{
				VerifyDigests: verify,
				UploadAge:     cfg.Storage.Maintenance.UploadPurging.Age,
				Progress: func(format string, a ...any) {
					_, _ = fmt.Fprintf(stderr, format+"\n", a...)
				},
			})
			if err != nil {
				return fail(exitFailure, err)
			}
			printCheck(stdout, res, verify)
			if len(res.Problems) == 0 {
				_, _ = fmt.Fprintln(stdout, "storage is consistent")
				return nil
			}
			left := len(res.Problems)
			if repair {
				if left, err = runRepair(cmd, d, res.Problems); err != nil {
					return fail(exitFailure, err)
				}
			}
			if left == 0 {
				_, _ = fmt.Fprintln(stdout, "all problems repaired")
				return nil
			}
			hint := ""
			if !repair {
				hint = " (run with --repair to remove what is broken)"
			}
			_, _ = fmt.Fprintf(stdout, "%d problem(s) left%s\n", left, hint)
			return silentExit{code: exitFailure}
		},
	}
	f := c.Flags()
	f.BoolVar(&repair, "repair", false, "remove dangling tags, links to missing blobs, stale temporaries, empty blob directories and stale uploads (never blob data)")
	f.BoolVar(&verify, "verify-digests", false, "read every blob and check that its content matches its digest")
	f.BoolVar(&readOnly, "i-know-registry-is-read-only", false, "repair although the config does not set storage.maintenance.readonly.enabled (the registry is stopped)")
	return c
}

func printCheck(w io.Writer, res storage.CheckResult, verified bool) {
	_, _ = fmt.Fprintf(w, "repositories: %d; tags: %d; manifests: %d; layer links: %d; blobs: %d; uploads: %d\n",
		res.Repositories, res.Tags, res.Manifests, res.LayerLinks, res.Blobs, res.Uploads)
	if verified {
		_, _ = fmt.Fprintf(w, "blobs verified: %d\n", res.Verified)
	}
	if res.InFlight > 0 {
		_, _ = fmt.Fprintf(w, "writes in flight or interrupted less than an hour ago (not judged): %d\n", res.InFlight)
	}
	for _, p := range res.Problems {
		_, _ = fmt.Fprintf(w, "problem: %s\n", p)
	}
}

// runRepair prints what it will remove, removes it, and returns how many
// problems are left.
func runRepair(cmd *cobra.Command, d driver.Driver, problems []storage.Problem) (int, error) {
	stdout := cmd.OutOrStdout()
	left := 0
	var todo []storage.Problem
	for _, p := range problems {
		if p.Remove == "" {
			left++
			continue
		}
		todo = append(todo, p)
	}
	if len(todo) == 0 {
		_, _ = fmt.Fprintln(stdout, "nothing to remove: the problems left need a person (restore or re-push the blobs)")
		return left, nil
	}
	_, _ = fmt.Fprintf(stdout, "will remove %d path(s):\n", len(todo))
	for _, p := range todo {
		_, _ = fmt.Fprintf(stdout, "  %s  (%s)\n", p.Remove, p.Kind)
	}
	res, err := storage.Repair(cmd.Context(), d, todo, func(p storage.Problem, err error) {
		if err != nil {
			_, _ = fmt.Fprintf(stdout, "failed: %s: %v\n", p.Remove, err)
		}
	})
	_, _ = fmt.Fprintf(stdout, "removed: %d; already gone or no longer empty: %d\n", res.Removed, res.Kept)
	if err != nil {
		return left + len(todo) - res.Removed - res.Kept, err
	}
	return left, nil
}

// loadRegistryConfig loads a distribution config, printing every problem
// with its file:line to stderr.
func loadRegistryConfig(stderr io.Writer, file, refusal string) (*regconfig.Config, error) {
	cfg, err := regconfig.Load(file)
	if err == nil {
		return cfg, nil
	}
	return nil, reportProblems(stderr, file, err, refusal)
}
