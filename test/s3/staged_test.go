//go:build integration

package s3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/s3"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/minio/minio-go/v7"
)

// multipartUploads lists the keys of the bucket's unfinished multipart
// uploads with prefix (filtered here: MinIO lists a prefix only when it is
// a whole key).
func multipartUploads(t *testing.T, m *testenv.MinIO, prefix string) []string {
	t.Helper()
	res, err := minio.Core{Client: m.Client(t)}.ListMultipartUploads(context.Background(), m.Bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range res.Uploads {
		if strings.HasPrefix(u.Key, prefix) {
			keys = append(keys, u.Key)
		}
	}
	return keys
}

// minioWrites returns the bytes MinIO has passed to write calls so far
// (its wchar: files and sockets alike).
func minioWrites(t *testing.T, m *testenv.MinIO) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", m.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no wchar in MinIO's /proc io: %q", b)
	return 0
}

// TestMonolithicStaged: a blob sent whole with its digest goes straight
// to its path in the bucket as a multipart upload that is completed only
// once the digest matched. A wrong digest or a body cut short leaves no
// object and no multipart upload behind, and the registry goes on.
func TestMonolithicStaged(t *testing.T) {
	m := testenv.StartMinIO(t)
	g := startRegistry(t, testenv.RegistryGatehouse, m, "/staged")
	base := "http://" + g.Addr + "/v2/staged/repo/blobs/"
	blob := make([]byte, 12<<20+321) // three parts of 5 MiB chunks
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	blobKey := "staged/docker/registry/v2/blobs/sha256/" + dgst[7:9] + "/" + dgst[7:] + "/data"
	ctx := context.Background()
	leftovers := func(t *testing.T) {
		t.Helper()
		for _, k := range multipartUploads(t, m, "staged/") {
			t.Errorf("multipart upload left behind: %s", k)
		}
		for _, k := range keysUnder(t, m, "staged/docker/registry/v2/blobs/") {
			if k != blobKey {
				t.Errorf("unexpected blob key: %s", k)
			}
		}
	}
	post := func(t *testing.T, digest string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"uploads/?digest="+digest, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	stat := func() error {
		_, err := m.Client(t).StatObject(ctx, m.Bucket, blobKey, minio.StatObjectOptions{})
		return err
	}

	t.Run("wrong digest", func(t *testing.T) {
		wrong := "sha256:" + strings.Repeat("0", 64)
		code, body := post(t, wrong, blob)
		if code != http.StatusBadRequest || !strings.Contains(body, "DIGEST_INVALID") {
			t.Fatalf("POST with a wrong digest: %d %s, want 400 DIGEST_INVALID", code, body)
		}
		if err := stat(); err == nil {
			t.Error("the blob's object exists after a wrong digest")
		}
		leftovers(t)
	})
	t.Run("body cut short", func(t *testing.T) {
		c, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v2/staged/repo/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", dgst, g.Addr, len(blob))
		if _, err := c.Write(blob[:len(blob)-1000]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		_ = c.Close()
		// The abort follows the server noticing the closed connection.
		deadline := time.Now().Add(10 * time.Second)
		for len(multipartUploads(t, m, "staged/")) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if err := stat(); err == nil {
			t.Error("the blob's object exists after a body cut short")
		}
		leftovers(t)
	})
	t.Run("whole", func(t *testing.T) {
		// MinIO writes the blob's bytes once (the parts, joined by the
		// completion without a copy); then, for the same blob again,
		// not at all.
		for i, most := range []int{len(blob) + len(blob)/4, 1 << 20} {
			before := minioWrites(t, m)
			if code, body := post(t, dgst, blob); code != http.StatusCreated {
				t.Fatalf("POST %d: %d %s", i+1, code, body)
			}
			if w := minioWrites(t, m) - before; w > int64(most) {
				t.Errorf("POST %d of %d bytes: MinIO wrote %d bytes, want at most %d", i+1, len(blob), w, most)
			}
		}
		resp, err := http.Get(base + dgst)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, blob) {
			t.Fatalf("GET: %s, %d bytes, %v", resp.Status, len(got), err)
		}
		if err := stat(); err != nil {
			t.Errorf("the blob's object: %v", err)
		}
		leftovers(t)
		if keys := keysUnder(t, m, "staged/docker/registry/v2/repositories/staged/repo/_uploads/"); len(keys) != 0 {
			t.Errorf("upload state left behind: %v", keys)
		}
	})
	t.Run("sha512", func(t *testing.T) {
		small := blob[:6<<20]
		s := sha512.Sum512(small)
		if code, body := post(t, "sha512:"+hex.EncodeToString(s[:]), small); code != http.StatusCreated {
			t.Fatalf("POST sha512: %d %s", code, body)
		}
	})
}

// TestPurgeStaged: upload purging aborts the multipart uploads a crash
// left under the root directory once they are old enough, and leaves
// younger ones and those outside the root alone.
func TestPurgeStaged(t *testing.T) {
	m := testenv.StartMinIO(t)
	d := open(t, config(m, "/purge"))
	ctx := context.Background()
	core := minio.Core{Client: m.Client(t)}
	// A staged write cut short after its first part, as a crash leaves it.
	w, err := d.(driver.Stager).StagedWriter(ctx, "/docker/registry/v2/blobs/sha256/xx/x/data", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, s3.MinChunkSize+1)); err != nil {
		t.Fatal(err)
	}
	// Under the root directory but not the registry's tree.
	if _, err := core.NewMultipartUpload(ctx, m.Bucket, "purge/elsewhere/data", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	pending := func() []string { return multipartUploads(t, m, "") }
	if got := pending(); len(got) != 2 {
		t.Fatalf("multipart uploads before the purge: %v, want 2", got)
	}
	for _, c := range []struct {
		age    time.Duration
		dryRun bool
		staged int
		left   int
	}{
		{time.Hour, false, 0, 2},  // too young
		{-time.Hour, true, 1, 2},  // a dry run counts it
		{-time.Hour, false, 1, 1}, // removed
		{-time.Hour, false, 0, 1}, // nothing more
	} {
		res, err := storage.PurgeUploads(ctx, d, c.age, c.dryRun)
		if err != nil || res.Staged != c.staged {
			t.Fatalf("PurgeUploads(%s, dry run %v) = %+v, %v; want %d staged writes", c.age, c.dryRun, res, err, c.staged)
		}
		if got := pending(); len(got) != c.left {
			t.Fatalf("after PurgeUploads(%s, dry run %v): %v, want %d left", c.age, c.dryRun, got, c.left)
		}
	}
	if got := pending(); got[0] != "purge/elsewhere/data" {
		t.Errorf("the upload outside the root directory: %v", got)
	}
}

// TestStagedWriter drives the S3 staged writer directly: a body of
// unknown size is buffered into chunksize parts; one of known size is
// streamed in parts of multipartcopychunksize (32 MiB); a streamed body
// shorter or longer than announced fails and leaves nothing; so does a
// cancel.
func TestStagedWriter(t *testing.T) {
	m := testenv.StartMinIO(t)
	d := open(t, config(m, "/stagedw"))
	st := d.(driver.Stager)
	ctx := context.Background()
	content := make([]byte, 40<<20+17)
	for i := range content {
		content[i] = byte(i*7 + i>>19)
	}
	// write feeds b in pieces of odd sizes, as a copy loop would.
	write := func(w driver.FileWriter, b []byte) error {
		for len(b) > 0 {
			k := min(len(b), 1<<20+333)
			if _, err := w.Write(b[:k]); err != nil {
				return err
			}
			b = b[k:]
		}
		return nil
	}
	for _, c := range []struct {
		name  string
		size  int64
		parts string // the ETag's suffix: the number of parts
	}{
		{"unknown size", -1, "-9"}, // 5 MiB chunks
		{"known size", int64(len(content)), "-2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := "/blob/" + strings.ReplaceAll(c.name, " ", "-")
			w, err := st.StagedWriter(ctx, p, c.size)
			if err != nil {
				t.Fatal(err)
			}
			if err := write(w, content); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Stat(ctx, p); !driver.IsNotFound(err) {
				t.Fatalf("the file is visible before Commit: %v", err)
			}
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := d.GetContent(ctx, p); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("content: %d bytes (want %d), %v", len(got), len(content), err)
			}
			oi, err := m.Client(t).StatObject(ctx, m.Bucket, "stagedw"+p, minio.StatObjectOptions{})
			if err != nil || !strings.HasSuffix(oi.ETag, c.parts) {
				t.Errorf("ETag %q, %v: want %s parts", oi.ETag, err, c.parts)
			}
		})
	}
	for _, c := range []struct {
		name    string
		written int
		cancel  bool
	}{
		{"shorter than announced", len(content) - 5, false},
		{"longer than announced", len(content) + 5, false},
		{"cancelled mid-part", 20 << 20, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := "/bad/" + strings.ReplaceAll(c.name, " ", "-")
			w, err := st.StagedWriter(ctx, p, int64(len(content)))
			if err != nil {
				t.Fatal(err)
			}
			body := append(append([]byte{}, content...), "extra"...)[:c.written]
			werr := write(w, body)
			var cerr error
			if c.cancel {
				cerr = w.Cancel(ctx)
			} else {
				cerr = w.Commit(ctx)
				if werr == nil && cerr == nil {
					t.Fatalf("%d bytes of %d announced: Write and Commit succeeded", c.written, len(content))
				}
				_ = w.Cancel(ctx)
			}
			if c.cancel && (werr != nil || cerr != nil) {
				t.Fatalf("Write %v, Cancel %v", werr, cerr)
			}
			if _, err := d.Stat(ctx, p); !driver.IsNotFound(err) {
				t.Errorf("the file exists: %v", err)
			}
			if left := multipartUploads(t, m, "stagedw/bad/"); len(left) != 0 {
				t.Errorf("multipart uploads left: %v", left)
			}
		})
	}
}

// TestMonolithicStorageDown: MinIO stops while a blob sent whole streams
// in, below one chunk (the object is put at the end) and above (parts
// are sent as it comes). The client gets 503 with a Retry-After, as for
// a chunked push, not a 500.
func TestMonolithicStorageDown(t *testing.T) {
	m := testenv.StartMinIO(t)
	g := startRegistry(t, testenv.RegistryGatehouse, m, "/down")
	for _, size := range []int{1 << 20, 12 << 20} {
		blob := make([]byte, size)
		if _, err := rand.Read(blob); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(blob)
		dgst := "sha256:" + hex.EncodeToString(sum[:])
		c, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v2/down/repo/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", dgst, g.Addr, len(blob))
		if _, err := c.Write(blob[:len(blob)/3]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the upload is created
		m.Stop()
		// The answer may come before the rest is sent (the registry
		// stops reading when S3 fails): write it on the side.
		go func() { _, _ = c.Write(blob[len(blob)/3:]) }()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%d bytes: reading the answer: %v", size, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		_ = c.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%d bytes with MinIO stopped mid-body: %s (Retry-After %q) %s; want 503 with a Retry-After",
				size, resp.Status, resp.Header.Get("Retry-After"), body)
		}
		m.Restart()
	}
}
