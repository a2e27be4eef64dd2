package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

// ddRate writes size bytes with `dd ... conv=fdatasync` to a new file in
// dir and returns MB/s (10^6 bytes per second, as dd counts), the flush
// included. The file is left for the caller to remove at the end of the
// run: on a filesystem mounted with discard, deleting it at once would
// slow down the writes measured next.
func ddRate(ctx context.Context, dir string, size int64) (float64, error) {
	f, err := os.CreateTemp(dir, "dd-*.bin")
	if err != nil {
		return 0, err
	}
	_ = f.Close()
	count := max(size>>20, 1)
	cmd := exec.CommandContext(ctx, "dd", "if=/dev/zero", "of="+f.Name(), "bs=1M", fmt.Sprintf("count=%d", count), "conv=fdatasync")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("dd: %w\n%s", err, out)
	}
	return mbps(count<<20, time.Since(start)), nil
}

// randWriteRate writes size bytes of the generator (random, like the
// pushed blobs, where dd writes zeros) to a new file in dir with 1 MiB
// writes and one fdatasync, and returns MB/s. Like dd's, the file stays
// until the end of the run.
func randWriteRate(dir string, size int64) (float64, error) {
	f, err := os.CreateTemp(dir, "random-*.bin")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, newGen(9, size), buf); err != nil {
		_ = f.Close()
		return 0, err
	}
	if err := syscall.Fdatasync(int(f.Fd())); err != nil { //nolint:gosec // a file descriptor fits in an int
		_ = f.Close()
		return 0, err
	}
	d := time.Since(start)
	return mbps(size, d), f.Close()
}

// targetRow is one performance target of the issue and how it went.
type targetRow struct {
	name     string
	measured string
	want     string
	verdict  string // met, missed, not measured
}

func verdict(ok, measured bool) string {
	switch {
	case !measured:
		return "not measured"
	case ok:
		return "met"
	default:
		return "missed"
	}
}

// median returns the median of v (the mean of the middle two for an even
// count), or 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianLoad returns the run with the median requests/s (the lower middle
// one for an even count).
func medianLoad(runs []loadResult) loadResult {
	if len(runs) == 0 {
		return loadResult{}
	}
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b loadResult) int { return cmp.Compare(a.perSecond(), b.perSecond()) })
	return s[(len(s)-1)/2]
}

// targets evaluates the targets on the medians.
func (b *bench) targets() []targetRow {
	get := func(k string) *result {
		if r, ok := b.results[k]; ok {
			return r
		}
		return &result{}
	}
	g, gn, v3 := get(keyGatehouse), get(keyNonDurable), get(keyV3)
	dd := median(b.ddRates)
	var rows []targetRow
	gm := median(g.pushMono)
	rows = append(rows, targetRow{
		name:     "durable push (monolithic) >= 90% of dd conv=fdatasync",
		measured: fmt.Sprintf("%.0f MB/s = %.0f%% of %.0f MB/s", gm, 100*gm/dd, dd),
		want:     fmt.Sprintf(">= %.0f MB/s", 0.9*dd),
		verdict:  verdict(gm >= 0.9*dd, gm > 0 && dd > 0),
	})
	gc := median(g.pushChunked)
	rows = append(rows, targetRow{
		name:     fmt.Sprintf("durable push (%s chunks) >= 0.95x durable monolithic", benchenv.MiB(b.o.chunk)),
		measured: fmt.Sprintf("%.0f MB/s = %.2fx %.0f", gc, gc/gm, gm),
		want:     fmt.Sprintf(">= %.0f MB/s", 0.95*gm),
		verdict:  verdict(gc >= 0.95*gm, gc > 0 && gm > 0),
	})
	ratioRow := func(name string, gv, ref, factor float64, unit string) targetRow {
		return targetRow{
			name:     name,
			measured: fmt.Sprintf("%.0f %s = %.2fx %.0f", gv, unit, gv/ref, ref),
			want:     fmt.Sprintf(">= %.0f %s (%.1fx)", factor*ref, unit, factor),
			verdict:  verdict(gv >= factor*ref, gv > 0 && ref > 0),
		}
	}
	rows = append(rows,
		ratioRow("durable: false push (monolithic) >= 1.5x v3.1.2", median(gn.pushMono), median(v3.pushMono), 1.5, "MB/s"),
		ratioRow("durable: false push (chunks) >= 2x v3.1.2", median(gn.pushChunked), median(v3.pushChunked), 2, "MB/s"),
		ratioRow("pull >= 1.0x v3.1.2", median(g.pull), median(v3.pull), 1.0, "MB/s"),
		ratioRow("manifest GET with a token >= 2.5x v3.1.2 without auth", median(rates(g.get)), median(rates(v3.get)), 2.5, "req/s"),
	)
	gt, v2t := ms(g.tagsList), ms(get(keyV2).tagsList)
	rows = append(rows, targetRow{
		name:     fmt.Sprintf("tags list of %d tags <= docker-registry 2.8.2", b.o.tags+1),
		measured: fmt.Sprintf("%.1f ms vs %.1f ms", gt, v2t),
		want:     fmt.Sprintf("<= %.1f ms", v2t),
		verdict:  verdict(gt <= v2t, gt > 0 && v2t > 0),
	})
	return append(rows, rssTarget(fmt.Sprintf("peak RSS during a %s push < 100 MiB", benchenv.MiB(b.o.rssSize)), b.rss, b.rssRate, b.rssErr))
}

// rates returns the requests/s of each run.
func rates(runs []loadResult) []float64 {
	v := make([]float64, 0, len(runs))
	for _, g := range runs {
		v = append(v, g.perSecond())
	}
	return v
}

// spread formats the median of v with its range when there are several.
func spread(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	if len(v) == 1 {
		return fmt.Sprintf("%.0f", v[0])
	}
	return fmt.Sprintf("%.0f (%.0f-%.0f)", median(v), slices.Min(v), slices.Max(v))
}

func (b *bench) report() {
	if len(b.results) > 0 {
		b.reportCore()
	}
	if b.scale != nil || b.gcRuns != nil {
		b.reportScale(b.out)
	}
	if b.proxy != nil {
		b.reportProxy(b.out)
	}
	if b.s3 != nil {
		b.reportS3(b.out)
	}
}

func (b *bench) reportCore() {
	w := b.out
	_, _ = fmt.Fprintf(w, "\n## Registry benchmark\n\n%s\n\n", benchenv.Machine())
	_, _ = fmt.Fprintf(w, "blob %s (monolithic POST+PUT, and PATCH chunks of %s), manifest GET by tag at %d clients for %s per round, tags list of %d tags.\n",
		benchenv.MiB(b.o.size), benchenv.MiB(b.o.chunk), b.o.clients, b.o.getDuration, b.o.tags+1)
	_, _ = fmt.Fprintf(w, "Gatehouse sends a bearer token from gatehouse auth-server with every request; the reference registries run without auth.\n")
	_, _ = fmt.Fprintf(w, "Load average (1, 5, 15 min): %s\n\n", strings.Join(b.loadAvgs, "; "))

	keys := b.o.registries
	header := "| |"
	sep := "|---|"
	for _, k := range keys {
		header += " " + titles[k] + " |"
		sep += "---|"
	}
	_, _ = fmt.Fprintln(w, header)
	_, _ = fmt.Fprintln(w, sep)
	row := func(name string, cell func(r *result) string) {
		line := "| " + name + " |"
		for _, k := range keys {
			r := b.results[k]
			c := "-"
			if r != nil {
				c = cell(r)
			}
			line += " " + c + " |"
		}
		_, _ = fmt.Fprintln(w, line)
	}
	num := func(v float64, format string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	row("push, monolithic (MB/s)", func(r *result) string { return spread(r.pushMono) })
	row(fmt.Sprintf("push, %s chunks (MB/s)", benchenv.MiB(b.o.chunk)), func(r *result) string { return spread(r.pushChunked) })
	row("pull (MB/s)", func(r *result) string { return spread(r.pull) })
	row("manifest GET (req/s)", func(r *result) string { return spread(rates(r.get)) })
	row("manifest GET p50 / p99 (ms), median run", func(r *result) string {
		g := medianLoad(r.get)
		if g.ok == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f / %.2f", ms(g.percentile(.5)), ms(g.percentile(.99)))
	})
	row("manifest GET failed (all runs)", func(r *result) string {
		n := 0
		for _, g := range r.get {
			n += g.failed
		}
		return fmt.Sprint(n)
	})
	if b.o.tags > 0 {
		row(fmt.Sprintf("tags list, %d tags (ms)", b.o.tags+1), func(r *result) string { return num(ms(r.tagsList), "%.1f") })
		row(fmt.Sprintf("(setup: %d manifest PUTs, s)", b.o.tags), func(r *result) string { return num(r.tagsSetup.Seconds(), "%.1f") })
	}
	row("peak RSS after the pushes (MiB)", func(r *result) string { return num(float64(r.rssPush)/(1<<20), "%.1f") })
	row("peak RSS, whole run (MiB)", func(r *result) string { return num(float64(r.rssPeak)/(1<<20), "%.1f") })
	_, _ = fmt.Fprintf(w, "\ndd if=/dev/zero bs=1M conv=fdatasync, same filesystem, a turn among each round's monolithic pushes (MB/s): %s\n", spread(b.ddRates))
	_, _ = fmt.Fprintf(w, "The same with the generator's random bytes (Go, 1 MiB writes, fdatasync), same turns (MB/s): %s\n", spread(b.randRates))
	_, _ = fmt.Fprintf(w, "Figures are medians of %d rounds (range in brackets); the registries run side by side and take turns in each round, in an order that rotates.\n\n", b.o.runs)

	writeTargets(w, b.targets())
	for _, k := range keys {
		if r := b.results[k]; r != nil && r.err != nil {
			_, _ = fmt.Fprintf(w, "\n%s failed: %v\n", titles[k], r.err)
		}
	}
	_, _ = io.WriteString(w, "\n")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeHeader prints the header of a table with a column per registry.
func writeHeader(w io.Writer, keys []string) {
	header, sep := "| |", "|---|"
	for _, k := range keys {
		header += " " + titles[k] + " |"
		sep += "---|"
	}
	_, _ = fmt.Fprintln(w, header)
	_, _ = fmt.Fprintln(w, sep)
}

// writeTargets prints the table of targets, each marked met or missed.
func writeTargets(w io.Writer, rows []targetRow) {
	_, _ = fmt.Fprintln(w, "| target | measured | wanted | |")
	_, _ = fmt.Fprintln(w, "|---|---|---|---|")
	for _, t := range rows {
		_, _ = fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.name, t.measured, t.want, t.verdict)
	}
}

// writeRow prints one row of a table with a column per registry: cell of
// each registry's result, "-" where it has none.
func writeRow[R any](w io.Writer, keys []string, results map[string]*R, name string, cell func(r *R) string) {
	line := "| " + name + " |"
	for _, k := range keys {
		c := "-"
		if r := results[k]; r != nil {
			c = cell(r)
		}
		line += " " + c + " |"
	}
	_, _ = fmt.Fprintln(w, line)
}

// rssTarget is the target row of a peak RSS below 100 MiB while pushing:
// rss of the registry (0 if not measured), the push's rate, or why it
// could not be measured.
func rssTarget(name string, rss int64, rate float64, err error) targetRow {
	t := targetRow{name: name, want: "< 100 MiB"}
	switch {
	case rss > 0:
		t.measured = fmt.Sprintf("%s (push at %.0f MB/s)", benchenv.MiB(rss), rate)
		t.verdict = verdict(rss < 100<<20, true)
	case err != nil:
		t.measured, t.verdict = "error: "+err.Error(), "not measured"
	default:
		t.measured, t.verdict = "-", "not measured"
	}
	return t
}
