package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

// ddRate writes size bytes with `dd ... conv=fdatasync` in dir and returns
// MB/s (10^6 bytes per second, as dd counts), the file's flush included.
func ddRate(ctx context.Context, dir string, size int64) (float64, error) {
	file := filepath.Join(dir, "dd.bin")
	defer func() { _ = os.Remove(file) }()
	count := max(size>>20, 1)
	cmd := exec.CommandContext(ctx, "dd", "if=/dev/zero", "of="+file, "bs=1M", fmt.Sprintf("count=%d", count), "conv=fdatasync")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("dd: %w\n%s", err, out)
	}
	return mbps(count<<20, time.Since(start)), nil
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

// targets evaluates the targets on what was measured.
func (b *bench) targets() []targetRow {
	get := func(k string) *result {
		if r, ok := b.results[k]; ok {
			return r
		}
		return &result{}
	}
	g, gn, v3 := get(keyGatehouse), get(keyNonDurable), get(keyV3)
	var rows []targetRow
	for _, c := range []struct {
		what    string
		gv, ref float64
	}{{"monolithic", g.pushMono, 0}, {"16 MiB chunks", g.pushChunked, 0}} {
		ratio := c.gv / b.ddRate
		rows = append(rows, targetRow{
			name:     "durable push (" + c.what + ") >= 90% of dd conv=fdatasync",
			measured: fmt.Sprintf("%.0f MB/s = %.0f%% of %.0f MB/s", c.gv, 100*ratio, b.ddRate),
			want:     fmt.Sprintf(">= %.0f MB/s", 0.9*b.ddRate),
			verdict:  verdict(ratio >= 0.9, c.gv > 0 && b.ddRate > 0),
		})
	}
	ratioRow := func(name string, gv, ref, factor float64, unit string) targetRow {
		return targetRow{
			name:     name,
			measured: fmt.Sprintf("%.0f %s = %.2fx %.0f", gv, unit, gv/ref, ref),
			want:     fmt.Sprintf(">= %.0f %s (%.1fx)", factor*ref, unit, factor),
			verdict:  verdict(gv >= factor*ref, gv > 0 && ref > 0),
		}
	}
	rows = append(rows,
		ratioRow("durable: false push (monolithic) >= 1.5x v3.1.2", gn.pushMono, v3.pushMono, 1.5, "MB/s"),
		ratioRow("durable: false push (16 MiB chunks) >= 1.5x v3.1.2", gn.pushChunked, v3.pushChunked, 1.5, "MB/s"),
		ratioRow("pull >= 1.0x v3.1.2", g.pull, v3.pull, 1.0, "MB/s"),
		ratioRow("manifest GET with a token >= 2.5x v3.1.2 without auth", g.get.perSecond(), v3.get.perSecond(), 2.5, "req/s"),
	)
	rss := targetRow{name: fmt.Sprintf("peak RSS during a %s push < 100 MiB", benchenv.MiB(b.o.rssSize)), want: "< 100 MiB"}
	switch {
	case b.rss > 0:
		rss.measured = fmt.Sprintf("%s (push at %.0f MB/s)", benchenv.MiB(b.rss), b.rssRate)
		rss.verdict = verdict(b.rss < 100<<20, true)
	case b.rssErr != nil:
		rss.measured, rss.verdict = "error: "+b.rssErr.Error(), "not measured"
	default:
		rss.measured, rss.verdict = "-", "not measured"
	}
	return append(rows, rss)
}

func (b *bench) report() {
	w := b.out
	_, _ = fmt.Fprintf(w, "\n## Registry benchmark\n\n%s\n\n", benchenv.Machine())
	_, _ = fmt.Fprintf(w, "blob %s (monolithic POST+PUT, and PATCH chunks of %s), manifest GET by tag at %d clients for %s, tags list of %d tags.\n",
		benchenv.MiB(b.o.size), benchenv.MiB(b.o.chunk), b.o.clients, b.o.getDuration, b.o.tags)
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
	row("push, monolithic (MB/s)", func(r *result) string { return num(r.pushMono, "%.0f") })
	row("push, chunked (MB/s)", func(r *result) string { return num(r.pushChunked, "%.0f") })
	row("pull (MB/s)", func(r *result) string { return num(r.pull, "%.0f") })
	row("manifest GET (req/s)", func(r *result) string { return num(r.get.perSecond(), "%.0f") })
	row("manifest GET p50 / p99 (ms)", func(r *result) string {
		if r.get.ok == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f / %.2f", ms(r.get.percentile(.5)), ms(r.get.percentile(.99)))
	})
	row("manifest GET failed", func(r *result) string { return fmt.Sprint(r.get.failed) })
	row(fmt.Sprintf("tags list, %d tags (ms)", b.o.tags+1), func(r *result) string { return num(ms(r.tagsList), "%.1f") })
	row(fmt.Sprintf("(setup: %d manifest PUTs, s)", b.o.tags), func(r *result) string { return num(r.tagsSetup.Seconds(), "%.1f") })
	row("peak RSS after the pushes (MiB)", func(r *result) string { return num(float64(r.rssPush)/(1<<20), "%.1f") })
	row("peak RSS, whole run (MiB)", func(r *result) string { return num(float64(r.rssPeak)/(1<<20), "%.1f") })
	_, _ = fmt.Fprintf(w, "\ndd if=/dev/zero bs=1M conv=fdatasync, same filesystem: %.0f MB/s\n\n", b.ddRate)

	_, _ = fmt.Fprintln(w, "| target | measured | wanted | |")
	_, _ = fmt.Fprintln(w, "|---|---|---|---|")
	for _, t := range b.targets() {
		_, _ = fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.name, t.measured, t.want, t.verdict)
	}
	for _, k := range keys {
		if r := b.results[k]; r != nil && r.err != nil {
			_, _ = fmt.Fprintf(w, "\n%s failed: %v\n", titles[k], r.err)
		}
	}
	_, _ = io.WriteString(w, "\n")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
