//go:build integration

package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/s3"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/minio/minio-go/v7"
)

// countingRelay forwards TCP connections to addr and counts the bytes
// sent each way, so a test can tell how much a call moved through the
// registry rather than inside S3.
type countingRelay struct {
	ln       net.Listener
	up, down atomic.Int64 // to the server, from the server
	// cut, when above 0, breaks every connection once more than cut
	// bytes went to the server (and each new one at once).
	cut atomic.Int64
	// slow, when set, sends to the server at most 64 KiB every 2 ms
	// (about 30 MB/s), so that a chunk stays in flight a while.
	slow atomic.Bool
	wg   sync.WaitGroup
}

func startCountingRelay(t *testing.T, addr string) *countingRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &countingRelay{ln: ln}
	t.Cleanup(func() { _ = ln.Close(); r.wg.Wait() })
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				_ = c.Close()
				continue
			}
			pipe := func(dst, src net.Conn, n *atomic.Int64) {
				_, _ = io.Copy(countWriter{dst, n, r}, src)
				_ = dst.Close()
				_ = src.Close()
			}
			r.wg.Go(func() { pipe(s, c, &r.up) })
			r.wg.Go(func() { pipe(c, s, &r.down) })
		}
	})
	return r
}

// countWriter counts what it passes on as it goes (connections are kept
// alive between calls, so counting at their end would be too late).
type countWriter struct {
	w io.Writer
	n *atomic.Int64
	r *countingRelay
}

func (c countWriter) Write(p []byte) (int, error) {
	if cut := c.r.cut.Load(); cut > 0 && c.n == &c.r.up && c.n.Load()+int64(len(p)) > cut {
		return 0, errors.New("cut")
	}
	if c.n == &c.r.up && c.r.slow.Load() {
		done := 0
		for done < len(p) {
			time.Sleep(2 * time.Millisecond)
			k, err := c.w.Write(p[done:min(len(p), done+64<<10)])
			done += k
			c.n.Add(int64(k))
			if err != nil {
				return done, err
			}
		}
		return done, nil
	}
	k, err := c.w.Write(p)
	c.n.Add(int64(k))
	return k, err
}

// throughRelay opens two drivers on m's bucket under root: d through a
// new counting relay (its config changed by tweak first, when not nil)
// and direct, straight to MinIO.
func throughRelay(t *testing.T, m *testenv.MinIO, root string, tweak func(*s3.Config)) (d, direct driver.Driver, relay *countingRelay) {
	t.Helper()
	relay = startCountingRelay(t, m.Addr)
	cfg := config(m, root)
	direct = open(t, cfg)
	cfg.RegionEndpoint = "http://" + relay.ln.Addr().String()
	if tweak != nil {
		tweak(&cfg)
	}
	return open(t, cfg), direct, relay
}

func (r *countingRelay) reset() { r.up.Store(0); r.down.Store(0) }

// writeClosed writes content to p with a new writer and closes it (what
// an upload's PATCH leaves: every byte stored as segments).
func writeClosed(t *testing.T, d driver.Driver, p string, content []byte) {
	t.Helper()
	w, err := d.Writer(context.Background(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// keysUnder lists the bucket's keys with prefix.
func keysUnder(t *testing.T, m *testenv.MinIO, prefix string) []string {
	t.Helper()
	var keys []string
	for oi := range m.Client(t).ListObjectsIter(context.Background(), m.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		keys = append(keys, oi.Key)
	}
	return keys
}

// TestCommitTo commits files of every shape straight to another path:
// the content arrives whole, nothing is left at the source, and the
// stored bytes are copied inside S3, not sent again.
func TestCommitTo(t *testing.T) {
	m := testenv.StartMinIO(t)
	d, _, relay := throughRelay(t, m, "/commitTo", nil)
	ctx := context.Background()
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + i/4093)
		}
		return b
	}
	const chunk = s3.MinChunkSize
	cases := []struct {
		name string
		size int
		more int // bytes written after reopening, not stored before the commit
	}{
		{"empty", 0, 0},
		{"short", 3<<20 + 5, 0},
		{"one chunk exactly", chunk, 0},
		{"chunks and a tail", 2*chunk + 1<<20, 0},
		{"chunks and no tail", 2 * chunk, 0},
		{"short, more in memory", 1000, 2000},
		{"chunks, more in memory", chunk + 10, chunk},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, dst := "/up/"+strings.Repeat("x", i+1)+"/data", "/blobs/"+strings.Repeat("y", i+1)+"/data"
			content := pattern(c.size + c.more)
			writeClosed(t, d, src, content[:c.size])
			relay.reset()
			w, err := d.Writer(ctx, src, true)
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != int64(c.size) {
				t.Fatalf("reopened Size = %d, want %d", w.Size(), c.size)
			}
			if c.more > 0 {
				if _, err := w.Write(content[c.size:]); err != nil {
					t.Fatal(err)
				}
			}
			tc, ok := w.(driver.TargetCommitter)
			if !ok {
				t.Fatal("the S3 writer does not implement driver.TargetCommitter")
			}
			if err := tc.CommitTo(ctx, dst); err != nil {
				t.Fatal(err)
			}
			up, down := relay.up.Load(), relay.down.Load()
			// Requests and answers are a few KiB; a stored segment sent
			// again or read back would be megabytes. Bytes written after
			// reopening are sent once (with a short tail read back to
			// join them when it is under a chunk).
			limit := int64(256<<10) + int64(c.more)
			if c.more > 0 && c.size%chunk != 0 {
				limit += int64(c.size % chunk)
			}
			if up > limit || down > limit {
				t.Errorf("commit moved %d bytes to S3 and %d from it; want at most %d each way", up, down, limit)
			}
			got, err := d.GetContent(ctx, dst)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("content at the destination: %d bytes (want %d), %v", len(got), len(content), err)
			}
			if _, err := d.Stat(ctx, src); !driver.IsNotFound(err) {
				t.Errorf("Stat of the source after CommitTo: %v, want not found", err)
			}
			if keys := keysUnder(t, m, "commitTo/up/"); len(keys) != 0 {
				t.Errorf("keys left at the source: %v", keys)
			}
		})
	}
}

// TestCommitToChanged: a writer opened to commit, then another process
// appends to the same file (growing the stored tail): the commit must
// not move bytes it never measured.
func TestCommitToChanged(t *testing.T) {
	m := testenv.StartMinIO(t)
	cfg := config(m, "/changed")
	a, b := open(t, cfg), open(t, cfg)
	ctx := context.Background()
	for _, first := range []int{1000, s3.MinChunkSize + 1000} {
		src, dst := "/up/data", "/blob/data"
		writeClosed(t, a, src, bytes.Repeat([]byte{'a'}, first))
		w, err := a.Writer(ctx, src, true)
		if err != nil {
			t.Fatal(err)
		}
		// The other process grows the tail under the same key.
		w2, err := b.Writer(ctx, src, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w2.Write([]byte("more")); err != nil {
			t.Fatal(err)
		}
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
		err = w.(driver.TargetCommitter).CommitTo(ctx, dst)
		if !errors.Is(err, driver.ErrChanged) {
			t.Fatalf("CommitTo after another writer grew the file from %d bytes: %v, want driver.ErrChanged", first, err)
		}
		if _, err := a.Stat(ctx, dst); !driver.IsNotFound(err) {
			t.Fatalf("the destination exists after a refused commit: %v", err)
		}
		fi, err := a.Stat(ctx, src)
		if err != nil || fi.Size() != int64(first+4) {
			t.Fatalf("the source after a refused commit: %v, %v; want %d bytes kept", fi, err, first+4)
		}
		if err := a.Delete(ctx, "/up"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResumeAfterLongTail: a request that ends with a tail of 5 MiB or
// more (below chunksize) leaves it as a segment of its own; the next
// request starts a new segment instead of reading the tail back and
// sending it again, and the commit composes segments of uneven sizes.
func TestResumeAfterLongTail(t *testing.T) {
	m := testenv.StartMinIO(t)
	d, _, relay := throughRelay(t, m, "/longtail", func(c *s3.Config) {
		c.ChunkSize = 8 << 20
	})
	ctx := context.Background()
	const part = 6 << 20 // each request's bytes: one tail of 6 MiB
	content := make([]byte, 3*part)
	for i := range content {
		content[i] = byte(i ^ i>>11)
	}
	writeClosed(t, d, "/up/data", content[:part])
	for i := 1; i < 3; i++ {
		relay.reset()
		w, err := d.Writer(ctx, "/up/data", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(content[i*part : (i+1)*part]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if up, down := relay.up.Load(), relay.down.Load(); up > part+256<<10 || down > 256<<10 {
			t.Errorf("request %d sent %d bytes to S3 and read %d back; want %d and nothing of the stored tail", i+1, up, down, part)
		}
	}
	want := []string{"longtail/up/data~/00000000000000000000", "longtail/up/data~/00000000000006291456", "longtail/up/data~/00000000000012582912"}
	if keys := keysUnder(t, m, "longtail/up/"); strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("segments: %v, want %v", keys, want)
	}
	if got, err := d.GetContent(ctx, "/up/data"); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("reading the unfinished file: %d bytes, %v", len(got), err)
	}
	w, err := d.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.(driver.TargetCommitter).CommitTo(ctx, "/blob/data"); err != nil {
		t.Fatal(err)
	}
	if got, err := d.GetContent(ctx, "/blob/data"); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("committed content: %d bytes (want %d), %v", len(got), len(content), err)
	}
}

// TestBackgroundStoreFails: S3 goes away while a chunk is being stored in
// the background. The writer fails (on a later Write or on Close), keeps
// no bytes after the failed chunk, and what is stored is a prefix of what
// was written, which a new writer resumes.
func TestBackgroundStoreFails(t *testing.T) {
	m := testenv.StartMinIO(t)
	d, direct, relay := throughRelay(t, m, "/bgfail", func(c *s3.Config) {
		c.Timeouts.ResponseHeader = 5 * time.Second
	})
	ctx := context.Background()
	const chunk = s3.MinChunkSize
	content := make([]byte, 4*chunk+100)
	for i := range content {
		content[i] = byte(i*13 + i>>16)
	}
	relay.cut.Store(int64(chunk + chunk/2)) // inside the second chunk's PUT
	w, err := d.Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write(content)
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("Write and Close both succeeded through a cut connection")
	}
	relay.cut.Store(0)
	fi, err := direct.Stat(ctx, "/up/data")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != chunk || w.Size() != chunk {
		t.Fatalf("stored %d bytes, the failed writer's Size %d; want the first chunk (%d) in both", fi.Size(), w.Size(), chunk)
	}
	w, err = direct.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content[chunk:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := direct.GetContent(ctx, "/up/data"); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("content after resuming: %d bytes (want %d), %v", len(got), len(content), err)
	}
}

// TestResumeTailGrownElsewhere: a writer resumes from a short tail, then
// another process grows that tail before the writer's first Write. The
// Write must fail (the tail is not the one listed), and Close must then
// store nothing and report the size that is stored, not the tail it read
// back on top of it.
func TestResumeTailGrownElsewhere(t *testing.T) {
	m := testenv.StartMinIO(t)
	cfg := config(m, "/grown")
	a, b := open(t, cfg), open(t, cfg)
	ctx := context.Background()
	writeClosed(t, a, "/up/data", bytes.Repeat([]byte{'a'}, 1000))
	w, err := a.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := b.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write over a tail another process grew succeeded")
	}
	_ = w.Close()
	if w.Size() > 1004 {
		t.Errorf("Size of the failed writer: %d; more than the 1004 bytes stored", w.Size())
	}
	want := []string{"grown/up/data~/00000000000000000000"}
	if keys := keysUnder(t, m, "grown/up/"); strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("keys after the failed writer closed: %v, want %v", keys, want)
	}
	if got, err := b.GetContent(ctx, "/up/data"); err != nil || string(got) != strings.Repeat("a", 1000)+"more" {
		t.Fatalf("content: %q, %v", got, err)
	}
}

// TestTailStoreFails: storing the tail at Close fails. The writer's Size
// must then be what is stored (what an upload's error answer gives as
// its Range), not count the tail that never reached S3.
func TestTailStoreFails(t *testing.T) {
	m := testenv.StartMinIO(t)
	d, direct, relay := throughRelay(t, m, "/tailfail", func(c *s3.Config) {
		c.Timeouts.ResponseHeader = 5 * time.Second
	})
	ctx := context.Background()
	const chunk = s3.MinChunkSize
	content := bytes.Repeat([]byte{'t'}, chunk+512<<10)
	w, err := d.Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content[:chunk]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content[chunk:]); err != nil {
		t.Fatal(err)
	}
	// Once the chunk (stored in the background) has gone out, every
	// request that follows is refused: the tail is not stored.
	testenv.Eventually(t, 10*time.Second, "the chunk to be sent", func() bool { return relay.up.Load() > chunk })
	relay.cut.Store(relay.up.Load() + 64<<10)
	if err := w.Close(); err == nil {
		t.Fatal("Close succeeded through a cut connection")
	}
	relay.cut.Store(0)
	fi, err := direct.Stat(ctx, "/up/data")
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != fi.Size() {
		t.Fatalf("the failed writer's Size is %d, %d bytes are stored", w.Size(), fi.Size())
	}
}

// TestBackgroundStoreOutlivesCancel: the request's context is cancelled
// (the client went away) while a full chunk is being stored in the
// background. That chunk was received whole: it is stored all the same,
// and the upload resumes after it; only the unstored tail is lost.
func TestBackgroundStoreOutlivesCancel(t *testing.T) {
	m := testenv.StartMinIO(t)
	d, direct, relay := throughRelay(t, m, "/outlive", nil)
	const chunk = s3.MinChunkSize
	content := make([]byte, chunk+1000)
	for i := range content {
		content[i] = byte(i * 11)
	}
	relay.slow.Store(true) // the chunk takes about 170 ms to reach MinIO
	ctx, cancel := context.WithCancel(context.Background())
	w, err := d.Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = w.Close() // the tail can't be stored with a cancelled context
	relay.slow.Store(false)
	fi, err := direct.Stat(context.Background(), "/up/data")
	if err != nil || fi.Size() != chunk {
		t.Fatalf("stored after the cancel: %v, %v; want the chunk that was in flight (%d bytes)", fi, err, chunk)
	}
	if w.Size() != chunk {
		t.Errorf("the writer's Size after Close is %d, want %d", w.Size(), chunk)
	}
}
