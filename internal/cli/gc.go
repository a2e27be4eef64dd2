package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/app"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// errGCWritable explains why gc refuses to run on a writable registry.
var errGCWritable = errors.New(`refusing to collect garbage: the registry may be accepting pushes.
GC deletes every blob no manifest references, and a push in progress has
uploaded layers whose manifest is not there yet: they would be deleted and the
image left broken. Either set storage.maintenance.readonly.enabled: true in the
config and restart the registry (pulls keep working), or stop it; then run gc
again, passing --i-know-registry-is-read-only if you stopped it instead`)

func newGCCmd() *cobra.Command {
	var dryRun, deleteUntagged, readOnly, quiet bool
	var cpuProfile, memProfile string
	c := &cobra.Command{
		Use:   "gc CONFIG",
		Short: "Delete blobs that no manifest references",
		Long: `Collect garbage in the storage of the registry configured by CONFIG (a
distribution config.yml): mark every blob a manifest of any repository
references (configs, layers, schema1 fsLayers, artifact blobs, index children,
subjects), then delete the rest and the repositories' links to them. With
--delete-untagged, manifests that no tag reaches (directly, through an index,
or as a referrer) are deleted first.

Every manifest is read before anything is deleted: a manifest GC cannot read
stops it with an error naming its repository and digest, and nothing is
deleted. Warnings go to stderr, also with --quiet.

GC must not race with pushes: it runs only when the config sets
storage.maintenance.readonly.enabled: true (restart the registry with it), or
with --i-know-registry-is-read-only when the registry is stopped. --dry-run
deletes nothing and runs beside a registry taking pushes too; its figures may
then be stale.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			cfg, err := loadRegistryConfig(stderr, args[0], "not collecting garbage")
			if err != nil {
				return err
			}
			// A dry run deletes nothing, so it may run beside a registry
			// that takes pushes; its answer may then be out of date.
			mayBeWritten := !cfg.Storage.Maintenance.ReadOnly.Enabled && !readOnly
			if mayBeWritten && !dryRun {
				return fail(exitFailure, errGCWritable)
			}
			if mayBeWritten {
				_, _ = fmt.Fprintln(stdout, "dry run on a registry that may be taking pushes: the results may be stale, and layers of a push in progress show as unreferenced until its manifest arrives")
			}
			d, err := gcDriver(cfg)
			if err != nil {
				return fail(exitFailure, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cpuProfile != "" {
				stopCPU, err := startCPUProfile(cpuProfile)
				if err != nil {
					return fail(exitFailure, err)
				}
				defer stopCPU()
			}
			if memProfile != "" {
				defer writeHeapProfile(memProfile, stderr)
			}
			opts := storage.GCOptions{DryRun: dryRun, DeleteUntagged: deleteUntagged}
			// Warnings go to stderr even with --quiet: they name storage
			// content GC had to work around.
			opts.Warn = func(format string, a ...any) {
				_, _ = fmt.Fprintf(stderr, "warning: "+format+"\n", a...)
			}
			if !quiet {
				opts.Progress = func(format string, a ...any) {
					_, _ = fmt.Fprintf(stdout, format+"\n", a...)
				}
			}
			res, err := storage.GC(ctx, d, opts)
			if err != nil {
				return fail(exitFailure, err)
			}
			verb := "deleted"
			if dryRun {
				verb = "to delete (dry run, nothing changed)"
			}
			_, _ = fmt.Fprintf(stdout, "repositories scanned: %d; manifests kept: %d; blobs marked: %d\n",
				res.Repositories, res.ManifestsMarked, res.BlobsMarked)
			_, _ = fmt.Fprintf(stdout, "%s: %d blobs (%d bytes freed), %d untagged manifests, %d layer links\n",
				verb, res.BlobsSwept, res.BytesFreed, res.ManifestsDeleted, res.LayerLinksRemoved)
			if !dryRun {
				// A registry's Redis cache would keep answering for the
				// swept blobs until its entries expire.
				left, err := app.ForgetSwept(ctx, cfg, res.Swept, res.Unlinked, opts.Warn)
				if err != nil {
					opts.Warn("redis cache not cleared: %v", err)
					res.Warnings++
				}
				if left > 0 {
					res.Warnings++
				} else if cfg.Storage.Cache.BlobDescriptor == "redis" && len(res.Swept)+len(res.Unlinked) > 0 {
					_, _ = fmt.Fprintf(stdout, "redis blob descriptor cache: entries of %d swept blobs and %d deleted manifests cleared\n", len(res.Swept), len(res.Unlinked))
				}
			}
			if res.Warnings > 0 {
				_, _ = fmt.Fprintf(stderr, "%d warning(s), see above\n", res.Warnings)
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVarP(&dryRun, "dry-run", "d", false, "report what would be deleted and delete nothing")
	f.BoolVarP(&deleteUntagged, "delete-untagged", "m", false, "delete manifests no tag reaches first")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the summary")
	f.BoolVar(&readOnly, "i-know-registry-is-read-only", false, "run although the config does not set storage.maintenance.readonly.enabled (the registry is stopped)")
	// For finding where gc's time and memory go (the benchmarks' -pprof);
	// not something an operator needs, so not in --help.
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile, taken when gc is done, to this file")
	_ = f.MarkHidden("cpuprofile")
	_ = f.MarkHidden("memprofile")
	return c
}

// startCPUProfile starts writing a CPU profile to file; the function it
// returns stops it and closes the file.
func startCPUProfile(file string) (func(), error) {
	f, err := os.Create(file) //nolint:gosec // a path the user asked for
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// writeHeapProfile writes a heap profile to file (the allocations of the
// whole run, and what is still in use once a collection has run). A
// failure is reported on stderr: gc's own work is done by then.
func writeHeapProfile(file string, stderr io.Writer) {
	runtime.GC()
	f, err := os.Create(file) //nolint:gosec // a path the user asked for
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "warning: heap profile: %v\n", err)
	}
}

// gcDriver opens the storage the config names, through the registry's own
// opener.
func gcDriver(cfg *regconfig.Config) (driver.Driver, error) {
	if cfg.Storage.InMemory != nil {
		return nil, errors.New("storage.inmemory lives inside the registry process: there is nothing for gc to collect")
	}
	return app.OpenDriver(cfg, nil)
}
