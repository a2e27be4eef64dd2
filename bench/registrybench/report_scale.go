package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

// msSpread formats durations in ms: the median, with the range.
func msSpread(ds []time.Duration) string {
	v := make([]float64, 0, len(ds))
	for _, d := range ds {
		v = append(v, ms(d))
	}
	if len(v) == 0 {
		return "-"
	}
	if len(v) == 1 {
		return fmt.Sprintf("%.1f", v[0])
	}
	return fmt.Sprintf("%.1f (%.1f-%.1f)", median(v), slices.Min(v), slices.Max(v))
}

func msMedian(ds []time.Duration) float64 {
	v := make([]float64, 0, len(ds))
	for _, d := range ds {
		v = append(v, ms(d))
	}
	return median(v)
}

func (b *bench) reportScale(w io.Writer) {
	keys := b.scaleKeys()
	_, _ = fmt.Fprintf(w, "\n## Registry benchmark, scale suite\n\n%s\n\n", benchenv.Machine())
	if len(b.scale) > 0 {
		_, _ = fmt.Fprintf(w, "Image of %d layers (1 to 20 MiB each, new content every round) pushed as the Docker engine does (POST, one streamed PATCH, PUT; %d uploads at a time; then config and manifest PUT) and pulled (manifest, then %d layers at a time). Catalog and cold start over %d repositories written in the registry:2 layout. Mixed load: %d clients for %s, HEAD blob / GET manifest / GET tags list in a 70/20/10 mix.\n",
			b.o.layers, imageWorkers, imageWorkers, b.o.repos, b.o.clients, b.o.getDuration)
		_, _ = fmt.Fprintf(w, "Gatehouse (durable storage) sends a bearer token from gatehouse auth-server with every request; the reference registries run without auth.\n")
	}
	_, _ = fmt.Fprintf(w, "Load average (1, 5, 15 min): %s\n\n", joinLoads(b.loadAvgs))
	if len(b.scale) > 0 {
		b.scaleTable(w, keys)
	}
	if b.gcRuns != nil {
		_, _ = fmt.Fprintf(w, "\n### Offline programs over %d blobs (%s), %d manifests in %d repositories, %d blobs unreferenced\n\n",
			b.gcData.blobs, benchenv.MiB(b.gcData.bytes), b.o.gcManifests, b.o.gcRepos, b.gcData.blobs-b.gcData.referenced)
		_, _ = fmt.Fprintln(w, "| program | wall time (s) | peak RSS (MiB) | blobs left |")
		_, _ = fmt.Fprintln(w, "|---|---|---|---|")
		for _, k := range []string{keyGatehouseGC, keyV3GC, "check", "verify", keySha256sum} {
			runs := b.gcRuns[k]
			if len(runs) == 0 {
				continue
			}
			name := map[string]string{"check": "gatehouse storage check", "verify": "gatehouse storage check --verify-digests", keySha256sum: "sha256sum of the blob files (find, xargs)"}[k]
			if name == "" {
				name = k
			}
			var walls, rss []float64
			left := "-"
			for _, r := range runs {
				if r.failure != nil {
					name += " (failed: " + truncateText(r.failure.Error(), 200) + ")"
					continue
				}
				walls = append(walls, r.wall.Seconds())
				rss = append(rss, float64(r.maxRSS)/(1<<20))
				if k == keyGatehouseGC || k == keyV3GC {
					left = fmt.Sprint(r.left)
				}
			}
			_, _ = fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, spreadPrec(walls, 2), spreadPrec(rss, 1), left)
		}
	}
	_, _ = io.WriteString(w, "\n")
	writeTargets(w, b.scaleTargets())
	_, _ = io.WriteString(w, "\n")
}

// scaleTable prints the registries' figures of the scale suite.
func (b *bench) scaleTable(w io.Writer, keys []string) {
	writeHeader(w, keys)
	row := func(name string, cell func(r *scaleResult) string) { writeRow(w, keys, b.scale, name, cell) }
	var imageBytes int64
	for _, r := range b.scale {
		imageBytes = max(imageBytes, r.imageBytes)
	}
	row(fmt.Sprintf("image push, %d layers (MB/s)", b.o.layers), func(r *scaleResult) string { return spread(r.push) })
	row("image pull (MB/s)", func(r *scaleResult) string { return spread(r.pull) })
	row(fmt.Sprintf("catalog, n=%d to the end (ms)", catalogPage), func(r *scaleResult) string { return msSpread(r.catalogPaged) })
	row("catalog, one request (ms)", func(r *scaleResult) string {
		s := msSpread(r.catalogOne)
		if r.catalogOneTruncated {
			s += fmt.Sprintf(" (paginated by the server: %d names)", r.catalogOneCount)
		}
		return s
	})
	row(fmt.Sprintf("cold start to the first 200 on /v2/, %d repositories (ms)", b.o.repos), func(r *scaleResult) string { return msSpread(r.coldStart) })
	row("mixed load (req/s)", func(r *scaleResult) string { return spread(rates(r.mixed)) })
	row("mixed load p50 / p99 (ms), median run", func(r *scaleResult) string {
		g := medianLoad(r.mixed)
		if g.ok == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f / %.2f", ms(g.percentile(.5)), ms(g.percentile(.99)))
	})
	row("mixed load failed (all runs)", func(r *scaleResult) string {
		n := 0
		for _, g := range r.mixed {
			n += g.failed
		}
		return fmt.Sprint(n)
	})
	_, _ = fmt.Fprintf(w, "\nImage: %s in all (the last round's). Figures are medians of %d rounds (range in brackets); the registries take turns in an order that rotates.\n", benchenv.MiB(imageBytes), b.o.runs)
	for _, k := range keys {
		if r := b.scale[k]; r != nil && r.err != nil {
			_, _ = fmt.Fprintf(w, "\n%s failed: %v\n", titles[k], r.err)
		}
	}
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func spreadPrec(v []float64, prec int) string {
	if len(v) == 0 {
		return "-"
	}
	if len(v) == 1 {
		return fmt.Sprintf("%.*f", prec, v[0])
	}
	return fmt.Sprintf("%.*f (%.*f-%.*f)", prec, median(v), prec, slices.Min(v), prec, slices.Max(v))
}

func joinLoads(l []string) string {
	out := ""
	for i, s := range l {
		if i > 0 {
			out += "; "
		}
		out += s
	}
	return out
}

// gcMedian returns the median wall time (s) and peak RSS (bytes) of the
// successful runs of k; zeros when there are none.
func (b *bench) gcMedian(k string) (wall, rss float64) {
	var walls, rsss []float64
	for _, r := range b.gcRuns[k] {
		if r.failure == nil {
			walls = append(walls, r.wall.Seconds())
			rsss = append(rsss, float64(r.maxRSS))
		}
	}
	return median(walls), median(rsss)
}

// info is the verdict of a row without a target.
func info(measured bool) string {
	if measured {
		return "reported"
	}
	return "not measured"
}

// scaleTargets evaluates the targets of the scale suite.
func (b *bench) scaleTargets() []targetRow {
	get := func(k string) *scaleResult {
		if r, ok := b.scale[k]; ok {
			return r
		}
		return &scaleResult{}
	}
	g, v3, v2 := get(keyGatehouse), get(keyV3), get(keyV2)
	ratio := func(name string, gv, ref, factor float64, unit string) targetRow {
		return targetRow{
			name:     name,
			measured: fmt.Sprintf("%.0f %s = %.2fx %.0f", gv, unit, gv/ref, ref),
			want:     fmt.Sprintf(">= %.0f %s (%.1fx)", factor*ref, unit, factor),
			verdict:  verdict(gv >= factor*ref, gv > 0 && ref > 0),
		}
	}
	atMost := func(name string, gv, ref float64, refName string) targetRow {
		return targetRow{
			name:     name,
			measured: fmt.Sprintf("%.1f ms vs %.1f ms", gv, ref),
			want:     fmt.Sprintf("<= %.1f ms (%s)", ref, refName),
			verdict:  verdict(gv <= ref, gv > 0 && ref > 0),
		}
	}
	rows := []targetRow{
		ratio(fmt.Sprintf("image push, %d layers, %d at a time >= 1.5x v3.1.2", b.o.layers, imageWorkers), median(g.push), median(v3.push), 1.5, "MB/s"),
		ratio("image pull >= 1.5x v3.1.2", median(g.pull), median(v3.pull), 1.5, "MB/s"),
		atMost(fmt.Sprintf("catalog of %d, n=%d to the end <= 2.8.2", b.o.repos, catalogPage), msMedian(g.catalogPaged), msMedian(v2.catalogPaged), "2.8.2"),
		atMost(fmt.Sprintf("catalog of %d in one request <= 2.8.2", b.o.repos), msMedian(g.catalogOne), msMedian(v2.catalogOne), "2.8.2"),
	}
	cs := msMedian(g.coldStart)
	rows = append(rows, targetRow{
		name:     fmt.Sprintf("cold start with %d repositories < 200 ms", b.o.repos),
		measured: fmt.Sprintf("%.1f ms", cs),
		want:     "< 200 ms",
		verdict:  verdict(cs < 200, cs > 0),
	})
	gm, v3m := medianLoad(g.mixed), medianLoad(v3.mixed)
	rows = append(rows, targetRow{
		name: "mixed load with a token vs v3.1.2 without auth (no target set; reported)",
		measured: fmt.Sprintf("%.0f req/s (p99 %.1f ms) vs %.0f req/s (p99 %.1f ms)",
			median(rates(g.mixed)), ms(gm.percentile(.99)), median(rates(v3.mixed)), ms(v3m.percentile(.99))),
		want:    "-",
		verdict: info(gm.ok > 0 && v3m.ok > 0),
	})
	if b.gcRuns != nil {
		gw, gr := b.gcMedian(keyGatehouseGC)
		vw, vr := b.gcMedian(keyV3GC)
		rows = append(rows,
			targetRow{
				name:     "gc wall time <= 0.5x registry-v3 garbage-collect",
				measured: fmt.Sprintf("%.2f s vs %.2f s (%.2fx faster)", gw, vw, vw/gw),
				want:     fmt.Sprintf("<= %.2f s", vw/2),
				verdict:  verdict(gw <= vw/2, gw > 0 && vw > 0),
			},
			targetRow{
				name:     "gc peak RSS <= registry-v3 garbage-collect",
				measured: fmt.Sprintf("%s vs %s", benchenv.MiB(int64(gr)), benchenv.MiB(int64(vr))),
				want:     "<= " + benchenv.MiB(int64(vr)),
				verdict:  verdict(gr <= vr, gr > 0 && vr > 0),
			})
		cw, _ := b.gcMedian("check")
		rows = append(rows, targetRow{
			name: "gatehouse storage check (no target; reported)", measured: fmt.Sprintf("%.2f s", cw), want: "-",
			verdict: info(cw > 0),
		})
		vw2, _ := b.gcMedian("verify")
		sw, _ := b.gcMedian(keySha256sum)
		mb := float64(b.gcData.bytes) / 1e6
		// The hashing rate is the blob bytes over the time --verify-digests
		// adds to the check; the whole command's rate is shown beside it.
		added := vw2 - cw
		rows = append(rows, targetRow{
			name: "storage check --verify-digests: hashing >= 0.8x sha256sum over the blob files",
			measured: fmt.Sprintf("%.1f MB/s (%.2f s more than the check; whole command %.1f MB/s) vs %.1f MB/s (%.2f s)",
				mb/max(added, 1e-3), added, mb/vw2, mb/sw, sw),
			want:    fmt.Sprintf(">= %.1f MB/s", 0.8*mb/sw),
			verdict: verdict(added <= sw/0.8, vw2 > 0 && cw > 0 && sw > 0),
		})
	}
	return rows
}
