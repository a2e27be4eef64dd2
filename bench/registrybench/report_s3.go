package main

import (
	"fmt"
	"io"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

// perPushed returns the median over the rounds of what MinIO received
// and wrote, each divided by the bytes pushed: "1.00 / 2.00".
func perPushed(cs []benchenv.MinIOCounters, pushed int64) string {
	if len(cs) == 0 || pushed <= 0 {
		return "-"
	}
	var rx, wr []float64
	for _, c := range cs {
		rx = append(rx, float64(c.Received)/float64(pushed))
		wr = append(wr, float64(c.Written())/float64(pushed))
	}
	return fmt.Sprintf("%.2f / %.2f", median(rx), median(wr))
}

func (b *bench) reportS3(w io.Writer) {
	keys := s3Keys(b.o.registries)
	_, _ = fmt.Fprintf(w, "\n## Registry benchmark, s3 suite\n\n%s\n\n", benchenv.Machine())
	_, _ = fmt.Fprintf(w, "Gatehouse and registry v3.1.2 on one MinIO (127.0.0.1, a bucket each), S3 driver defaults (10 MiB parts), blob descriptor cache in one redis-server. "+
		"Blob %s (monolithic POST+PUT, and PATCH chunks of %s); image of %d layers (1 to 20 MiB), %d uploads at a time; manifest GET by tag at %d clients for %s per round. "+
		"Gatehouse sends a bearer token with every request; v3.1.2 runs without auth.\n",
		benchenv.MiB(b.o.size), benchenv.MiB(b.o.chunk), b.o.layers, imageWorkers, b.o.clients, b.o.getDuration)
	_, _ = fmt.Fprintf(w, "Load average (1, 5, 15 min): %s\n\n", joinLoads(b.loadAvgs))
	writeHeader(w, keys)
	row := func(name string, cell func(r *s3Result) string) { writeRow(w, keys, b.s3, name, cell) }
	loadCells := func(get func(r *s3Result) []loadResult) (func(r *s3Result) string, func(r *s3Result) string) {
		return func(r *s3Result) string { return spread(rates(get(r))) },
			func(r *s3Result) string {
				g := medianLoad(get(r))
				if g.ok == 0 {
					return "-"
				}
				n := 0
				for _, x := range get(r) {
					n += x.failed
				}
				return fmt.Sprintf("%.2f / %.2f (%d failed)", ms(g.percentile(.5)), ms(g.percentile(.99)), n)
			}
	}
	row("push, monolithic (MB/s)", func(r *s3Result) string { return spread(r.pushMono) })
	row(fmt.Sprintf("push, %s chunks (MB/s)", benchenv.MiB(b.o.chunk)), func(r *s3Result) string { return spread(r.pushChunked) })
	row("pull (MB/s)", func(r *s3Result) string { return spread(r.pull) })
	row("pull with redirects: 307, then GET from MinIO (MB/s)", func(r *s3Result) string { return spread(r.pullRedirect) })
	row("time to the 307 (ms), redirects followed", func(r *s3Result) string {
		return fmt.Sprintf("%s, %d", msSpread(r.toRedirect), r.redirects)
	})
	row(fmt.Sprintf("image push, %d layers (MB/s)", b.o.layers), func(r *s3Result) string { return spread(r.imagePush) })
	row("image pull (MB/s)", func(r *s3Result) string { return spread(r.imagePull) })
	withRedis, withRedisLat := loadCells(func(r *s3Result) []loadResult { return r.getRedis })
	plain, plainLat := loadCells(func(r *s3Result) []loadResult { return r.getPlain })
	row("manifest GET, Redis cache (req/s)", withRedis)
	row("manifest GET, Redis cache, p50 / p99 (ms)", withRedisLat)
	row("manifest GET, in-memory cache (req/s)", plain)
	row("manifest GET, in-memory cache, p50 / p99 (ms)", plainLat)
	row("MinIO received / wrote per pushed byte, monolithic", func(r *s3Result) string { return perPushed(r.monoIO, b.o.size) })
	row("MinIO received / wrote per pushed byte, chunks", func(r *s3Result) string { return perPushed(r.chunkIO, b.o.size) })
	row("MinIO received / wrote per pushed byte, image", func(r *s3Result) string { return perPushed(r.imageIO, r.imageBytes) })
	_, _ = fmt.Fprintf(w, "\nFigures are medians of %d rounds (range in brackets); the registries take turns in an order that rotates. "+
		"Received: MinIO's minio_api_requests_traffic_received_bytes (metrics v3); wrote: wchar of MinIO's /proc/PID/io less the bytes it sent (server-side copies included).\n\n", b.o.runs)
	writeTargets(w, b.s3Targets())
	for _, k := range keys {
		if r := b.s3[k]; r != nil && r.err != nil {
			_, _ = fmt.Fprintf(w, "\n%s on S3 failed: %v\n", titles[k], r.err)
		}
	}
	_, _ = io.WriteString(w, "\n")
}

// s3Targets evaluates the targets of the s3 suite.
func (b *bench) s3Targets() []targetRow {
	get := func(k string) *s3Result {
		if r, ok := b.s3[k]; ok {
			return r
		}
		return &s3Result{}
	}
	g, v3 := get(keyGatehouse), get(keyV3)
	ratio := func(name string, gv, ref, factor float64, unit string) targetRow {
		return targetRow{
			name:     name,
			measured: fmt.Sprintf("%.0f %s = %.2fx %.0f", gv, unit, gv/ref, ref),
			want:     fmt.Sprintf(">= %.0f %s (%.1fx)", factor*ref, unit, factor),
			verdict:  verdict(gv >= factor*ref, gv > 0 && ref > 0),
		}
	}
	rows := []targetRow{
		ratio("push (monolithic) >= 1.5x v3.1.2", median(g.pushMono), median(v3.pushMono), 1.5, "MB/s"),
		ratio(fmt.Sprintf("push (%s chunks) >= 1.5x v3.1.2", benchenv.MiB(b.o.chunk)), median(g.pushChunked), median(v3.pushChunked), 1.5, "MB/s"),
		ratio(fmt.Sprintf("image push (%d layers, %d at a time) >= 1.5x v3.1.2", b.o.layers, imageWorkers), median(g.imagePush), median(v3.imagePush), 1.5, "MB/s"),
		ratio("pull >= 1.0x v3.1.2", median(g.pull), median(v3.pull), 1.0, "MB/s"),
		ratio("image pull >= 1.0x v3.1.2", median(g.imagePull), median(v3.imagePull), 1.0, "MB/s"),
	}
	// With redirects, Gatehouse's part of a pull is the 307; the rest is
	// MinIO's. Bound by MinIO means the 307 takes at most 1% of the pull.
	total := float64(b.o.size) / 1e6 / max(median(g.pullRedirect), 1e-9) * 1000 // ms
	redirectMs := msMedian(g.toRedirect)
	rows = append(rows, targetRow{
		name: "pull with redirects bound by MinIO, not Gatehouse: the 307 <= 1% of the pull's time",
		measured: fmt.Sprintf("307 in %.1f ms of %.0f ms (%.2f%%); %.0f MB/s vs v3.1.2's %.0f MB/s",
			redirectMs, total, 100*redirectMs/total, median(g.pullRedirect), median(v3.pullRedirect)),
		want:    fmt.Sprintf("<= %.0f ms", total/100),
		verdict: verdict(redirectMs <= total/100, len(g.pullRedirect) > 0 && redirectMs > 0),
	})
	rows = append(rows,
		ratio("manifest GET, Redis cache, with a token >= 2.5x v3.1.2 with Redis, without auth", median(rates(g.getRedis)), median(rates(v3.getRedis)), 2.5, "req/s"),
		targetRow{
			name: "manifest GET, in-memory cache, with a token vs v3.1.2 without auth (no target; reported)",
			measured: fmt.Sprintf("%.0f req/s = %.2fx %.0f", median(rates(g.getPlain)), median(rates(g.getPlain))/median(rates(v3.getPlain)),
				median(rates(v3.getPlain))),
			want:    "-",
			verdict: info(len(g.getPlain) > 0 && len(v3.getPlain) > 0),
		},
	)
	rows = append(rows, rssTarget(fmt.Sprintf("peak RSS during a %s push to S3 < 100 MiB", benchenv.MiB(b.o.rssSize)), b.s3RSS, b.s3RSSRate, b.s3RSSErr))
	rows = append(rows, targetRow{
		name:     "bytes MinIO received / wrote per pushed byte, monolithic (no target; reported)",
		measured: fmt.Sprintf("Gatehouse %s, v3.1.2 %s", perPushed(g.monoIO, b.o.size), perPushed(v3.monoIO, b.o.size)),
		want:     "-",
		verdict:  info(len(g.monoIO) > 0 && len(v3.monoIO) > 0),
	})
	return rows
}
