package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

// Rows of the proxy suite, in the order of the table.
const (
	rowDirect = "direct"   // from the upstream Gatehouse itself
	rowCold   = "cold"     // first pull through a Gatehouse cache
	rowWarm   = "warm"     // second pull through it
	rowV3Cold = "v3-cold"  // first pull through registry v3.1.2 as a cache
	rowV3Warm = "v3-warm"  // second pull through it
	proxyTag  = "latest"   // the image's tag upstream
	v3Turn    = "v3-cache" // the v3 cache's turn in a round
)

var proxyRows = []string{rowDirect, rowCold, rowWarm, rowV3Cold, rowV3Warm}

var proxyTitles = map[string]string{
	rowDirect: "direct from the upstream (a plain Gatehouse)",
	rowCold:   "first pull through a Gatehouse cache (cold)",
	rowWarm:   "second pull through the Gatehouse cache (warm)",
	rowV3Cold: "first pull through registry v3.1.2 as a cache (cold)",
	rowV3Warm: "second pull through registry v3.1.2 as a cache (warm)",
}

// proxyResult holds the proxy suite's figures: MB/s of each pull, and the
// peak RSS of each cache process, by row, one per round.
type proxyResult struct {
	rates map[string][]float64
	rss   map[string][]int64 // rowCold and rowV3Cold: the cache process after both pulls
	err   error
}

// proxyImage is the image the upstream holds.
type proxyImage struct {
	manifest, manifestDigest string
	config, configDigest     string
	layerDigest              string
	layerSize                int64
}

// runProxy runs the proxy suite: an upstream Gatehouse holding an image of
// one -size layer, pulled in each round directly, and through a fresh
// Gatehouse cache (and registry v3.1.2 as a cache when v3 is among
// -registries) twice, cold and warm. Nothing runs with auth.
func (b *bench) runProxy(ctx context.Context, v3 string) error {
	r := &proxyResult{rates: map[string][]float64{}, rss: map[string][]int64{}}
	b.proxy = r
	r.err = b.proxyRounds(ctx, r, v3)
	if r.err != nil {
		b.logf("proxy suite: %v", r.err)
	}
	b.noteLoad("after the proxy rounds")
	return nil
}

func (b *bench) proxyRounds(ctx context.Context, r *proxyResult, v3 string) error {
	b.logf("digest of the generated %s layer", benchenv.MiB(b.o.size))
	im := proxyImage{layerDigest: genDigest(seedProxy, b.o.size), layerSize: b.o.size}
	up, err := b.start(ctx, keyGatehouse, "", startSpec{name: "proxy-upstream", noAuth: true})
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer up.stop()
	b.logf("upstream: pushing the image")
	if _, err := up.t.pushMonolithic(ctx, seedProxy, b.o.size, im.layerDigest); err != nil {
		return fmt.Errorf("upstream push: %w", err)
	}
	im.config = `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`
	if im.configDigest, err = up.t.pushSmallBlob(ctx, []byte(im.config)); err != nil {
		return fmt.Errorf("upstream push: %w", err)
	}
	m := manifest(im.configDigest, len(im.config), im.layerDigest, b.o.size)
	im.manifest, im.manifestDigest = string(m), sha256Digest(m)
	if err := up.t.putManifest(ctx, proxyTag, m); err != nil {
		return fmt.Errorf("upstream push: %w", err)
	}

	// The pulls reach the upstream through the pacing relay when there
	// is one; the push above went straight to it.
	via := up.t
	if b.o.upstreamRate > 0 {
		u, err := url.Parse(up.t.base)
		if err != nil {
			return err
		}
		p, err := newPacer(u.Host, b.o.upstreamRate*1e6)
		if err != nil {
			return fmt.Errorf("upstream relay: %w", err)
		}
		defer func() { _ = p.Close() }()
		t := *up.t
		t.base = "http://" + p.Addr()
		via = &t
		b.logf("upstream reached through a relay paced at %g MB/s each way", b.o.upstreamRate)
	}

	turns := []string{rowDirect, rowCold}
	if v3 != "" {
		turns = append(turns, v3Turn)
	}
	cacheConfig := fmt.Sprintf("proxy:\n  remoteurl: %q\n", via.base)
	for round := 1; round <= b.o.runs; round++ {
		for i := range turns {
			if err := ctx.Err(); err != nil {
				return err
			}
			switch turn := turns[(i+round-1)%len(turns)]; turn {
			case rowDirect:
				b.logf("direct pull from the upstream (round %d)", round)
				syscall.Sync()
				wait := b.profile(ctx, up, fmt.Sprintf("proxy-direct-%d", round), max(1, int(b.o.size/(1<<30))))
				d, err := via.pullTagged(ctx, proxyTag, im)
				wait()
				if err != nil {
					return fmt.Errorf("direct pull: %w", err)
				}
				r.rates[rowDirect] = append(r.rates[rowDirect], mbps(b.o.size, d))
			case rowCold:
				if err := b.cacheTurn(ctx, r, im, round, keyGatehouse, "", rowCold, rowWarm, cacheConfig); err != nil {
					return err
				}
			case v3Turn:
				if err := b.cacheTurn(ctx, r, im, round, keyV3, v3, rowV3Cold, rowV3Warm, cacheConfig); err != nil {
					return err
				}
			}
		}
	}
	if up.proc.Exited() {
		return fmt.Errorf("the upstream exited during the run:\n%s", up.proc.Tail(2000))
	}
	return nil
}

// cacheTurn starts a cache with an empty storage directory, pulls the image
// through it twice (cold, then warm), records both and the cache's peak
// RSS, and stops it and removes its storage.
func (b *bench) cacheTurn(ctx context.Context, r *proxyResult, im proxyImage, round int, key, tool, cold, warm, cacheConfig string) error {
	title := proxyTitles[cold]
	s, err := b.start(ctx, key, tool, startSpec{name: fmt.Sprintf("proxy-%s-%d", key, round), noAuth: true, extra: cacheConfig})
	if err != nil {
		return fmt.Errorf("%s: %w", title, err)
	}
	defer s.stop()
	b.logf("%s (round %d)", title, round)
	syscall.Sync()
	wait := b.profile(ctx, s, fmt.Sprintf("proxy-cold-%d", round), max(1, int(b.o.size/(400<<20))))
	d, err := s.t.pullTagged(ctx, proxyTag, im)
	wait()
	if err != nil {
		return fmt.Errorf("%s: %w", title, err)
	}
	r.rates[cold] = append(r.rates[cold], mbps(b.o.size, d))
	b.logf("%s (round %d)", proxyTitles[warm], round)
	syscall.Sync()
	wait = b.profile(ctx, s, fmt.Sprintf("proxy-warm-%d", round), max(1, int(b.o.size/(1<<30))))
	d, err = s.t.pullTagged(ctx, proxyTag, im)
	wait()
	if err != nil {
		return fmt.Errorf("%s: %w", proxyTitles[warm], err)
	}
	r.rates[warm] = append(r.rates[warm], mbps(b.o.size, d))
	rss, err := s.proc.PeakRSS()
	if err != nil {
		return fmt.Errorf("%s: %w", title, err)
	}
	r.rss[cold] = append(r.rss[cold], rss)
	if s.proc.Exited() {
		return fmt.Errorf("%s exited during the run:\n%s", title, s.proc.Tail(2000))
	}
	return nil
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pullTagged pulls an image as a client does: the manifest by tag (its
// digest checked), the config blob (checked) and the layer, read and
// discarded with its length checked. It returns the time of the three.
func (t *target) pullTagged(ctx context.Context, tag string, im proxyImage) (time.Duration, error) {
	start := time.Now()
	get := func(path, accept, wantDigest string, wantSize int64) error {
		var hdr map[string]string
		if accept != "" {
			hdr = map[string]string{"Accept": accept}
		}
		resp, err := t.do(ctx, http.MethodGet, t.base+"/v2/"+t.repo+path, nil, 0, hdr)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
		}
		if wantDigest == "" { // the layer: too large to hash on the client's share of the cores
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil {
				return fmt.Errorf("GET %s: %w", path, err)
			}
			if n != wantSize {
				return fmt.Errorf("GET %s: %d bytes, want %d", path, n, wantSize)
			}
			return nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		if got := sha256Digest(body); got != wantDigest {
			return fmt.Errorf("GET %s: digest %s, want %s", path, got, wantDigest)
		}
		return nil
	}
	if err := get("/manifests/"+tag, ociManifest, im.manifestDigest, 0); err != nil {
		return 0, err
	}
	if err := get("/blobs/"+im.configDigest, "", im.configDigest, 0); err != nil {
		return 0, err
	}
	if err := get("/blobs/"+im.layerDigest, "", "", im.layerSize); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// proxyTargets evaluates the targets of the pull-through cache.
func (b *bench) proxyTargets() []targetRow {
	rates := map[string][]float64{}
	if b.proxy != nil {
		rates = b.proxy.rates
	}
	direct, cold, warm := median(rates[rowDirect]), median(rates[rowCold]), median(rates[rowWarm])
	rows := []targetRow{
		{
			name:     "second pull through the cache >= 1.0x a pull from a plain Gatehouse",
			measured: fmt.Sprintf("%.0f MB/s = %.2fx %.0f", warm, warm/direct, direct),
			want:     fmt.Sprintf(">= %.0f MB/s", direct),
			verdict:  verdict(warm >= direct, warm > 0 && direct > 0),
		},
		{
			name:     "first pull through the cache within 10% of pulling from the upstream directly (time <= 1.1x)",
			measured: fmt.Sprintf("%.0f MB/s: %.2fx the direct pull's time", cold, direct/cold),
			want:     fmt.Sprintf(">= %.0f MB/s", direct/1.1),
			verdict:  verdict(cold*1.1 >= direct, cold > 0 && direct > 0),
		},
	}
	if b.o.upstreamRate > 0 {
		// The warm pull is served from the cache's disk, the direct one
		// through the relay: no measure of the first target.
		rows[0].name += " (not judged with -upstream-rate: the direct pull is paced, the warm one is not)"
		rows[0].verdict = info(warm > 0 && direct > 0)
	}
	v3cold, v3warm := median(rates[rowV3Cold]), median(rates[rowV3Warm])
	rows = append(rows, targetRow{
		name:     "registry v3.1.2 as a cache, cold / warm (no target; reported)",
		measured: fmt.Sprintf("%.0f / %.0f MB/s", v3cold, v3warm),
		want:     "-",
		verdict:  info(v3cold > 0 && v3warm > 0),
	})
	return rows
}

func (b *bench) reportProxy(w io.Writer) {
	r := b.proxy
	_, _ = fmt.Fprintf(w, "\n## Registry benchmark, proxy suite\n\n%s\n\n", benchenv.Machine())
	_, _ = fmt.Fprintf(w, "An image of one %s layer (generated), a config and an OCI manifest on an upstream Gatehouse (filesystem, durable). "+
		"A pull is what a client does: GET of the manifest by tag (digest checked), of the config blob (checked) and of the layer (read and discarded, length checked); MB/s of the layer. "+
		"Every cold pull goes through a cache started with empty storage (proxy.remoteurl: the upstream); its warm pull follows. No auth anywhere.\n",
		benchenv.MiB(b.o.size))
	if b.o.upstreamRate > 0 {
		_, _ = fmt.Fprintf(w, "The direct pull and the caches reach the upstream through a relay on 127.0.0.1 paced at %g MB/s each way (-upstream-rate), as over a network link; the warm pull only revalidates the tag there.\n", b.o.upstreamRate)
	}
	_, _ = fmt.Fprintf(w, "Load average (1, 5, 15 min): %s\n\n", joinLoads(b.loadAvgs))
	_, _ = fmt.Fprintln(w, "| pull | MB/s | cache peak RSS after both pulls (MiB) |")
	_, _ = fmt.Fprintln(w, "|---|---|---|")
	for _, row := range proxyRows {
		v := r.rates[row]
		if len(v) == 0 {
			continue
		}
		rss := "-"
		if rs := r.rss[row]; len(rs) > 0 {
			f := make([]float64, len(rs))
			for i, x := range rs {
				f[i] = float64(x) / (1 << 20)
			}
			rss = spreadPrec(f, 1)
		}
		_, _ = fmt.Fprintf(w, "| %s | %s | %s |\n", proxyTitles[row], spread(v), rss)
	}
	_, _ = fmt.Fprintf(w, "\nMedians of %d rounds (range in brackets); in each round the direct pull and each cache take turns, in an order that rotates.\n\n", b.o.runs)
	writeTargets(w, b.proxyTargets())
	if r.err != nil {
		_, _ = fmt.Fprintf(w, "\nThe proxy suite failed: %v\n", r.err)
	}
	_, _ = io.WriteString(w, "\n")
}
