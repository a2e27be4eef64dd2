package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/registry/api"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

func TestGen(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		buf  int
	}{
		{"empty", 0, 7},
		{"one byte", 1, 7},
		{"short of a block", blockSize - 3, 4096},
		{"across a block", blockSize + 5, 3},
		{"several blocks, odd reads", 3*blockSize + 7, 100_003},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var whole bytes.Buffer
			buf := make([]byte, tc.buf)
			if _, err := io.CopyBuffer(struct{ io.Writer }{&whole}, struct{ io.Reader }{newGen(1, tc.size)}, buf); err != nil {
				t.Fatal(err)
			}
			if int64(whole.Len()) != tc.size {
				t.Fatalf("read %d bytes, want %d", whole.Len(), tc.size)
			}
			sum := sha256.Sum256(whole.Bytes())
			if got, want := genDigest(1, tc.size), "sha256:"+hex.EncodeToString(sum[:]); got != want {
				t.Errorf("genDigest %s, want %s", got, want)
			}
			// Sections of the stream put together are the stream.
			var parts bytes.Buffer
			for off := int64(0); off < tc.size; off += 999_999 {
				if _, err := io.Copy(&parts, section(1, tc.size, off, 999_999)); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(parts.Bytes(), whole.Bytes()) {
				t.Error("sections differ from the whole stream")
			}
		})
	}
	t.Run("blocks and seeds differ", func(t *testing.T) {
		b, err := io.ReadAll(newGen(1, 2*blockSize))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(b[:blockSize], b[blockSize:]) {
			t.Error("two blocks of one stream are equal")
		}
		if genDigest(1, blockSize) == genDigest(2, blockSize) {
			t.Error("seeds 1 and 2 give the same stream")
		}
	})
}

// TestWorkload runs every request of the benchmark against Gatehouse's
// registry handler (in memory, tags list paginated by 3).
func TestWorkload(t *testing.T) {
	h, err := api.New(api.Options{
		Delete: true, MaxTags: 3, MaxEntries: 3,
		Registry: storage.New(inmemory.New(), storage.Options{Delete: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()
	tg := &target{base: srv.URL, repo: "bench/app", hc: newClient(4)}
	const size, chunk = 200_000, 64 << 10

	if _, err := tg.pushMonolithic(ctx, 1, size, genDigest(1, size)); err != nil {
		t.Fatalf("monolithic push: %v", err)
	}
	if _, err := tg.pushChunked(ctx, 2, size, chunk, genDigest(2, size)); err != nil {
		t.Fatalf("chunked push: %v", err)
	}
	if _, err := tg.pushMonolithic(ctx, 3, size, genDigest(1, size)); err == nil {
		t.Fatal("a push with the wrong digest succeeded")
	}
	for _, seed := range []uint64{1, 2} {
		if _, err := tg.pull(ctx, genDigest(seed, size), size); err != nil {
			t.Fatalf("pull of seed %d: %v", seed, err)
		}
	}
	if _, err := tg.pull(ctx, genDigest(1, size), size+1); err == nil {
		t.Fatal("pull accepted a blob of the wrong length")
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cfgDigest, err := tg.pushSmallBlob(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := manifest(cfgDigest, len(cfg), genDigest(1, size), size)
	if err := tg.putManifest(ctx, "latest", m); err != nil {
		t.Fatal(err)
	}
	im := proxyImage{manifestDigest: sha256Digest(m), configDigest: cfgDigest, layerDigest: genDigest(1, size), layerSize: size}
	if _, err := tg.pullTagged(ctx, "latest", im); err != nil {
		t.Fatalf("image pull: %v", err)
	}
	for name, bad := range map[string]proxyImage{
		"manifest digest": {manifestDigest: sha256Digest(cfg), configDigest: cfgDigest, layerDigest: im.layerDigest, layerSize: size},
		"layer length":    {manifestDigest: im.manifestDigest, configDigest: cfgDigest, layerDigest: im.layerDigest, layerSize: size - 1},
		"unknown config":  {manifestDigest: im.manifestDigest, configDigest: genDigest(5, size), layerDigest: im.layerDigest, layerSize: size},
	} {
		if _, err := tg.pullTagged(ctx, "latest", bad); err == nil {
			t.Errorf("image pull accepted a wrong %s", name)
		}
	}
	res := tg.manifestLoad(ctx, "latest", 4, 300*time.Millisecond)
	if res.ok == 0 || res.failed != 0 || res.perSecond() <= 0 || res.percentile(.99) < res.percentile(.5) {
		t.Fatalf("manifest load: ok %d failed %d", res.ok, res.failed)
	}
	if missing := tg.manifestLoad(ctx, "nosuchtag", 2, 100*time.Millisecond); missing.ok != 0 || missing.failed == 0 {
		t.Fatalf("load of a missing tag: ok %d failed %d", missing.ok, missing.failed)
	}
	if err := tg.tagMany(ctx, m, 10); err != nil {
		t.Fatal(err)
	}
	n, d, err := tg.listTags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 11 || d <= 0 {
		t.Fatalf("tags list: %d tags in %v, want 11", n, d)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"1GiB", 1 << 30, false},
		{"256MiB", 256 << 20, false},
		{"64KiB", 64 << 10, false},
		{"2G", 2 << 30, false},
		{"512M", 512 << 20, false},
		{"1000", 1000, false},
		{"0", 0, false},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1MiB", 0, true},
		{"1.5GiB", 0, true},
		{"99999999999999GiB", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSize(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want error %v", err, tc.bad)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1GiB", "16MiB", "0", "-5K", "9223372036854775807", "1e9M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseSize(s); err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-size", "64MiB", "-registries", "v3,gatehouse,v3", "-runs", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{keyV3, keyGatehouse}, o.registries); diff != "" {
		t.Errorf("registries (-want +got):\n%s", diff)
	}
	if o.suite != "core" {
		t.Errorf("default suite %q", o.suite)
	}
	if p, err := parseFlags([]string{"-suite", "proxy"}, io.Discard); err != nil || p.suite != "proxy" {
		t.Errorf("-suite proxy: %q, %v", p.suite, err)
	}
	if p, err := parseFlags([]string{"-suite", "proxy", "-upstream-rate", "125"}, io.Discard); err != nil || p.upstreamRate != 125 {
		t.Errorf("-upstream-rate 125: %v, %v", p.upstreamRate, err)
	}
	if o.upstreamRate != 0 {
		t.Errorf("default -upstream-rate %v, want 0 (no relay)", o.upstreamRate)
	}
	if o.size != 64<<20 || o.chunk != 16<<20 || o.rssSize != 4<<30 || o.tags != 10_000 || o.clients != 32 {
		t.Errorf("options %+v", o)
	}
	for _, args := range [][]string{
		{"-size", "1K"}, {"-size", "32GiB"}, {"-chunk", "1K"}, {"-rss-size", "-1"}, {"-tags", "-1"},
		{"-clients", "0"}, {"-runs", "0"}, {"-d", "0s"}, {"-d", "1h"}, {"-registries", "zot"}, {"extra"}, {"-suite", "mirror"},
		{"-upstream-rate", "-1"}, {"-upstream-rate", "NaN"}, {"-upstream-rate", "fast"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if _, err := parseFlags(args, io.Discard); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestMedianAndSpread(t *testing.T) {
	for _, tc := range []struct {
		in     []float64
		median float64
		spread string
	}{
		{nil, 0, "-"},
		{[]float64{5}, 5, "5"},
		{[]float64{9, 1, 5}, 5, "5 (1-9)"},
		{[]float64{4, 1, 3, 2}, 2.5, "2 (1-4)"},
	} {
		if got := median(tc.in); got != tc.median {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.median)
		}
		if got := spread(tc.in); got != tc.spread {
			t.Errorf("spread(%v) = %q, want %q", tc.in, got, tc.spread)
		}
	}
}

func TestNextLink(t *testing.T) {
	for _, tc := range []struct {
		link, want string
		bad        bool
	}{
		{`</v2/a/tags/list?last=t3&n=3>; rel="next"`, "http://h:1/v2/a/tags/list?last=t3&n=3", false},
		{`<http://h:1/v2/a/tags/list?n=3&last=x>; rel="next"`, "http://h:1/v2/a/tags/list?n=3&last=x", false},
		{`</v2/a/tags/list>; rel="prev"`, "", true},
		{`garbage`, "", true},
		{`>; rel="next"<`, "", true},
	} {
		t.Run(tc.link, func(t *testing.T) {
			got, err := nextLink("http://h:1", tc.link)
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, tc.want, tc.bad)
			}
		})
	}
}

func FuzzNextLink(f *testing.F) {
	for _, s := range []string{`</v2/a/tags/list?n=1&last=a>; rel="next"`, `<>; rel="next"`, `<%zz>; rel="next"`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(_ *testing.T, s string) { _, _ = nextLink("http://127.0.0.1:5000", s) })
}

func TestTargets(t *testing.T) {
	b := &bench{
		o:       options{rssSize: 4 << 30, registries: allKeys},
		ddRates: []float64{100, 300, 200},
		results: map[string]*result{
			keyGatehouse:  {pushMono: []float64{190}, pushChunked: []float64{170}, pull: []float64{1000}, get: []loadResult{{ok: 2600, elapsed: time.Second}}, tagsList: 8 * time.Millisecond},
			keyV2:         {tagsList: 9 * time.Millisecond},
			keyNonDurable: {pushMono: []float64{600}, pushChunked: []float64{500}},
			keyV3:         {pushMono: []float64{400}, pushChunked: []float64{400}, pull: []float64{1000}, get: []loadResult{{ok: 1000, elapsed: time.Second}}},
		},
		rss: 50 << 20,
	}
	var got []string
	for _, r := range b.targets() {
		got = append(got, r.verdict)
	}
	// dd median 200: 190 >= 180 met; chunked 170 < 0.95*190 missed;
	// 600 >= 1.5*400 met, 500 < 2*400 missed; pull 1.0x met; 2600 >=
	// 2500 met; tags 8 <= 9 ms met; 50 MiB met.
	want := []string{"met", "missed", "met", "missed", "met", "met", "met", "met"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	b.rss, b.results = 0, map[string]*result{}
	for _, r := range b.targets() {
		if r.verdict != "not measured" {
			t.Errorf("%s: %s with nothing measured", r.name, r.verdict)
		}
	}
}

func TestProxyTargets(t *testing.T) {
	b := &bench{proxy: &proxyResult{rates: map[string][]float64{
		rowDirect: {1000, 900, 1100},
		rowCold:   {950, 800, 700}, // median 800: 1.25x the time of 1000
		rowWarm:   {1000, 1200},    // median 1100
		rowV3Cold: {500},
	}}}
	var got []string
	for _, r := range b.proxyTargets() {
		got = append(got, r.verdict)
	}
	// warm 1100 >= 1000 met; cold 800 * 1.1 < 1000 missed; v3 lacks a warm figure.
	if diff := cmp.Diff([]string{"met", "missed", "not measured"}, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	b.proxy.rates[rowCold] = []float64{910}
	b.proxy.rates[rowV3Warm] = []float64{900}
	if r := b.proxyTargets(); r[1].verdict != "met" || r[2].verdict != "reported" {
		t.Errorf("cold 910 vs direct 1000 (time 1.099x): %s; v3 with both: %s", r[1].verdict, r[2].verdict)
	}
	b.o.upstreamRate = 125
	if r := b.proxyTargets(); r[0].verdict != "reported" || r[1].verdict != "met" {
		t.Errorf("with a paced upstream: warm %s, want reported; cold %s, want met", r[0].verdict, r[1].verdict)
	}
	b.o.upstreamRate = 0
	b.proxy = nil
	for _, r := range b.proxyTargets() {
		if r.verdict != "not measured" {
			t.Errorf("%s: %s with nothing measured", r.name, r.verdict)
		}
	}
	var out bytes.Buffer
	b.proxy = &proxyResult{rates: map[string][]float64{rowDirect: {1000}, rowCold: {950}}, rss: map[string][]int64{rowCold: {20 << 20}}}
	b.reportProxy(&out)
	for _, want := range []string{"| direct from the upstream (a plain Gatehouse) | 1000 | - |", "| first pull through a Gatehouse cache (cold) | 950 | 20.0 |", "| met |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		keep     bool
		bad      bool
	}{
		{"200 kept alive", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", true, false},
		{"200 then close", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nConnection: close\r\n\r\n", false, false},
		{"404 is an error", "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}", true, true},
		{"no length", "HTTP/1.1 200 OK\r\n\r\nabc", false, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, true},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", false, true},
		{"bad status", "HTTP/2 200\r\n\r\n", false, true},
		{"bad header", "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", false, true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep, err := readResponse(bufio.NewReader(strings.NewReader(tc.in)), make([]byte, 16), false)
			if (err != nil) != tc.bad || (err == nil || tc.keep) && keep != tc.keep {
				t.Errorf("keep %v, err %v; want keep %v, error %v", keep, err, tc.keep, tc.bad)
			}
		})
	}
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("HTTP/1.0 301 Moved\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 2"))
	f.Fuzz(func(_ *testing.T, b []byte) {
		_, _ = readResponse(bufio.NewReader(bytes.NewReader(b)), make([]byte, 8), false)
	})
}

func TestScaleTargets(t *testing.T) {
	b := &bench{
		o: options{registries: allKeys, layers: 50, repos: 10_000},
		scale: map[string]*scaleResult{
			keyGatehouse: {push: []float64{300}, pull: []float64{1000}, catalogPaged: []time.Duration{5 * time.Millisecond},
				catalogOne: []time.Duration{20 * time.Millisecond}, coldStart: []time.Duration{50 * time.Millisecond},
				mixed: []loadResult{{ok: 100, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}}}},
			keyV3: {push: []float64{250}, pull: []float64{500}, mixed: []loadResult{{ok: 50, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}}}},
			keyV2: {catalogPaged: []time.Duration{6 * time.Millisecond}, catalogOne: []time.Duration{10 * time.Millisecond}},
		},
		gcData: gcData{blobs: 100, referenced: 50, bytes: 100e6},
		gcRuns: map[string][]gcRun{
			keyGatehouseGC: {{wall: time.Second, maxRSS: 10 << 20}},
			keyV3GC:        {{wall: 3 * time.Second, maxRSS: 20 << 20}},
			"check":        {{wall: time.Second}},
			"verify":       {{wall: 3 * time.Second}},
			keySha256sum:   {{wall: time.Second}},
		},
	}
	var got []string
	for _, r := range b.scaleTargets() {
		got = append(got, r.verdict)
	}
	// push 1.2x missed, pull 2x met, catalog paged 5 <= 6 met, one request
	// 20 > 10 missed, cold start met, mixed reported, gc 3x faster met,
	// RSS met, check reported, verify adds 2 s > 1 s / 0.8 missed.
	want := []string{"missed", "met", "met", "missed", "met", "reported", "met", "met", "reported", "missed"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	b.scale, b.gcRuns = map[string]*scaleResult{}, map[string][]gcRun{}
	for _, r := range b.scaleTargets() {
		if r.verdict != "not measured" {
			t.Errorf("%s: %s with nothing measured", r.name, r.verdict)
		}
	}
}
