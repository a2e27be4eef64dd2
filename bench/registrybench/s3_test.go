package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
)

func TestParseFlagsS3(t *testing.T) {
	o, err := parseFlags([]string{"-suite", "s3", "-registries", "v2,v3,gatehouse-nondurable"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.suite != "s3" {
		t.Errorf("suite %q", o.suite)
	}
	if diff := cmp.Diff([]string{keyV3}, s3Keys(o.registries)); diff != "" {
		t.Errorf("s3 registries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{keyGatehouse, keyV3}, s3Keys(allKeys)); diff != "" {
		t.Errorf("s3 registries of the default (-want +got):\n%s", diff)
	}
	// Neither registry the suite compares: nothing to run.
	if _, err := parseFlags([]string{"-suite", "s3", "-registries", "v2,gatehouse-nondurable"}, io.Discard); err == nil {
		t.Error("-suite s3 without gatehouse and v3: want an error")
	}
	// Other suites don't care.
	if _, err := parseFlags([]string{"-suite", "core", "-registries", "v2"}, io.Discard); err != nil {
		t.Errorf("-suite core -registries v2: %v", err)
	}
}

// TestS3Config checks that the storage and redis sections the suite gives
// Gatehouse are a config Gatehouse accepts, with what the rows need.
func TestS3Config(t *testing.T) {
	m := &benchenv.MinIO{Addr: "127.0.0.1:9000", AccessKey: "ak", SecretKey: "sk", Region: s3Region}
	for _, tc := range []struct {
		cache    string
		redirect bool
	}{{"redis", false}, {"inmemory", true}} {
		t.Run(tc.cache, func(t *testing.T) {
			y := "version: 0.1\nstorage:\n" + s3StorageYAML(m, s3Bucket(keyGatehouse), s3Root, tc.cache, tc.redirect) + "http:\n  addr: 127.0.0.1:5000\n"
			if tc.cache == "redis" {
				y += redisYAML("127.0.0.1:6379")
			}
			cfg, err := regconfig.Parse("bench.yml", []byte(y), nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, y)
			}
			s := cfg.Storage
			if s.S3 == nil || s.S3.Bucket != "bench-gatehouse" || s.S3.RegionEndpoint != "http://127.0.0.1:9000" || s.S3.RootDirectory != s3Root || !s.S3.ForcePathStyle {
				t.Errorf("s3 %+v", s.S3)
			}
			if s.Cache.BlobDescriptor != tc.cache || s.Redirect.Disable == tc.redirect || !s.Delete.Enabled {
				t.Errorf("cache %q, redirect.disable %v, delete %v", s.Cache.BlobDescriptor, s.Redirect.Disable, s.Delete.Enabled)
			}
			if cfg.Storage.Maintenance.UploadPurging.Enabled == nil || *cfg.Storage.Maintenance.UploadPurging.Enabled {
				t.Error("upload purging not turned off")
			}
		})
	}
}

func TestCheckRedirect(t *testing.T) {
	const minio = "127.0.0.1:9000"
	// resp builds an answer without a body (nothing to close).
	resp := func(code int, loc string) http.Response {
		h := http.Header{}
		if loc != "" {
			h.Set("Location", loc)
		}
		return http.Response{StatusCode: code, Status: http.StatusText(code), Header: h, Body: http.NoBody}
	}
	for _, tc := range []struct {
		name string
		code int
		loc  string
		want string // "" = an error
	}{
		{"to MinIO", 307, "http://127.0.0.1:9000/b/k?X-Amz-Signature=s", "http://127.0.0.1:9000/b/k?X-Amz-Signature=s"},
		{"no redirect", 200, "", ""},
		{"302", 302, "http://127.0.0.1:9000/b/k", ""},
		{"elsewhere", 307, "http://127.0.0.1:5000/b/k?X-Amz-Signature=s", ""},
		{"relative", 307, "/b/k", ""},
		{"https", 307, "https://127.0.0.1:9000/b/k", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := resp(tc.code, tc.loc)
			got, err := checkRedirect(&r, minio)
			if (err != nil) != (tc.want == "") || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "Signature") {
				t.Errorf("error shows the signature: %v", err)
			}
		})
	}
	if got := redactQuery("http://h/b/k?X-Amz-Signature=abc"); got != "http://h/b/k?..." {
		t.Errorf("redactQuery: %q", got)
	}
	r := resp(307, "http://h/k?sig=1")
	if got := redirectNote(&r); !strings.Contains(got, "http://h/k?...") || strings.Contains(got, "sig=1") {
		t.Errorf("redirectNote: %q", got)
	}
	r = resp(404, "")
	if got := redirectNote(&r); got != "" {
		t.Errorf("redirectNote of a 404: %q", got)
	}
}

func TestPerPushed(t *testing.T) {
	cs := []benchenv.MinIOCounters{{Received: 110, WChar: 301, Sent: 1}, {Received: 100, WChar: 200}, {Received: 105, WChar: 320, Sent: 10}}
	if got := perPushed(cs, 100); got != "1.05 / 3.00" {
		t.Errorf("perPushed %q", got)
	}
	if got := perPushed(nil, 100); got != "-" {
		t.Errorf("perPushed of nothing %q", got)
	}
}

func TestS3Targets(t *testing.T) {
	b := &bench{
		o: options{size: 1 << 30, chunk: 16 << 20, rssSize: 4 << 30, layers: 50, registries: allKeys},
		s3: map[string]*s3Result{
			keyGatehouse: {
				pushMono: []float64{160}, pushChunked: []float64{140}, imagePush: []float64{90},
				pull: []float64{1000}, imagePull: []float64{700},
				pullRedirect: []float64{1073.741824}, toRedirect: []time.Duration{5 * time.Millisecond}, // 1 s pull, 0.5%
				getRedis: []loadResult{{ok: 2600, elapsed: time.Second}}, getPlain: []loadResult{{ok: 900, elapsed: time.Second}},
			},
			keyV3: {
				pushMono: []float64{100}, pushChunked: []float64{100}, imagePush: []float64{100},
				pull: []float64{1001}, imagePull: []float64{500},
				getRedis: []loadResult{{ok: 1000, elapsed: time.Second}}, getPlain: []loadResult{{ok: 1000, elapsed: time.Second}},
			},
		},
		s3RSS: 60 << 20,
	}
	var got []string
	for _, r := range b.s3Targets() {
		got = append(got, r.verdict)
	}
	// 160 >= 150 met; 140 < 150 missed; 90 < 150 missed; 1000 < 1001
	// missed; 700 >= 500 met; 5 ms <= 10 ms met; 2600 >= 2500 met; in-memory
	// reported; 60 MiB met; bytes per pushed byte not measured.
	want := []string{"met", "missed", "missed", "missed", "met", "met", "met", "reported", "met", "not measured"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	b.s3[keyGatehouse].toRedirect = []time.Duration{20 * time.Millisecond}
	if r := b.s3Targets()[5]; r.verdict != "missed" {
		t.Errorf("a 307 of 2%% of the pull: %s (%s)", r.verdict, r.measured)
	}
	b.s3, b.s3RSS = map[string]*s3Result{}, 0
	for _, r := range b.s3Targets() {
		if r.verdict != "not measured" {
			t.Errorf("%s: %s with nothing measured", r.name, r.verdict)
		}
	}
}
