// Package drivertest is the conformance suite every storage driver passes:
// one set of tests, run against each driver by its own package's tests.
package drivertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/google/go-cmp/cmp"
)

// Option tunes the suite for a driver.
type Option func(*config)

type config struct {
	inMemory bool
}

// StoresInMemory tells the suite that the driver keeps content on the heap,
// so the large-file test allows the heap to grow by the file's size (and
// no more).
func StoresInMemory() Option { return func(c *config) { c.inMemory = true } }

// LargeFileSize is written by the streaming test.
const LargeFileSize = 64 << 20

// heapSlack is how much the heap may grow beyond what the driver stores
// while streaming a large file.
const heapSlack = 16 << 20

// Run runs the suite. newDriver returns an empty driver for each subtest.
func Run(t *testing.T, newDriver func(t *testing.T) driver.Driver, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, d driver.Driver)
	}{
		{"ContentRoundTrip", testContent},
		{"PutContentReplaces", testPutReplaces},
		{"WriterAppendResume", testAppend},
		{"WriterCancel", testCancel},
		{"ConcurrentWriters", testConcurrentWriters},
		{"MoveOverExisting", testMove},
		{"DeleteRecursive", testDelete},
		{"ListOrder", testList},
		{"Walk", testWalk},
		{"NotFound", testNotFound},
		{"BadPaths", testBadPaths},
		{"ReaderOffset", testReaderOffset},
		{"Stat", testStat},
		{"LargeFileStreaming", func(t *testing.T, d driver.Driver) { testLarge(t, d, cfg) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newDriver(t))
		})
	}
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPut(t *testing.T, d driver.Driver, p string, b []byte) {
	t.Helper()
	if err := d.PutContent(context.Background(), p, b); err != nil {
		t.Fatalf("PutContent(%s): %v", p, err)
	}
}

func mustGet(t *testing.T, d driver.Driver, p string) []byte {
	t.Helper()
	b, err := d.GetContent(context.Background(), p)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", p, err)
	}
	return b
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	var nf *driver.PathNotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("%s: got error %v, want a *driver.PathNotFoundError", what, err)
	}
}

func testContent(t *testing.T, d driver.Driver) {
	for _, size := range []int{0, 1, 4096, 1<<20 + 7} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := fmt.Sprintf("/content/file-%d", size)
			want := randBytes(t, size)
			mustPut(t, d, p, want)
			if got := mustGet(t, d, p); !bytes.Equal(got, want) {
				t.Fatalf("content differs after round trip (%d bytes back, %d put)", len(got), len(want))
			}
		})
	}
}

func testPutReplaces(t *testing.T, d driver.Driver) {
	mustPut(t, d, "/a/link", []byte("sha256:first-and-longer"))
	mustPut(t, d, "/a/link", []byte("sha256:2nd"))
	if got := string(mustGet(t, d, "/a/link")); got != "sha256:2nd" {
		t.Errorf("after replace got %q", got)
	}
}

func writeAll(t *testing.T, d driver.Driver, p string, appendTo bool, parts ...[]byte) driver.FileWriter {
	t.Helper()
	w, err := d.Writer(context.Background(), p, appendTo)
	if err != nil {
		t.Fatalf("Writer(%s, %v): %v", p, appendTo, err)
	}
	for _, b := range parts {
		n, err := w.Write(b)
		if err != nil || n != len(b) {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	return w
}

func testAppend(t *testing.T, d driver.Driver) {
	ctx := context.Background()
	a, b, c := randBytes(t, 1000), randBytes(t, 70000), randBytes(t, 3)
	w := writeAll(t, d, "/up/data", false, a)
	if w.Size() != 1000 {
		t.Errorf("Size after first write = %d, want 1000", w.Size())
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The registry answers an upload's Range from Size after Close.
	if w.Size() != 1000 {
		t.Errorf("Size after Close = %d, want 1000", w.Size())
	}
	w = writeAll(t, d, "/up/data", true)
	if w.Size() != 1000 {
		t.Errorf("resumed Size = %d, want 1000", w.Size())
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if want := int64(len(a) + len(b)); w.Size() != want {
		t.Errorf("Size after appending and Close = %d, want %d", w.Size(), want)
	}
	w = writeAll(t, d, "/up/data", true, c)
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	want := append(append(append([]byte{}, a...), b...), c...)
	if got := mustGet(t, d, "/up/data"); !bytes.Equal(got, want) {
		t.Errorf("appended content differs: %d bytes, want %d", len(got), len(want))
	}
	// Without append, the writer starts over.
	w = writeAll(t, d, "/up/data", false, []byte("x"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := string(mustGet(t, d, "/up/data")); got != "x" {
		t.Errorf("truncating writer left %d bytes", len(got))
	}
}

func testCancel(t *testing.T, d driver.Driver) {
	w := writeAll(t, d, "/cancel/data", false, randBytes(t, 5000))
	if err := w.Cancel(context.Background()); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	_, err := d.Stat(context.Background(), "/cancel/data")
	wantNotFound(t, "Stat after Cancel", err)
}

func testConcurrentWriters(t *testing.T, d driver.Driver) {
	const n = 8
	data := make([][]byte, n)
	for i := range data {
		data[i] = randBytes(t, 256<<10)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := d.Writer(context.Background(), fmt.Sprintf("/conc/%d/data", i), false)
			if err != nil {
				errs <- err
				return
			}
			for off := 0; off < len(data[i]); off += 4096 {
				if _, err := w.Write(data[i][off : off+4096]); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Commit(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if got := mustGet(t, d, fmt.Sprintf("/conc/%d/data", i)); !bytes.Equal(got, data[i]) {
			t.Errorf("writer %d: content differs", i)
		}
	}
}

func testMove(t *testing.T, d driver.Driver) {
	ctx := context.Background()
	mustPut(t, d, "/src/data", []byte("new"))
	mustPut(t, d, "/dst/x/data", []byte("old content"))
	if err := d.Move(ctx, "/src/data", "/dst/x/data"); err != nil {
		t.Fatalf("Move over existing: %v", err)
	}
	if got := string(mustGet(t, d, "/dst/x/data")); got != "new" {
		t.Errorf("after move got %q", got)
	}
	_, err := d.Stat(ctx, "/src/data")
	wantNotFound(t, "Stat of moved source", err)
	// Into a directory that does not exist yet.
	mustPut(t, d, "/src/two", []byte("2"))
	if err := d.Move(ctx, "/src/two", "/deep/er/two"); err != nil {
		t.Fatalf("Move to a new directory: %v", err)
	}
	if got := string(mustGet(t, d, "/deep/er/two")); got != "2" {
		t.Errorf("moved file has %q", got)
	}
	wantNotFound(t, "Move of a missing source", d.Move(ctx, "/nope", "/dst/y"))
}

func testDelete(t *testing.T, d driver.Driver) {
	ctx := context.Background()
	for _, p := range []string{"/del/a/1", "/del/a/b/2", "/del/a/b/c/3", "/del/keep"} {
		mustPut(t, d, p, []byte(p))
	}
	if err := d.Delete(ctx, "/del/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, p := range []string{"/del/a", "/del/a/1", "/del/a/b/c/3"} {
		_, err := d.Stat(ctx, p)
		wantNotFound(t, "Stat "+p, err)
	}
	if got := string(mustGet(t, d, "/del/keep")); got != "/del/keep" {
		t.Errorf("sibling damaged: %q", got)
	}
	if err := d.Delete(ctx, "/del/keep"); err != nil {
		t.Errorf("Delete file: %v", err)
	}
	wantNotFound(t, "Delete missing", d.Delete(ctx, "/del/missing"))
}

func testList(t *testing.T, d driver.Driver) {
	for _, p := range []string{"/l/b", "/l/a-b/x", "/l/a/x", "/l/_x", "/l/C", "/l/c/d/e"} {
		mustPut(t, d, p, nil)
	}
	got, err := d.List(context.Background(), "/l")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/l/C", "/l/_x", "/l/a", "/l/a-b", "/l/b", "/l/c"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	root, err := d.List(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/l"}, root); diff != "" {
		t.Errorf("List / (-want +got):\n%s", diff)
	}
}

func testWalk(t *testing.T, d driver.Driver) {
	for _, p := range []string{"/w/b/1", "/w/a/skip/1", "/w/a/2", "/w/a-b", "/w/c"} {
		mustPut(t, d, p, []byte("xy"))
	}
	var got []string
	err := d.Walk(context.Background(), "/w", func(fi driver.FileInfo) error {
		kind := "f"
		if fi.IsDir() {
			kind = "d"
		} else if fi.Size() != 2 {
			t.Errorf("%s: size %d, want 2", fi.Path(), fi.Size())
		}
		got = append(got, kind+" "+fi.Path())
		if fi.Path() == "/w/a/skip" {
			return driver.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"d /w/a", "f /w/a/2", "d /w/a/skip", "f /w/a-b", "d /w/b", "f /w/b/1", "f /w/c"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Walk order (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	n := 0
	err = d.Walk(context.Background(), "/w", func(driver.FileInfo) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Walk did not stop on error: %v after %d calls", err, n)
	}
	wantNotFound(t, "Walk missing", d.Walk(context.Background(), "/nope", func(driver.FileInfo) error { return nil }))
}

func testNotFound(t *testing.T, d driver.Driver) {
	ctx := context.Background()
	_, err := d.GetContent(ctx, "/missing/file")
	wantNotFound(t, "GetContent", err)
	_, err = d.Reader(ctx, "/missing/file", 0)
	wantNotFound(t, "Reader", err)
	_, err = d.Stat(ctx, "/missing/file")
	wantNotFound(t, "Stat", err)
	_, err = d.List(ctx, "/missing")
	wantNotFound(t, "List", err)
	mustPut(t, d, "/file", []byte("x"))
	_, err = d.GetContent(ctx, "/file/below")
	wantNotFound(t, "GetContent below a file", err)
}

func testBadPaths(t *testing.T, d driver.Driver) {
	ctx := context.Background()
	bad := []string{"", "relative", "/a/../b", "/..", "/a/./b", "/a//b", "/a/", "/a b", "/a\x00b", "/a\\b", "/%2e%2e", "/é"}
	for _, p := range bad {
		t.Run(fmt.Sprintf("%q", p), func(t *testing.T) {
			var ip *driver.InvalidPathError
			check := func(what string, err error) {
				if !errors.As(err, &ip) {
					t.Errorf("%s(%q): got %v, want *driver.InvalidPathError", what, p, err)
				}
			}
			check("PutContent", d.PutContent(ctx, p, []byte("x")))
			_, err := d.GetContent(ctx, p)
			check("GetContent", err)
			_, err = d.Reader(ctx, p, 0)
			check("Reader", err)
			_, err = d.Writer(ctx, p, false)
			check("Writer", err)
			_, err = d.Stat(ctx, p)
			check("Stat", err)
			_, err = d.List(ctx, p)
			check("List", err)
			check("Move from", d.Move(ctx, p, "/ok"))
			check("Move to", d.Move(ctx, "/ok", p))
			check("Delete", d.Delete(ctx, p))
			check("Walk", d.Walk(ctx, p, func(driver.FileInfo) error { return nil }))
		})
	}
}

func testReaderOffset(t *testing.T, d driver.Driver) {
	ctx := context.Background()
	data := randBytes(t, 100000)
	mustPut(t, d, "/r/data", data)
	for _, off := range []int64{0, 1, 4095, 65536, 99999, 100000} {
		r, err := d.Reader(ctx, "/r/data", off)
		if err != nil {
			t.Fatalf("Reader at %d: %v", off, err)
		}
		got, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[off:]) {
			t.Errorf("Reader at %d: wrong bytes (%d read)", off, len(got))
		}
	}
	for _, off := range []int64{-1, 100001} {
		_, err := d.Reader(ctx, "/r/data", off)
		var ie *driver.InvalidOffsetError
		if !errors.As(err, &ie) {
			t.Errorf("Reader at %d: got %v, want *driver.InvalidOffsetError", off, err)
		}
	}
}

func testStat(t *testing.T, d driver.Driver) {
	ctx := context.Background()
	mustPut(t, d, "/s/dir/file", randBytes(t, 1234))
	fi, err := d.Stat(ctx, "/s/dir/file")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Path() != "/s/dir/file" || fi.Size() != 1234 || fi.IsDir() || fi.ModTime().IsZero() {
		t.Errorf("Stat file = %s %d dir=%v mod=%v", fi.Path(), fi.Size(), fi.IsDir(), fi.ModTime())
	}
	fi, err = d.Stat(ctx, "/s/dir")
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Path() != "/s/dir" {
		t.Errorf("Stat dir = %s dir=%v", fi.Path(), fi.IsDir())
	}
}

// patternReader yields n deterministic bytes without holding them.
type patternReader struct{ left, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7 % 251)
	}
	p.left -= int64(len(b))
	p.off += int64(len(b))
	return len(b), nil
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func testLarge(t *testing.T, d driver.Driver, cfg config) {
	ctx := context.Background()
	allowed := uint64(heapSlack)
	if cfg.inMemory {
		allowed += 2 * LargeFileSize // content plus slice growth slack
	}
	before := heapInuse()
	var peak uint64
	w, err := d.Writer(ctx, "/large/data", false)
	if err != nil {
		t.Fatal(err)
	}
	src := &patternReader{left: LargeFileSize}
	buf := make([]byte, 1<<20)
	for i := 0; ; i++ {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				t.Fatal(err)
			}
		}
		if i%16 == 0 {
			peak = max(peak, heapInuse())
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := d.Stat(ctx, "/large/data")
	if err != nil || fi.Size() != LargeFileSize {
		t.Fatalf("Stat after large write: %v, %v", fi, err)
	}
	r, err := d.Reader(ctx, "/large/data", LargeFileSize-(10<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	check := &patternReader{left: 10 << 20, off: LargeFileSize - (10 << 20)}
	want := make([]byte, len(buf))
	var read int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := io.ReadFull(check, want[:n]); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], want[:n]) {
				t.Fatalf("large file differs near offset %d", read)
			}
			read += int64(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			t.Fatal(rerr)
		}
	}
	if read != 10<<20 {
		t.Errorf("read %d bytes of the tail, want %d", read, 10<<20)
	}
	peak = max(peak, heapInuse())
	if peak > before && peak-before > allowed {
		t.Errorf("heap grew by %d MiB while streaming a %d MiB file (allowed %d MiB)",
			(peak-before)>>20, LargeFileSize>>20, allowed>>20)
	}
}
