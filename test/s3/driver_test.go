//go:build integration

// Package s3 tests the S3 storage driver and a registry on it against a
// real MinIO server.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/drivertest"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/s3"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/minio/minio-go/v7"
)

// config returns a driver config for m's bucket under root.
func config(m *testenv.MinIO, root string) s3.Config {
	return s3.Config{
		AccessKey:      m.AccessKey,
		SecretKey:      secret.Secret(m.SecretKey),
		Region:         m.Region,
		RegionEndpoint: m.Endpoint(),
		Bucket:         m.Bucket,
		V4Auth:         true,
		ChunkSize:      s3.MinChunkSize,
		RootDirectory:  root,
	}
}

func open(t *testing.T, cfg s3.Config) driver.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return driver.Checked(d)
}

func TestDriverSuite(t *testing.T) {
	m := testenv.StartMinIO(t)
	n := 0
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		n++
		return open(t, config(m, fmt.Sprintf("/suite/%d", n)))
	})
}

// TestDriverSuiteBucketRoot runs the suite with no root directory, so the
// driver's root is the bucket's: each subtest gets its own bucket.
func TestDriverSuiteBucketRoot(t *testing.T) {
	m := testenv.StartMinIO(t)
	n := 0
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		n++
		cfg := config(m, "")
		cfg.Bucket = fmt.Sprintf("root-%d", n)
		m.NewBucket(t, cfg.Bucket)
		return open(t, cfg)
	})
}

func TestListMoreThan1000(t *testing.T) {
	m := testenv.StartMinIO(t)
	d := open(t, config(m, "/many"))
	ctx := context.Background()
	const n = 1234
	// Write the keys directly: 1,234 PutContent calls through the driver
	// would test nothing more.
	client := m.Client(t)
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := client.PutObject(ctx, m.Bucket, fmt.Sprintf("many/dir/f%05d", i), bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.List(ctx, "/dir")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[0] != "/dir/f00000" || got[n-1] != fmt.Sprintf("/dir/f%05d", n-1) {
		t.Fatalf("List: %d entries (%v ... %v), want %d", len(got), got[:min(2, len(got))], got[max(0, len(got)-2):], n)
	}
	walked := 0
	if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			walked++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if walked != n {
		t.Errorf("Walk saw %d files, want %d", walked, n)
	}
	if err := d.Delete(ctx, "/dir"); err != nil {
		t.Fatal(err)
	}
	left := 0
	for oi := range client.ListObjectsIter(ctx, m.Bucket, minio.ListObjectsOptions{Prefix: "many/", Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		left++
	}
	if left != 0 {
		t.Errorf("%d keys left after Delete of the directory", left)
	}
}

// TestResumeFromAnotherInstance writes part of a file with one driver and
// finishes it with another, as a second replica or a restarted registry
// would: the writer's state is all in the bucket.
func TestResumeFromAnotherInstance(t *testing.T) {
	m := testenv.StartMinIO(t)
	cfg := config(m, "/resume")
	a, b := open(t, cfg), open(t, cfg)
	ctx := context.Background()
	// More than a chunk, so that both stored segments and a tail exist.
	first := bytes.Repeat([]byte("0123456789abcdef"), (s3.MinChunkSize+12345)/16)
	second := bytes.Repeat([]byte("ZYX"), 3<<20)
	w, err := a.Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(first); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := b.Stat(ctx, "/up/data")
	if err != nil || fi.Size() != int64(len(first)) || fi.IsDir() {
		t.Fatalf("Stat of the unfinished file from the other instance: %v, %v", fi, err)
	}
	if got, err := b.GetContent(ctx, "/up/data"); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("reading the unfinished file from the other instance: %d bytes, %v", len(got), err)
	}
	// A read from inside the second segment.
	off := int64(len(first) - 10)
	rc, err := b.Reader(ctx, "/up/data", off)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || !bytes.Equal(tail, first[off:]) {
		t.Fatalf("Reader at %d of the unfinished file: %q, %v", off, tail, err)
	}
	if ls, err := b.List(ctx, "/up"); err != nil || len(ls) != 1 || ls[0] != "/up/data" {
		t.Fatalf("List shows %v, %v; want the unfinished file", ls, err)
	}
	w, err = b.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(first)) {
		t.Fatalf("resumed Size = %d, want %d", w.Size(), len(first))
	}
	if _, err := w.Write(second); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, first...), second...)
	got, err := a.GetContent(ctx, "/up/data")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("committed content: %d bytes (want %d), %v", len(got), len(want), err)
	}
	// Nothing but the object is left.
	var keys []string
	for oi := range m.Client(t).ListObjectsIter(ctx, m.Bucket, minio.ListObjectsOptions{Prefix: "resume/", Recursive: true}) {
		keys = append(keys, oi.Key)
	}
	if len(keys) != 1 || keys[0] != "resume/up/data" {
		t.Errorf("keys after commit: %v", keys)
	}
}

func TestRedirectURL(t *testing.T) {
	m := testenv.StartMinIO(t)
	d := open(t, config(m, "/redirect"))
	ctx := context.Background()
	content := []byte("layer bytes served by S3 directly")
	if err := d.PutContent(ctx, "/blob/data", content); err != nil {
		t.Fatal(err)
	}
	rd, ok := d.(driver.Redirector)
	if !ok {
		t.Fatal("the s3 driver is not a driver.Redirector")
	}
	req := httptest.NewRequest(http.MethodGet, "/v2/x/blobs/sha256:0", nil)
	u, err := rd.RedirectURL(req, "/blob/data")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, m.Endpoint()+"/"+m.Bucket+"/redirect/blob/data?") || !strings.Contains(u, "X-Amz-Expires=1200") {
		t.Errorf("URL %s: want a presigned URL of the object valid 20 minutes", u)
	}
	resp, err := http.Get(u) //nolint:gosec,noctx // the URL under test
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
		t.Errorf("GET presigned URL: %s %q", resp.Status, body)
	}

	// With redirectendpoint the URL points at that host.
	cfg := config(m, "/redirect")
	cfg.RedirectEndpoint = "https://cdn.example.com"
	u, err = open(t, cfg).(driver.Redirector).RedirectURL(req, "/blob/data")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "https://cdn.example.com/") {
		t.Errorf("URL with redirectendpoint: %s", u)
	}
	// Only GET and HEAD are redirected.
	if u, err := rd.RedirectURL(httptest.NewRequest(http.MethodPut, "/", nil), "/blob/data"); u != "" || err != nil {
		t.Errorf("PUT: %q, %v", u, err)
	}
}

func TestStartErrors(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	wrongSecret := "definitely-not-the-secret"
	tests := []struct {
		name string
		mod  func(*s3.Config)
		want []string
	}{
		{"wrong secret", func(c *s3.Config) { c.SecretKey = secret.Secret(wrongSecret) }, []string{m.Endpoint(), `"registry"`, "access refused", "secretkey"}},
		{"unknown access key", func(c *s3.Config) { c.AccessKey = "nobody" }, []string{m.Endpoint(), `"registry"`, "access refused"}},
		{"missing bucket", func(c *s3.Config) { c.Bucket = "no-such-bucket" }, []string{m.Endpoint(), `"no-such-bucket"`, "does not exist"}},
		{"nothing listening", func(c *s3.Config) {
			c.RegionEndpoint = fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
		}, []string{"http://127.0.0.1:", `"registry"`, "refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(m, "")
			tt.mod(&cfg)
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := s3.New(cctx, cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			for _, s := range []string{m.SecretKey, wrongSecret} {
				if strings.Contains(msg, s) {
					t.Errorf("error %q shows the secret", msg)
				}
			}
		})
	}
}

// TestCancel checks that a cancelled context stops calls in flight.
func TestCancel(t *testing.T) {
	t.Run("minio", func(t *testing.T) {
		m := testenv.StartMinIO(t)
		d := open(t, config(m, "/cancel"))
		ctx, cancel := context.WithCancel(context.Background())
		big := make([]byte, 64<<20)
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		err := d.PutContent(ctx, "/big", big)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PutContent with a cancelled context: %v, want context.Canceled", err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("PutContent returned %s after cancel", el)
		}
	})
	// A server that answers the start-up check and then stalls every
	// request: cancelling must end the call, and without a cancel the
	// response header timeout must.
	t.Run("stalled server", func(t *testing.T) {
		release := make(chan struct{})
		var stalled atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead && strings.TrimSuffix(r.URL.Path, "/") == "/bucket" {
				return // the bucket exists
			}
			stalled.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); srv.Close() })
		cfg := s3.Config{
			AccessKey: "a", SecretKey: "secret-key", Region: "us-east-1", Bucket: "bucket",
			RegionEndpoint: srv.URL, V4Auth: true, ForcePathStyle: true,
			Timeouts: s3.Timeouts{ResponseHeader: 2 * time.Second},
		}
		d := open(t, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := d.GetContent(ctx, "/some/file")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("GetContent on a stalled server after cancel: %v, want context.Canceled", err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("GetContent took %s after a cancel at 100ms", el)
		}
		start = time.Now()
		_, err = d.Stat(context.Background(), "/some/file")
		var ne net.Error
		timedOut := err != nil && (errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "timeout"))
		if !timedOut {
			t.Errorf("Stat on a stalled server: %v, want a timeout", err)
		}
		// Retries (3) each wait for the header timeout.
		if el := time.Since(start); el > 30*time.Second {
			t.Errorf("Stat took %s on a stalled server with a 2s header timeout", el)
		}
		if stalled.Load() == 0 {
			t.Error("the stalled server saw no request")
		}
	})
}
