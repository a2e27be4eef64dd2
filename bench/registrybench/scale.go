package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

// The scale suite (-suite scale): a 50-layer image pushed and pulled with
// 5 concurrent transfers, the catalog of 10,000 repositories, cold start
// over them, a mixed request load, and garbage collection and storage
// check of 100,000 blobs. Gatehouse runs with durable storage and a bearer
// token; the reference registries without auth. Gatehouse with
// durable: false is not part of it.

const (
	imageRepo      = "bench/image"
	imageWorkers   = 5
	catalogPage    = 100
	keyGatehouseGC = "gatehouse gc"
	keyV3GC        = "registry-v3 garbage-collect"
	keySha256sum   = "sha256sum"
)

// scaleResult holds one registry's figures of the scale suite.
type scaleResult struct {
	push, pull          []float64 // MB/s of the image
	coldStart           []time.Duration
	catalogPaged        []time.Duration
	catalogOne          []time.Duration
	catalogPages        int
	catalogCount        int
	catalogOneCount     int
	mixed               []loadResult
	imageBytes          int64
	err                 error
	catalogOneTruncated bool
}

// gcRun is one timed run of an offline program over the GC data.
type gcRun struct {
	wall    time.Duration
	maxRSS  int64 // bytes
	left    int   // blob data files left afterwards
	failure error
}

func (b *bench) scaleKeys() []string {
	var keys []string
	for _, k := range b.o.registries {
		if k != keyNonDurable {
			keys = append(keys, k)
		}
	}
	return keys
}

func (b *bench) runScale(ctx context.Context, tools map[string]string) error {
	if b.o.suite == "gc" {
		if err := b.runGC(ctx, tools[keyV3]); err != nil {
			return err
		}
		b.noteLoad("after gc and storage check")
		return nil
	}
	keys := b.scaleKeys()
	b.scale = map[string]*scaleResult{}
	for _, k := range keys {
		b.scale[k] = &scaleResult{}
	}
	// Every registry gets its own copy of the 10,000 repositories.
	roots := map[string]string{}
	for _, k := range keys {
		roots[k] = filepath.Join(b.tmp, "scale-"+k, "data")
		b.logf("%s: writing %d repositories in the registry:2 layout", titles[k], b.o.repos)
		if err := genRepos(roots[k], b.o.repos); err != nil {
			return err
		}
	}
	syscall.Sync()
	spec := func(k string) startSpec {
		return startSpec{name: "scale-" + k, root: roots[k], repo: imageRepo, catalogMax: b.o.repos + 10, keep: true}
	}
	eachScale := func(round int, phase string, f func(k string, r *scaleResult) error) {
		for i := range keys {
			k := keys[(i+round)%len(keys)]
			r := b.scale[k]
			if r.err != nil || ctx.Err() != nil {
				continue
			}
			b.logf("%s: %s", titles[k], phase)
			if err := f(k, r); err != nil {
				r.err = fmt.Errorf("%s: %w", phase, err)
				b.logf("%s: %v", titles[k], r.err)
			}
		}
	}
	// Cold start: a fresh process each round, the page cache warm.
	for round := range b.o.runs {
		eachScale(round, fmt.Sprintf("cold start over %d repositories (round %d)", b.o.repos, round+1), func(k string, r *scaleResult) error {
			s, err := b.start(ctx, k, tools[k], spec(k))
			if err != nil {
				return err
			}
			s.stop()
			r.coldStart = append(r.coldStart, s.ready)
			return nil
		})
	}
	regs := map[string]*started{}
	defer func() {
		for _, s := range regs {
			s.stop()
		}
	}()
	eachScale(0, "start", func(k string, _ *scaleResult) error {
		s, err := b.start(ctx, k, tools[k], spec(k))
		regs[k] = s
		return err
	})
	for round := range b.o.runs {
		eachScale(round, fmt.Sprintf("catalog of %d repositories, n=%d and in one request (round %d)", b.o.repos, catalogPage, round+1), func(k string, r *scaleResult) error {
			n, pages, d, err := regs[k].t.listCatalog(ctx, catalogPage)
			if err != nil {
				return err
			}
			if n != b.o.repos {
				return fmt.Errorf("paginated catalog: %d repositories, want %d", n, b.o.repos)
			}
			r.catalogPaged, r.catalogCount, r.catalogPages = append(r.catalogPaged, d), n, pages
			n, pages, d, err = regs[k].t.listCatalog(ctx, b.o.repos+10)
			if err != nil {
				return err
			}
			r.catalogOne, r.catalogOneCount = append(r.catalogOne, d), n
			r.catalogOneTruncated = pages > 1
			return nil
		})
	}
	for round := range b.o.runs {
		b.logf("digests of the %d layers of round %d", b.o.layers, round+1)
		layers := imageLayers(round+1, b.o.layers)
		var total int64
		for _, l := range layers {
			total += l.size
		}
		tag := fmt.Sprintf("r%d", round+1)
		eachScale(round, fmt.Sprintf("push of %d layers (%s), %d at a time (round %d)", len(layers), benchenv.MiB(total), imageWorkers, round+1), func(k string, r *scaleResult) error {
			syscall.Sync()
			wait := b.profile(ctx, regs[k], fmt.Sprintf("%s-image-push-%d", k, round+1), imageProfileSeconds(total))
			d, err := regs[k].t.pushImage(ctx, layers, imageWorkers, tag)
			wait()
			if err != nil {
				return err
			}
			r.push, r.imageBytes = append(r.push, mbps(total, d)), total
			return nil
		})
		eachScale(round, fmt.Sprintf("pull of the image, %d at a time (round %d)", imageWorkers, round+1), func(k string, r *scaleResult) error {
			wait := b.profile(ctx, regs[k], fmt.Sprintf("%s-image-pull-%d", k, round+1), imageProfileSeconds(total))
			d, err := regs[k].t.pullImage(ctx, tag, layers, imageWorkers)
			wait()
			if err != nil {
				return err
			}
			r.pull = append(r.pull, mbps(total, d))
			return nil
		})
		if round == 0 {
			b.mixedBlob = layers[0].digest
		}
	}
	ops := []mixedOp{
		{"HEAD", "/v2/" + imageRepo + "/blobs/" + b.mixedBlob, 70},
		{"GET", "/v2/" + imageRepo + "/manifests/r1", 20},
		{"GET", "/v2/" + imageRepo + "/tags/list", 10},
	}
	for round := range b.o.runs {
		eachScale(round, fmt.Sprintf("mixed load, %d clients, %s (round %d)", b.o.clients, b.o.getDuration, round+1), func(k string, r *scaleResult) error {
			g := regs[k].t.mixedLoad(ctx, ops, b.o.clients, b.o.getDuration)
			r.mixed = append(r.mixed, g)
			if g.ok == 0 {
				return fmt.Errorf("no successful request (%d failed)", g.failed)
			}
			return nil
		})
	}
	for k, s := range regs {
		s.stop()
		delete(regs, k)
	}
	for _, k := range keys {
		_ = os.RemoveAll(filepath.Join(b.tmp, "scale-"+k))
	}
	b.noteLoad("after the scale rounds")
	if b.o.gcBlobs > 0 {
		if err := b.runGC(ctx, tools[keyV3]); err != nil {
			return err
		}
		b.noteLoad("after gc and storage check")
	}
	return nil
}

// runGC generates the GC data once, then times, on fresh copies of it,
// gatehouse gc and registry-v3 garbage-collect in turns, gatehouse
// storage check with and without --verify-digests, and sha256sum over
// the blob files.
func (b *bench) runGC(ctx context.Context, v3 string) error {
	src := filepath.Join(b.tmp, "gc-src")
	b.logf("writing %d blobs, %d manifests in %d repositories", b.o.gcBlobs, b.o.gcManifests, b.o.gcRepos)
	data, err := genGC(src, b.o.gcBlobs, b.o.gcManifests, b.o.gcRepos)
	if err != nil {
		return err
	}
	b.gcData = data
	b.gcRuns = map[string][]gcRun{}
	if b.o.pprofDir != "" {
		if err := os.MkdirAll(b.o.pprofDir, 0o750); err != nil {
			return err
		}
	}
	config := func(root string) (string, error) {
		cfg := filepath.Join(filepath.Dir(root), "config.yml")
		y := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:0\n", root)
		return cfg, os.WriteFile(cfg, []byte(y), 0o600)
	}
	runOn := func(name string, copyData bool, argv func(root, cfg string) []string, env []string) gcRun {
		dir := filepath.Join(b.tmp, "gc-run")
		_ = os.RemoveAll(dir)
		root := filepath.Join(dir, "data")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return gcRun{failure: err}
		}
		defer func() { _ = os.RemoveAll(dir) }()
		if copyData {
			if out, err := exec.CommandContext(ctx, "cp", "-a", src, root).CombinedOutput(); err != nil {
				return gcRun{failure: fmt.Errorf("cp: %w: %s", err, out)}
			}
		} else {
			root = src
		}
		cfg, err := config(root)
		if err != nil {
			return gcRun{failure: err}
		}
		syscall.Sync()
		b.logf("%s", name)
		run := timeChild(ctx, argv(root, cfg), env)
		if run.failure == nil {
			run.left = countBlobs(root)
		}
		return run
	}
	for round := range b.o.runs {
		order := []string{keyGatehouseGC, keyV3GC}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, k := range order {
			if k == keyV3GC && v3 == "" {
				continue
			}
			var run gcRun
			if k == keyGatehouseGC {
				run = runOn(fmt.Sprintf("gatehouse gc (round %d)", round+1), true, func(_, cfg string) []string {
					argv := []string{b.gate, "gc", cfg, "--quiet", "--i-know-registry-is-read-only"}
					if b.o.pprofDir != "" {
						argv = append(argv, "--cpuprofile", filepath.Join(b.o.pprofDir, fmt.Sprintf("gc-%d.pprof", round+1)))
					}
					return argv
				}, nil)
			} else {
				run = runOn(fmt.Sprintf("registry-v3 garbage-collect (round %d)", round+1), true, func(_, cfg string) []string {
					return []string{v3, "garbage-collect", cfg, "--quiet"}
				}, []string{"OTEL_TRACES_EXPORTER=none"})
			}
			b.gcRuns[k] = append(b.gcRuns[k], run)
		}
		check := runOn(fmt.Sprintf("gatehouse storage check (round %d)", round+1), false, func(_, cfg string) []string {
			return []string{b.gate, "storage", "check", cfg}
		}, nil)
		b.gcRuns["check"] = append(b.gcRuns["check"], check)
		verify := runOn(fmt.Sprintf("gatehouse storage check --verify-digests (round %d)", round+1), false, func(_, cfg string) []string {
			return []string{b.gate, "storage", "check", "--verify-digests", cfg}
		}, nil)
		b.gcRuns["verify"] = append(b.gcRuns["verify"], verify)
		sum := runOn(fmt.Sprintf("sha256sum of the blob files (round %d)", round+1), false, func(root, _ string) []string {
			return []string{"sh", "-c", `find "$1" -name data -type f -print0 | xargs -0 sha256sum > /dev/null`, "sh", filepath.Join(root, "docker", "registry", "v2", "blobs")}
		}, nil)
		b.gcRuns[keySha256sum] = append(b.gcRuns[keySha256sum], sum)
	}
	return nil
}

// timeChild runs argv and returns its wall time and peak RSS, as
// /usr/bin/time -v reports it: the ru_maxrss of a child that time forked.
// The rusage Go's own wait returns is no good here: Go starts a program
// with vfork, and exec records the peak RSS of the memory it replaces,
// the benchmark's own, in the child's ru_maxrss. Without GNU time at
// /usr/bin/time, the RSS is not measured (0). Output is discarded, except
// for the tail of a failure.
func timeChild(ctx context.Context, argv, env []string) gcRun {
	rssFile := ""
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		f, err := os.CreateTemp("", "registrybench-rss-*")
		if err == nil {
			rssFile = f.Name()
			_ = f.Close()
			defer func() { _ = os.Remove(rssFile) }()
			argv = append([]string{"/usr/bin/time", "-f", "%M", "-o", rssFile}, argv...)
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &limitWriter{w: &out, n: 4096}, &limitWriter{w: &out, n: 4096}
	start := time.Now()
	err := cmd.Run()
	run := gcRun{wall: time.Since(start)}
	if rssFile != "" {
		if b, rerr := os.ReadFile(rssFile); rerr == nil {
			if kib, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); perr == nil {
				run.maxRSS = kib << 10
			}
		}
	}
	if err != nil {
		run.failure = fmt.Errorf("%s: %w: %s", filepath.Base(argv[len(argv)-1]), err, out.String())
	}
	return run
}

type limitWriter struct {
	w *strings.Builder
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// countBlobs counts the blob data files under a storage root.
func countBlobs(root string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(root, "docker", "registry", "v2", "blobs"), func(_ string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && e.Name() == "data" {
			n++
		}
		return nil
	})
	return n
}

// imageProfileSeconds is how long a CPU profile of the image push or pull
// runs: about the time the transfer takes at 600 MB/s, at least a second,
// so the samples are mostly of the transfer.
func imageProfileSeconds(total int64) int {
	return max(1, int(total/(600*1000*1000)))
}
