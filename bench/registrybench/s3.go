package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

// The s3 suite (-suite s3): Gatehouse and registry v3.1.2 side by side on
// one MinIO, each in a bucket of its own, with a Redis blob descriptor
// cache. Each registry runs as two processes on the same bucket:
//
//   - main: storage.cache.blobdescriptor redis, redirects off; it takes
//     the pushes, the pulls, the image and the manifest GET with Redis;
//   - alt: blobdescriptor inmemory, redirects on; it takes the pull with
//     redirects and the manifest GET without Redis.
//
// Gatehouse sends a bearer token with every request; v3.1.2 runs without
// auth, as in the core suite. The other registries of -registries are
// not part of it.

const (
	// The pushes of round r push the blobs of seeds s3Seed+2r (monolithic)
	// and s3Seed+2r+1 (chunked): every round pushes new content, as a
	// blob the registry already holds may not be written again.
	s3Seed      = 20
	s3SeedRSS   = 7
	s3Region    = "us-east-1"
	s3Root      = "/registry"
	s3RSSRoot   = "/rss"
	s3ImageBase = 10 // imageLayers' round argument of round 1
)

// s3Result holds one registry's figures of the s3 suite, one per round.
type s3Result struct {
	pushMono, pushChunked, pull []float64 // MB/s
	pullRedirect                []float64 // MB/s of the whole pull: the 307, then the GET from MinIO
	toRedirect                  []time.Duration
	redirects                   int // 307s followed to MinIO
	imagePush, imagePull        []float64
	imageBytes                  int64
	getRedis, getPlain          []loadResult
	// MinIO's counters over each push, and the bytes pushed.
	monoIO, chunkIO, imageIO []benchenv.MinIOCounters
	err                      error
}

// s3Pair is a registry's two processes on one bucket.
type s3Pair struct {
	main, alt *started
}

func (p *s3Pair) stop() {
	if p.main != nil {
		p.main.stop()
	}
	if p.alt != nil {
		p.alt.stop()
	}
}

// s3Keys returns the registries of -registries the s3 suite runs.
func s3Keys(registries []string) []string {
	var keys []string
	for _, k := range registries {
		if k == keyGatehouse || k == keyV3 {
			keys = append(keys, k)
		}
	}
	return keys
}

// s3Bucket is the bucket of a registry.
func s3Bucket(key string) string { return "bench-" + key }

// s3StorageYAML returns a storage section's keys (indented by 2) for a
// registry on bucket of m under root, with the blob descriptor cache
// cache (redis or inmemory) and redirects on or off.
func s3StorageYAML(m *benchenv.MinIO, bucket, root, cache string, redirect bool) string {
	return fmt.Sprintf(`  s3:
    accesskey: %q
    secretkey: %q
    region: %q
    regionendpoint: %q
    bucket: %q
    forcepathstyle: true
    secure: false
    rootdirectory: %q
  cache:
    blobdescriptor: %s
  delete:
    enabled: true
  redirect:
    disable: %t
  maintenance:
    uploadpurging:
      enabled: false
`, m.AccessKey, m.SecretKey, m.Region, m.Endpoint(), bucket, root, cache, !redirect)
}

// redisYAML is the top-level redis section (registry 3's form, which
// both registries read).
func redisYAML(addr string) string { return fmt.Sprintf("redis:\n  addrs: [%q]\n", addr) }

func (b *bench) s3Start(ctx context.Context, key, tool, name, bucket, root string, redis bool, redirect bool) (*started, error) {
	spec := startSpec{name: name, storage: s3StorageYAML(b.minio, bucket, root, "inmemory", redirect)}
	if redis {
		spec.storage = s3StorageYAML(b.minio, bucket, root, "redis", redirect)
		spec.extra = redisYAML(b.redis.Addr)
	}
	return b.start(ctx, key, tool, spec)
}

func (b *bench) runS3(ctx context.Context, tools map[string]string) error {
	keys := s3Keys(b.o.registries)
	if len(keys) == 0 {
		b.logf("s3 suite: neither gatehouse nor v3 in -registries; skipped")
		return nil
	}
	var err error
	b.logf("starting MinIO and redis-server")
	var buckets []string
	for _, k := range keys {
		buckets = append(buckets, s3Bucket(k))
	}
	if b.minio, err = benchenv.StartMinIO(ctx, filepath.Join(b.tmp, "minio"), buckets...); err != nil {
		return err
	}
	b.procs = append(b.procs, b.minio.Process)
	if b.redis, err = benchenv.StartRedis(ctx, filepath.Join(b.tmp, "redis")); err != nil {
		return err
	}
	b.procs = append(b.procs, b.redis.Process)

	b.s3 = map[string]*s3Result{}
	pairs := map[string]*s3Pair{}
	defer func() {
		for _, p := range pairs {
			p.stop()
		}
	}()
	for _, k := range keys {
		r := &s3Result{}
		b.s3[k] = r
		p := &s3Pair{}
		pairs[k] = p
		b.logf("%s on S3: starting", titles[k])
		if p.main, r.err = b.s3Start(ctx, k, tools[k], "s3-"+k, s3Bucket(k), s3Root, true, false); r.err != nil {
			continue
		}
		p.alt, r.err = b.s3Start(ctx, k, tools[k], "s3-"+k+"-alt", s3Bucket(k), s3Root, false, true)
	}
	each := func(round int, phase string, f func(k string, p *s3Pair, r *s3Result) error) {
		for i := range keys {
			k := keys[(i+round)%len(keys)]
			r := b.s3[k]
			if r.err != nil || ctx.Err() != nil {
				continue
			}
			b.logf("%s on S3: %s", titles[k], phase)
			if err := f(k, pairs[k], r); err != nil {
				r.err = fmt.Errorf("%s: %w", phase, err)
				b.logf("%s on S3: %v", titles[k], r.err)
			}
		}
	}
	// counted runs a push and returns what MinIO received and wrote
	// meanwhile.
	counted := func(push func() error) (benchenv.MinIOCounters, error) {
		before, err := b.minio.Counters(ctx)
		if err != nil {
			return before, err
		}
		if err := push(); err != nil {
			return before, err
		}
		after, err := b.minio.Counters(ctx)
		return after.Sub(before), err
	}
	b.logf("digests of the generated blobs")
	monoDigests, chunkDigests := make([]string, b.o.runs), make([]string, b.o.runs)
	for round := range b.o.runs {
		monoDigests[round], chunkDigests[round] = genDigest(s3Seed+2*uint64(round), b.o.size), genDigest(s3Seed+2*uint64(round)+1, b.o.size)
	}
	monoDigest := monoDigests[0] // pulled, and named by the manifest
	pushSecs := max(1, int(b.o.size/(150<<20)))
	for round := range b.o.runs {
		each(round, fmt.Sprintf("monolithic push of %s (round %d)", benchenv.MiB(b.o.size), round+1), func(k string, p *s3Pair, r *s3Result) error {
			wait := b.profile(ctx, p.main, fmt.Sprintf("s3-%s-push-%d", k, round+1), pushSecs)
			defer wait()
			var d time.Duration
			c, err := counted(func() (err error) {
				d, err = p.main.t.pushMonolithic(ctx, s3Seed+2*uint64(round), b.o.size, monoDigests[round])
				return err
			})
			if err != nil {
				return err
			}
			r.pushMono, r.monoIO = append(r.pushMono, mbps(b.o.size, d)), append(r.monoIO, c)
			return nil
		})
		each(round, fmt.Sprintf("chunked push, %s chunks (round %d)", benchenv.MiB(b.o.chunk), round+1), func(k string, p *s3Pair, r *s3Result) error {
			wait := b.profile(ctx, p.main, fmt.Sprintf("s3-%s-chunked-%d", k, round+1), pushSecs)
			defer wait()
			var d time.Duration
			c, err := counted(func() (err error) {
				d, err = p.main.t.pushChunked(ctx, s3Seed+2*uint64(round)+1, b.o.size, b.o.chunk, chunkDigests[round])
				return err
			})
			if err != nil {
				return err
			}
			r.pushChunked, r.chunkIO = append(r.pushChunked, mbps(b.o.size, d)), append(r.chunkIO, c)
			return nil
		})
	}
	for round := range b.o.runs {
		each(round, fmt.Sprintf("pull (round %d)", round+1), func(k string, p *s3Pair, r *s3Result) error {
			wait := b.profile(ctx, p.main, fmt.Sprintf("s3-%s-pull-%d", k, round+1), pushSecs)
			defer wait()
			d, err := p.main.t.pull(ctx, monoDigest, b.o.size)
			if err != nil {
				return err
			}
			r.pull = append(r.pull, mbps(b.o.size, d))
			return nil
		})
		each(round, fmt.Sprintf("pull with redirects (round %d)", round+1), func(_ string, p *s3Pair, r *s3Result) error {
			d, toRedirect, err := p.alt.t.pullRedirected(ctx, monoDigest, b.o.size, b.minio.Addr)
			if err != nil {
				return err
			}
			r.pullRedirect, r.toRedirect = append(r.pullRedirect, mbps(b.o.size, d)), append(r.toRedirect, toRedirect)
			r.redirects++
			return nil
		})
	}
	for round := range b.o.runs {
		b.logf("digests of the %d layers of round %d", b.o.layers, round+1)
		layers := imageLayers(s3ImageBase+round, b.o.layers)
		var total int64
		for _, l := range layers {
			total += l.size
		}
		tag := fmt.Sprintf("image-r%d", round+1)
		each(round, fmt.Sprintf("push of %d layers (%s), %d at a time (round %d)", len(layers), benchenv.MiB(total), imageWorkers, round+1), func(k string, p *s3Pair, r *s3Result) error {
			wait := b.profile(ctx, p.main, fmt.Sprintf("s3-%s-image-push-%d", k, round+1), max(1, int(total/(150<<20))))
			defer wait()
			var d time.Duration
			c, err := counted(func() (err error) {
				d, err = p.main.t.pushImage(ctx, layers, imageWorkers, tag)
				return err
			})
			if err != nil {
				return err
			}
			r.imagePush, r.imageIO, r.imageBytes = append(r.imagePush, mbps(total, d)), append(r.imageIO, c), total
			return nil
		})
		each(round, fmt.Sprintf("pull of the image, %d at a time (round %d)", imageWorkers, round+1), func(_ string, p *s3Pair, r *s3Result) error {
			d, err := p.main.t.pullImage(ctx, tag, layers, imageWorkers)
			if err != nil {
				return err
			}
			r.imagePull = append(r.imagePull, mbps(total, d))
			return nil
		})
	}
	each(0, "manifest and config push", func(_ string, p *s3Pair, _ *s3Result) error {
		cfgBlob := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cfgDigest, err := p.main.t.pushSmallBlob(ctx, cfgBlob)
		if err != nil {
			return err
		}
		return p.main.t.putManifest(ctx, "latest", manifest(cfgDigest, len(cfgBlob), monoDigest, b.o.size))
	})
	for round := range b.o.runs {
		each(round, fmt.Sprintf("manifest GET with Redis, %d clients, %s (round %d)", b.o.clients, b.o.getDuration, round+1), func(k string, p *s3Pair, r *s3Result) error {
			wait := b.profile(ctx, p.main, fmt.Sprintf("s3-%s-manifest-get-redis-%d", k, round+1), max(1, int(b.o.getDuration.Seconds())-1))
			defer wait()
			g := p.main.t.manifestLoad(ctx, "latest", b.o.clients, b.o.getDuration)
			r.getRedis = append(r.getRedis, g)
			if g.ok == 0 {
				return fmt.Errorf("no successful request (%d failed)", g.failed)
			}
			return nil
		})
		each(round, fmt.Sprintf("manifest GET without Redis, %d clients, %s (round %d)", b.o.clients, b.o.getDuration, round+1), func(k string, p *s3Pair, r *s3Result) error {
			wait := b.profile(ctx, p.alt, fmt.Sprintf("s3-%s-manifest-get-inmemory-%d", k, round+1), max(1, int(b.o.getDuration.Seconds())-1))
			defer wait()
			g := p.alt.t.manifestLoad(ctx, "latest", b.o.clients, b.o.getDuration)
			r.getPlain = append(r.getPlain, g)
			if g.ok == 0 {
				return fmt.Errorf("no successful request (%d failed)", g.failed)
			}
			return nil
		})
	}
	for _, k := range keys {
		for _, s := range []*started{pairs[k].main, pairs[k].alt} {
			if r := b.s3[k]; s != nil && s.proc.Exited() && r.err == nil {
				r.err = fmt.Errorf("exited during the run:\n%s", s.proc.Tail(2000))
			}
		}
		pairs[k].stop()
		delete(pairs, k)
	}
	b.noteLoad("after the s3 rounds")
	if b.o.rssSize > 0 && slices.Contains(keys, keyGatehouse) && ctx.Err() == nil {
		b.s3RSSErr = b.measureS3RSS(ctx)
		b.noteLoad("after the S3 RSS push")
	}
	return nil
}

// measureS3RSS pushes a blob of -rss-size to a fresh Gatehouse on S3 (its
// own root directory in Gatehouse's bucket, the Redis cache) and reads its
// peak RSS.
func (b *bench) measureS3RSS(ctx context.Context) error {
	b.logf("digest of the %s RSS blob", benchenv.MiB(b.o.rssSize))
	digest := genDigest(s3SeedRSS, b.o.rssSize)
	s, err := b.s3Start(ctx, keyGatehouse, "", "s3-rss", s3Bucket(keyGatehouse), s3RSSRoot, true, false)
	if err != nil {
		return err
	}
	defer s.stop()
	b.logf("Gatehouse on S3: monolithic push of %s for RSS", benchenv.MiB(b.o.rssSize))
	d, err := s.t.pushMonolithic(ctx, s3SeedRSS, b.o.rssSize, digest)
	if err != nil {
		return fmt.Errorf("RSS push: %w", err)
	}
	b.s3RSSRate = mbps(b.o.rssSize, d)
	b.s3RSS, err = s.proc.PeakRSS()
	return err
}

// redirectNote explains a redirect the workload did not ask for.
func redirectNote(resp *http.Response) string {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return " (a redirect, to " + redactQuery(resp.Header.Get("Location")) + ", where none was expected)"
	}
	return ""
}

// redactQuery drops the query of a URL (a presigned URL's signature).
func redactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?..."
	}
	return u
}

// checkRedirect checks that resp is a 307 whose Location is an absolute
// http URL on host (MinIO's host:port), and returns the URL.
func checkRedirect(resp *http.Response, host string) (string, error) {
	if resp.StatusCode != http.StatusTemporaryRedirect {
		return "", fmt.Errorf("GET blob: %s, want 307 Temporary Redirect to %s", resp.Status, host)
	}
	loc := resp.Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("GET blob: Location %q: %w", redactQuery(loc), err)
	}
	if u.Scheme != "http" || u.Host != host {
		return "", fmt.Errorf("GET blob: redirect to %s, want one to http://%s", redactQuery(loc), host)
	}
	return loc, nil
}

// pullRedirected GETs a blob from a registry with redirects on: it wants a
// 307 to host, then GETs the Location itself (without the registry's
// token), reads the blob to the end and checks its length. It returns the
// time of both, and the time to the 307.
func (t *target) pullRedirected(ctx context.Context, digest string, size int64, host string) (total, toRedirect time.Duration, err error) {
	start := time.Now()
	resp, err := t.do(ctx, http.MethodGet, t.base+"/v2/"+t.repo+"/blobs/"+digest, nil, 0, nil)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	toRedirect = time.Since(start)
	loc, err := checkRedirect(resp, host)
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err = t.hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, 0, fmt.Errorf("GET %s: %s: %s", redactQuery(loc), resp.Status, strings.TrimSpace(string(b)))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if n != size {
		return 0, 0, fmt.Errorf("GET %s: %d bytes, want %d", redactQuery(loc), n, size)
	}
	return time.Since(start), toRedirect, nil
}
