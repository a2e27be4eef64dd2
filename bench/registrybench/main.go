// Command registrybench measures Gatehouse's registry beside the reference
// registries on this machine, in one run: it starts each on loopback with
// filesystem storage in a temp dir, runs the same workload against each
// (push of a generated blob monolithic and in chunks, pull, manifest GET
// under load, tags list of a large repository, peak memory), measures the
// machine's durable write rate with dd, and prints a table with the
// performance targets marked met or missed. Other suites (-suite) measure
// a multi-layer image, the catalog, cold start, gc and storage check
// (scale, gc), pulls through a pull-through cache (proxy), and Gatehouse
// beside registry v3.1.2 on S3 (MinIO) with a Redis cache (s3).
//
//	go run ./bench/registrybench                      # full run: 1 GiB, 10,000 tags, 4 GiB RSS push
//	go run ./bench/registrybench -size 256MiB -tags 1000 -rss-size 0 -d 5s
//
// Every process it starts is stopped, and its temp dir removed, before it
// exits (also on Ctrl-C).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "registrybench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	size, chunk, rssSize int64
	tags, clients, runs  int
	getDuration          time.Duration
	registries           []string
	gatehouse            string
	dir                  string
	timeout              time.Duration
	pprofDir             string
	suite                string
	layers, repos        int
	gcBlobs, gcManifests int
	gcRepos              int
	upstreamRate         float64 // proxy: MB/s each way to the upstream; 0 = direct
}

// Registry keys accepted by -registries, in the order they run.
const (
	keyGatehouse   = "gatehouse"
	keyNonDurable  = "gatehouse-nondurable"
	keyV3          = "v3"
	keyV2          = "v2"
	ddKey          = "dd"
	randKey        = "random-write"
	repoName       = "bench/app"
	serviceName    = "gatehouse-bench"
	issuerName     = "gatehouse-bench-issuer"
	seedMonolithic = 1
	seedChunked    = 2
	seedRSS        = 3
	seedProxy      = 4
)

var allKeys = []string{keyGatehouse, keyNonDurable, keyV3, keyV2}

var titles = map[string]string{
	keyGatehouse:  "Gatehouse (durable)",
	keyNonDurable: "Gatehouse (durable: false)",
	keyV3:         "registry v3.1.2",
	keyV2:         "docker-registry 2.8.2",
}

func parseFlags(args []string, errOut io.Writer) (options, error) {
	fs := flag.NewFlagSet("registrybench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var o options
	size := fs.String("size", "1GiB", "blob size for push and pull (suffix KiB, MiB, GiB; at most 16GiB)")
	chunk := fs.String("chunk", "16MiB", "PATCH chunk size of the chunked push")
	rss := fs.String("rss-size", "4GiB", "blob pushed to a fresh Gatehouse to measure peak RSS; 0 skips it")
	fs.IntVar(&o.tags, "tags", 10_000, "tags in the repository whose tags list is timed; 0 skips it")
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients of the manifest GET load")
	fs.IntVar(&o.runs, "runs", 3, "rounds of push, pull and manifest GET (the table shows each median); registries take turns within a round")
	fs.DurationVar(&o.getDuration, "d", 5*time.Second, "duration of each manifest GET load (at most 2m)")
	regs := fs.String("registries", strings.Join(allKeys, ","), "registries to measure, in this order")
	fs.StringVar(&o.gatehouse, "gatehouse", "", "gatehouse binary (default: go build ./cmd/gatehouse)")
	fs.StringVar(&o.dir, "dir", "", "parent of the temp dir (default: the system temp dir); dd runs there too")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "give up after this long")
	fs.StringVar(&o.suite, "suite", "core", "core (pushes, pull, manifest GET, tags list, RSS), scale (multi-layer image, catalog, cold start, mixed load, gc, storage check), gc (only gc and storage check), proxy (a -size image pulled directly and through a pull-through cache, cold and warm) s3 (Gatehouse and v3.1.2 on one MinIO with a Redis cache: pushes, pulls with and without redirects, a multi-layer image, manifest GET with and without Redis, RSS) or all")
	fs.IntVar(&o.layers, "layers", 50, "scale: layers of the image (1 to 20 MiB each)")
	fs.IntVar(&o.repos, "repos", 10_000, "scale: repositories for the catalog and the cold start")
	fs.IntVar(&o.gcBlobs, "gc-blobs", 100_000, "scale: blobs of the gc data, half of them unreferenced; 0 skips gc and storage check")
	fs.IntVar(&o.gcManifests, "gc-manifests", 10_000, "scale: manifests of the gc data")
	fs.IntVar(&o.gcRepos, "gc-repos", 1_000, "scale: repositories of the gc data")
	fs.Float64Var(&o.upstreamRate, "upstream-rate", 0, "proxy: MB/s each way between the upstream and its clients (the direct pull and the caches), through a pacing relay on 127.0.0.1, as a network link; 0 = no relay")
	fs.StringVar(&o.pprofDir, "pprof", "", "write CPU profiles of Gatehouse (from its debug server) during the pushes (monolithic and chunked), the manifest GET load, the image push and pull (scale suite) and the proxy pulls, and of each gatehouse gc run (gc-N.pprof), to this dir (s3 suite: also the pulls and the image pushes)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.size, err = parseSize(*size); err != nil || o.size < 1<<20 || o.size > 16<<30 {
		return o, fmt.Errorf("-size %q: want 1MiB..16GiB", *size)
	}
	if o.chunk, err = parseSize(*chunk); err != nil || o.chunk < 64<<10 || o.chunk > 1<<30 {
		return o, fmt.Errorf("-chunk %q: want 64KiB..1GiB", *chunk)
	}
	if o.rssSize, err = parseSize(*rss); err != nil || o.rssSize < 0 || o.rssSize > 64<<30 {
		return o, fmt.Errorf("-rss-size %q: want 0..64GiB", *rss)
	}
	if o.tags < 0 || o.tags > 100_000 {
		return o, errors.New("-tags must be 0..100000")
	}
	if o.runs < 1 || o.runs > 20 {
		return o, errors.New("-runs must be 1..20")
	}
	if o.clients < 1 || o.clients > 256 {
		return o, errors.New("-clients must be 1..256")
	}
	if o.getDuration <= 0 || o.getDuration > 2*time.Minute {
		return o, errors.New("-d must be in (0, 2m]")
	}
	if o.timeout <= 0 {
		return o, errors.New("-timeout must be positive")
	}
	if !slices.Contains([]string{"core", "scale", "gc", "proxy", "s3", "all"}, o.suite) {
		return o, fmt.Errorf("-suite %q: want core, scale, gc, proxy, s3 or all", o.suite)
	}
	if o.layers < 1 || o.layers > 500 || o.repos < 1 || o.repos > 1_000_000 {
		return o, errors.New("-layers must be 1..500 and -repos 1..1000000")
	}
	if o.gcBlobs < 0 || o.gcManifests < 1 || o.gcRepos < 1 || o.gcRepos > o.gcManifests || (o.gcBlobs > 0 && o.gcBlobs < 4*o.gcManifests) {
		return o, errors.New("-gc-blobs must be 0 or at least 4x -gc-manifests, and -gc-repos 1..-gc-manifests")
	}
	if !(o.upstreamRate >= 0 && o.upstreamRate <= 100_000) {
		return o, errors.New("-upstream-rate must be 0 (no relay) or MB/s up to 100000")
	}
	for _, k := range strings.Split(*regs, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(allKeys, k) {
			return o, fmt.Errorf("-registries: unknown %q (known: %s)", k, strings.Join(allKeys, ", "))
		}
		if !slices.Contains(o.registries, k) {
			o.registries = append(o.registries, k)
		}
	}
	if o.suite == "s3" && len(s3Keys(o.registries)) == 0 {
		return o, errors.New("-suite s3 runs gatehouse and v3: -registries must name at least one of them")
	}
	return o, nil
}

// parseSize reads "1GiB", "256MiB", "64KiB", "1G", "512M" or a byte count.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q out of range", s)
	}
	return n * mult, nil
}

// result holds one registry's figures, one per run; empty slices and
// zero values were not measured.
type result struct {
	pushMono, pushChunked, pull []float64 // MB/s
	get                         []loadResult
	tagsCount                   int
	tagsList, tagsSetup         time.Duration
	rssPush, rssPeak            int64
	err                         error
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	tmp, err := os.MkdirTemp(o.dir, "registrybench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	env := &bench{o: o, tmp: tmp, out: out, results: map[string]*result{}}
	defer env.stopAll()
	return env.run(ctx)
}

// bench is one run.
type bench struct {
	o         options
	tmp       string
	out       io.Writer
	gate      string
	auth      *benchenv.AuthServer
	procs     []*benchenv.Process
	results   map[string]*result
	ddRates   []float64
	randRates []float64 // write+fdatasync of generated (random) bytes
	rss       int64
	rssRate   float64
	rssErr    error
	loadAvgs  []string

	scale     map[string]*scaleResult
	mixedBlob string
	gcData    gcData
	gcRuns    map[string][]gcRun

	proxy *proxyResult

	minio     *benchenv.MinIO
	redis     *benchenv.Redis
	s3        map[string]*s3Result
	s3RSS     int64
	s3RSSRate float64
	s3RSSErr  error
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *bench) stopAll() {
	for _, p := range b.procs {
		p.Stop()
	}
	b.procs = nil
}

func (b *bench) noteLoad(when string) {
	b.loadAvgs = append(b.loadAvgs, when+": "+benchenv.LoadAvg())
}

func (b *bench) run(ctx context.Context) error {
	b.noteLoad("start")
	b.gate = b.o.gatehouse
	if b.gate == "" {
		b.logf("building gatehouse")
		bin, err := benchenv.BuildGatehouse(ctx, filepath.Join(b.tmp, "bin"))
		if err != nil {
			return err
		}
		b.gate = bin
	}
	tools := map[string]string{}
	for _, k := range b.o.registries {
		if b.o.suite == "s3" && k == keyV2 {
			continue // not part of the s3 suite
		}
		prog := map[string]string{keyV3: "registry-v3", keyV2: "docker-registry"}[k]
		if prog == "" {
			continue
		}
		p, err := benchenv.Tool(prog)
		if err != nil {
			return fmt.Errorf("%w (or leave %s out of -registries)", err, k)
		}
		tools[k] = p
	}
	certs := filepath.Join(b.tmp, "certs")
	if err := benchenv.Certs(ctx, b.gate, certs); err != nil {
		return err
	}
	var err error
	b.auth, err = benchenv.StartAuthServer(ctx, b.gate, benchenv.AuthOptions{Dir: certs, Name: "registrybench", Issuer: issuerName})
	if err != nil {
		return err
	}
	b.procs = append(b.procs, b.auth.Process)

	if b.o.suite == "core" || b.o.suite == "all" {
		if err := b.runCore(ctx, tools); err != nil {
			return err
		}
	}
	if b.o.suite == "scale" || b.o.suite == "gc" || b.o.suite == "all" {
		if err := b.runScale(ctx, tools); err != nil {
			return err
		}
	}
	if b.o.suite == "proxy" || b.o.suite == "all" {
		if err := b.runProxy(ctx, tools[keyV3]); err != nil {
			return err
		}
	}
	if b.o.suite == "s3" || b.o.suite == "all" {
		if err := b.runS3(ctx, tools); err != nil {
			return err
		}
	}
	b.report()
	var failed []string
	for _, k := range b.o.registries {
		if r := b.results[k]; r != nil && r.err != nil {
			failed = append(failed, titles[k])
		}
		if r := b.scale[k]; r != nil && r.err != nil {
			failed = append(failed, titles[k]+" (scale)")
		}
		if r := b.s3[k]; r != nil && r.err != nil {
			failed = append(failed, titles[k]+" (s3)")
		}
	}
	if b.rssErr != nil {
		failed = append(failed, "the RSS push")
	}
	if b.s3RSSErr != nil {
		failed = append(failed, "the S3 RSS push")
	}
	if b.proxy != nil && b.proxy.err != nil {
		failed = append(failed, "the proxy suite")
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return ctx.Err()
}

// runCore runs the core suite: pushes, pull, manifest GET, tags list and
// the RSS push.
func (b *bench) runCore(ctx context.Context, tools map[string]string) error {
	b.logf("digests of the generated blobs")
	digests := map[uint64]string{
		seedMonolithic: genDigest(seedMonolithic, b.o.size),
		seedChunked:    genDigest(seedChunked, b.o.size),
	}

	regs := map[string]*started{}
	defer func() {
		for _, s := range regs {
			s.stop()
		}
	}()
	for _, k := range b.o.registries {
		r := &result{}
		b.results[k] = r
		b.logf("%s: starting", titles[k])
		if regs[k], r.err = b.start(ctx, k, tools[k], startSpec{name: "reg-" + k}); r.err != nil {
			delete(regs, k)
		}
	}
	// each runs f on every registry still in the race, in -registries order.
	// eachFrom runs f on every registry still in the race, in -registries
	// order rotated by shift, so that no registry always goes first.
	// The key ddKey stands for the dd measurement and is only in
	// participants when the caller puts it there.
	eachFrom := func(participants []string, shift int, phase string, f func(k string, s *started, r *result) error) error {
		for i := range participants {
			k := participants[(i+shift)%len(participants)]
			if k == ddKey {
				b.logf("dd conv=fdatasync of %s", benchenv.MiB(b.o.size))
				syscall.Sync()
				rate, err := ddRate(ctx, b.tmp, b.o.size)
				if err != nil {
					return err
				}
				b.ddRates = append(b.ddRates, rate)
				continue
			}
			if k == randKey {
				b.logf("write+fdatasync of %s of the generator's bytes", benchenv.MiB(b.o.size))
				syscall.Sync()
				rate, err := randWriteRate(b.tmp, b.o.size)
				if err != nil {
					return err
				}
				b.randRates = append(b.randRates, rate)
				continue
			}
			s, r := regs[k], b.results[k]
			if s == nil || r.err != nil || ctx.Err() != nil {
				continue
			}
			b.logf("%s: %s", titles[k], phase)
			if err := f(k, s, r); err != nil {
				r.err = fmt.Errorf("%s: %w", phase, err)
				b.logf("%s: %v", titles[k], r.err)
			}
		}
		return nil
	}
	each := func(phase string, f func(k string, s *started, r *result) error) {
		_ = eachFrom(b.o.registries, 0, phase, f)
	}
	withDD := append([]string{ddKey, randKey}, b.o.registries...)
	for run := 1; run <= b.o.runs; run++ {
		b.logf("round %d of %d", run, b.o.runs)
		// dd takes its turn among the monolithic pushes, and the order
		// rotates every round: a disk whose speed swings (a VM's) then
		// favours no one.
		err := eachFrom(withDD, run-1, fmt.Sprintf("monolithic push of %s (round %d)", benchenv.MiB(b.o.size), run), func(k string, s *started, r *result) error {
			syscall.Sync()
			wait := b.profile(ctx, s, fmt.Sprintf("%s-push-%d", k, run), max(1, int(b.o.size/(400<<20))))
			defer wait()
			d, err := s.t.pushMonolithic(ctx, seedMonolithic, b.o.size, digests[seedMonolithic])
			if err != nil {
				return err
			}
			r.pushMono = append(r.pushMono, mbps(b.o.size, d))
			return nil
		})
		if err != nil {
			return err
		}
		_ = eachFrom(b.o.registries, run-1, fmt.Sprintf("chunked push, %s chunks (round %d)", benchenv.MiB(b.o.chunk), run), func(k string, s *started, r *result) error {
			syscall.Sync()
			wait := b.profile(ctx, s, fmt.Sprintf("%s-chunked-%d", k, run), max(1, int(b.o.size/(400<<20))))
			defer wait()
			d, err := s.t.pushChunked(ctx, seedChunked, b.o.size, b.o.chunk, digests[seedChunked])
			if err != nil {
				return err
			}
			r.pushChunked = append(r.pushChunked, mbps(b.o.size, d))
			return nil
		})
	}
	each("peak RSS after the pushes", func(_ string, s *started, r *result) error {
		var err error
		r.rssPush, err = s.proc.PeakRSS()
		return err
	})
	for run := 1; run <= b.o.runs; run++ {
		_ = eachFrom(b.o.registries, run-1, fmt.Sprintf("pull (round %d)", run), func(_ string, s *started, r *result) error {
			d, err := s.t.pull(ctx, digests[seedMonolithic], b.o.size)
			if err != nil {
				return err
			}
			r.pull = append(r.pull, mbps(b.o.size, d))
			return nil
		})
	}
	manifests := map[string][]byte{}
	each("manifest and config push", func(k string, s *started, _ *result) error {
		cfgBlob := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cfgDigest, err := s.t.pushSmallBlob(ctx, cfgBlob)
		if err != nil {
			return err
		}
		manifests[k] = manifest(cfgDigest, len(cfgBlob), digests[seedMonolithic], b.o.size)
		return s.t.putManifest(ctx, "latest", manifests[k])
	})
	for run := 1; run <= b.o.runs; run++ {
		_ = eachFrom(b.o.registries, run-1, fmt.Sprintf("manifest GET, %d clients, %s (round %d)", b.o.clients, b.o.getDuration, run), func(k string, s *started, r *result) error {
			wait := b.profile(ctx, s, fmt.Sprintf("%s-manifest-get-%d", k, run), max(1, int(b.o.getDuration.Seconds())-1))
			defer wait()
			g := s.t.manifestLoad(ctx, "latest", b.o.clients, b.o.getDuration)
			r.get = append(r.get, g)
			if g.ok == 0 {
				return fmt.Errorf("no successful request (%d failed)", g.failed)
			}
			return nil
		})
	}
	if b.o.tags > 0 {
		each(fmt.Sprintf("tags list of %d tags", b.o.tags+1), func(k string, s *started, r *result) error {
			start := time.Now()
			if err := s.t.tagMany(ctx, manifests[k], b.o.tags); err != nil {
				return err
			}
			r.tagsSetup = time.Since(start)
			var times []time.Duration
			for range 3 {
				n, d, err := s.t.listTags(ctx)
				if err != nil {
					return err
				}
				if n != b.o.tags+1 {
					return fmt.Errorf("%d tags, want %d", n, b.o.tags+1)
				}
				r.tagsCount = n
				times = append(times, d)
			}
			slices.Sort(times)
			r.tagsList = times[1]
			return nil
		})
	}
	each("peak RSS of the run", func(_ string, s *started, r *result) error {
		var err error
		if r.rssPeak, err = s.proc.PeakRSS(); err != nil {
			return err
		}
		if s.proc.Exited() {
			return fmt.Errorf("exited during the run:\n%s", s.proc.Tail(2000))
		}
		return nil
	})
	for k, s := range regs {
		s.stop()
		delete(regs, k)
	}
	b.noteLoad("after the side-by-side rounds")

	if b.o.rssSize > 0 && slices.Contains(b.o.registries, keyGatehouse) && ctx.Err() == nil {
		b.rssErr = b.measureRSS(ctx)
		b.noteLoad("after the RSS push")
	}
	return nil
}

// started is a registry process and how to reach it.
type started struct {
	proc  *benchenv.Process
	t     *target
	dir   string
	debug string        // Gatehouse's debug server, host:port
	ready time.Duration // from the start of the process to its first 200 on /v2/
	keep  bool          // stop leaves dir (data generated for several starts)
}

func (s *started) stop() {
	s.proc.Stop()
	if !s.keep {
		_ = os.RemoveAll(s.dir)
	}
}

// startSpec says how to start a registry.
type startSpec struct {
	name       string // its directory under the run's temp dir
	root       string // storage root directory; "" = <its directory>/data
	repo       string // repository of the workload, and the token's scope; "" = repoName
	catalogMax int    // catalog.maxentries; 0 = the registry's default
	keep       bool   // leave the directory when stopped
	noAuth     bool   // Gatehouse without auth (the reference registries never have it)
	extra      string // YAML appended to the config (top-level keys)
	storage    string // the storage section's keys, indented by 2, in place of filesystem, delete and (v3, 2.8.2) maintenance; "" = filesystem at root
}

func (b *bench) start(ctx context.Context, key, tool string, spec startSpec) (*started, error) {
	dir := filepath.Join(b.tmp, spec.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := benchenv.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "config.yml")
	root := spec.root
	if root == "" {
		root = filepath.Join(dir, "data")
	}
	repo := spec.repo
	if repo == "" {
		repo = repoName
	}
	catalog := ""
	if spec.catalogMax > 0 {
		catalog = fmt.Sprintf("catalog:\n  maxentries: %d\n", spec.catalogMax)
	}
	var (
		prog      string
		args      []string
		env       []string
		token     string
		debugAddr string
	)
	switch key {
	case keyGatehouse, keyNonDurable:
		durable := ""
		if key == keyNonDurable {
			durable = "    durable: false\n"
		}
		debug := ""
		if b.o.pprofDir != "" {
			dport, err := benchenv.FreePort()
			if err != nil {
				return nil, err
			}
			debugAddr = fmt.Sprintf("127.0.0.1:%d", dport)
			debug = fmt.Sprintf("  debug:\n    addr: %q\n", debugAddr)
		}
		auth := ""
		if !spec.noAuth {
			auth = fmt.Sprintf(`auth:
  token:
    realm: %q
    service: %q
    issuer: %q
    rootcertbundle: %q
`, b.auth.URL()+"/auth", serviceName, issuerName, b.auth.CA)
		}
		storage := spec.storage
		if storage == "" {
			storage = fmt.Sprintf("  filesystem:\n    rootdirectory: %q\n%s  delete:\n    enabled: true\n", root, durable)
		}
		y := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
%shttp:
  addr: %q
%s%s%s%s`, storage, addr, debug, catalog, auth, spec.extra)
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			return nil, err
		}
		prog, args = b.gate, []string{"registry", "serve", cfg}
		if !spec.noAuth {
			token, err = b.auth.Token(ctx, serviceName, "repository:"+repo+":pull,push", "registry:catalog:*")
			if err != nil {
				return nil, err
			}
		}
	default:
		storage := spec.storage
		if storage == "" {
			storage = fmt.Sprintf("  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n", root)
		}
		y := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
%shttp:
  addr: %q
%s%s`, storage, addr, catalog, spec.extra)
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			return nil, err
		}
		prog, args, env = tool, []string{"serve", cfg}, []string{"OTEL_TRACES_EXPORTER=none"}
	}
	t0 := time.Now()
	p, err := benchenv.Start(titles[key], filepath.Join(dir, "registry.log"), env, prog, args...)
	if err != nil {
		return nil, err
	}
	s := &started{proc: p, dir: dir, debug: debugAddr, keep: spec.keep, t: &target{base: "http://" + addr, repo: repo, token: token, hc: newClient(8)}}
	if err := s.waitReady(ctx, t0, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls GET /v2/ every millisecond (with the token, if any)
// until it answers 200, and records the time since t0.
func (s *started) waitReady(ctx context.Context, t0 time.Time, timeout time.Duration) error {
	hdr := map[string]string{}
	if s.t.token != "" {
		hdr["Authorization"] = "Bearer " + s.t.token
	}
	c, err := newRawClient(s.t.base, "/v2/", hdr)
	if err != nil {
		return err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := c.get(ctx)
		if err == nil {
			s.ready = time.Since(t0)
			return nil
		}
		if s.proc.Exited() {
			return fmt.Errorf("%s exited before answering: %w\n%s", s.proc.Name, err, s.proc.Tail(2000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 on /v2/ within %s (last: %w)\n%s", s.proc.Name, timeout, err, s.proc.Tail(2000))
		case <-time.After(time.Millisecond):
		}
	}
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// measureRSS pushes a blob of -rss-size to a fresh durable Gatehouse and
// reads its peak RSS.
func (b *bench) measureRSS(ctx context.Context) error {
	b.logf("digest of the %s RSS blob", benchenv.MiB(b.o.rssSize))
	digest := genDigest(seedRSS, b.o.rssSize)
	s, err := b.start(ctx, keyGatehouse, "", startSpec{name: "reg-rss"})
	if err != nil {
		return err
	}
	defer s.stop()
	b.logf("Gatehouse (durable): monolithic push of %s for RSS", benchenv.MiB(b.o.rssSize))
	syscall.Sync()
	d, err := s.t.pushMonolithic(ctx, seedRSS, b.o.rssSize, digest)
	if err != nil {
		return fmt.Errorf("RSS push: %w", err)
	}
	b.rssRate = mbps(b.o.rssSize, d)
	b.rss, err = s.proc.PeakRSS()
	return err
}

// profile starts fetching a CPU profile of seconds from s's debug server
// into -pprof/name.pprof, when -pprof is set and s has one; the function it
// returns waits for the profile.
func (b *bench) profile(ctx context.Context, s *started, name string, seconds int) func() {
	if b.o.pprofDir == "" || s.debug == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fetchProfile(ctx, s.debug, seconds, filepath.Join(b.o.pprofDir, name+".pprof")); err != nil {
			b.logf("profile %s: %v", name, err)
		}
	}()
	return func() { <-done }
}

func fetchProfile(ctx context.Context, addr string, seconds int, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
		return err
	}
	u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: time.Duration(seconds+30) * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o600)
}
