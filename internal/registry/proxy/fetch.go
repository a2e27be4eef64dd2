package proxy

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

// fetch is one blob coming from an upstream. The bytes go into storage
// as they arrive; every client asking for the blob meanwhile reads them
// from its own offset, waiting for more when it catches up. They read the
// upload's own data file when storage's files are local (the bytes are
// written once), else an unlinked temporary file the fetch writes too.
// The fetch runs on the cache's lifetime, not a client's request: a
// client that leaves does not break it for the others.
type fetch struct {
	ready chan struct{} // closed once size and file are set, or err is
	size  int64         // the upstream's Content-Length, -1 if unknown

	mu      sync.Mutex
	file    *os.File   // what the readers read; set before ready, replaced by spill
	files   []*os.File // every file file has been, closed by the last release
	written int64
	done    bool
	err     error         // set with done: the download failed
	changed chan struct{} // closed and replaced whenever written or done change
	refs    int           // the fetcher and each open reader
}

// FetchBlob returns a reader of blob dgst of the mirrored repository
// name, which storage does not hold: it starts fetching it from the
// upstream, or joins the fetch in flight. size is the blob's length (-1
// if the upstream did not say). Reading ends with an error if the
// download fails or does not match dgst. An upstream answer that is no
// blob comes back as storage.ErrBlobUnknown (404) or *UpstreamError.
func (c *Cache) FetchBlob(ctx context.Context, name string, dgst digest.Digest) (io.ReadCloser, int64, error) {
	up, rname, ok := c.route(name)
	if !ok {
		return nil, 0, storage.ErrBlobUnknown
	}
	if !dgst.Algorithm().Available() {
		return nil, 0, storage.ErrDigestInvalid
	}
	key := name + "@" + dgst.String()
	c.mu.Lock()
	f := c.fetches[key]
	if f == nil {
		f = &fetch{ready: make(chan struct{}), changed: make(chan struct{}), refs: 1}
		c.fetches[key] = f
		c.fetching.Add(1)
		go func() {
			defer c.fetching.Done()
			c.runFetch(f, key, up, rname, name, dgst)
		}()
	}
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
	c.mu.Unlock()
	c.metrics.miss("blob")

	select {
	case <-f.ready:
	case <-ctx.Done():
		f.release()
		return nil, 0, ctx.Err()
	}
	f.mu.Lock()
	failed := len(f.files) == 0
	err := f.err
	f.mu.Unlock()
	if failed {
		f.release()
		return nil, 0, err
	}
	return &fetchReader{f: f, ctx: ctx}, f.size, nil
}

// runFetch downloads the blob into storage, and into the temporary file
// when the readers cannot read storage's copy. Every byte is hashed once:
// by storage's upload, which hashes what it writes with sha256; by the tee
// for another algorithm or when storage cannot start an upload; or, when
// storage gives up part way, from the file once the download is complete.
// The readers are done once every byte arrived and matched the digest;
// storage commits (and, when durable, flushes) its copy after that, and
// the fetch stays joinable until then, so no second upstream transfer
// starts.
func (c *Cache) runFetch(f *fetch, key string, up *upstream, rname, name string, dgst digest.Digest) {
	defer func() {
		c.mu.Lock()
		delete(c.fetches, key)
		c.mu.Unlock()
		f.release()
	}()
	ctx := c.ctx
	resp, err := up.remote.get(ctx, http.MethodGet, rname, "/blobs/"+dgst.String(), nil)
	if err != nil {
		f.fail(notFound(err, storage.ErrBlobUnknown))
		return
	}
	defer func() { _ = resp.Body.Close() }()
	src := &teeFile{r: resp.Body, f: f, tempDir: c.opts.TempDir}
	u := c.newUpload(ctx, name, dgst)
	var file *os.File
	if u != nil {
		if file, err = u.OpenData(); err != nil {
			c.log.Warn("reading a fetched blob from storage failed; using a temporary file", "repository", name, "digest", dgst, "err", err)
			file = nil
		}
	}
	if file == nil {
		if file, err = tempFile(c.opts.TempDir); err != nil {
			c.cancelUpload(ctx, u)
			f.fail(err)
			return
		}
		src.tmp = file
	}
	f.mu.Lock()
	f.file, f.files, f.size = file, []*os.File{file}, contentLength(resp.Header)
	f.mu.Unlock()
	close(f.ready)

	if u == nil || dgst.Algorithm() != digest.SHA256 {
		src.h = dgst.Algorithm().Hash()
	}
	appended := false
	if u != nil {
		if _, err := u.Append(ctx, src); err == nil && src.eof {
			appended = true
		} else if src.err == nil {
			c.log.Warn("caching a fetched blob failed", "repository", name, "digest", dgst, "err", err)
		}
	}
	if !appended && src.err == nil && src.tmp == nil {
		// Storage gave up while the readers read its data file: move
		// them to a temporary file for the rest.
		if err := src.spill(); err != nil {
			src.err = err
		}
	}
	// The readers still get every byte when storage gave up early.
	if _, err := io.Copy(io.Discard, src); err != nil && src.err == nil {
		src.err = err
	}
	var stored digest.Digest // what storage hashed, when it took every byte
	if appended {
		if d, ok := u.Digest(); ok && u.Size() == src.n {
			stored = d
		}
	}
	derr := src.check(dgst, stored)
	f.finish(derr)
	if derr != nil {
		c.log.Warn("blob fetch failed", "repository", name, "digest", dgst, "err", derr)
		c.cancelUpload(ctx, u)
		return
	}
	c.metrics.fetchedBytes.WithLabelValues("blob").Add(float64(src.n))
	if !appended {
		c.cancelUpload(ctx, u)
		return
	}
	// Commit checks the digest too (from the upload's running hash, not
	// by reading the data again) before the blob becomes visible. The
	// readers' open data file stays readable when it moves or goes.
	if _, err := u.Commit(ctx, dgst, src.n); err != nil {
		c.log.Warn("caching a fetched blob failed", "repository", name, "digest", dgst, "err", err)
		c.cancelUpload(ctx, u)
		return
	}
	c.state.add(kindBlob, name, dgst, src.n, c.now(), up.TTL)
	c.metrics.cachedBytes.Set(float64(c.state.usage()))
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// tempFile creates a temporary file in dir for a fetched blob and unlinks
// it at once: the open descriptor keeps the bytes for the readers, and
// nothing is left behind by a crash.
func tempFile(dir string) (*os.File, error) {
	tmp, err := os.CreateTemp(dir, "gatehouse-proxy-*")
	if err != nil {
		return nil, fmt.Errorf("temporary file for a fetched blob: %w", err)
	}
	_ = os.Remove(tmp.Name())
	return tmp, nil
}

// newUpload starts the upload that stores the blob in repository name,
// or returns nil when storage cannot take it.
func (c *Cache) newUpload(ctx context.Context, name string, dgst digest.Digest) *storage.Upload {
	repo, err := c.reg.Repository(name)
	if err != nil {
		return nil
	}
	u, err := repo.NewUpload(ctx)
	if err != nil {
		c.log.Warn("caching a fetched blob failed", "repository", name, "digest", dgst, "err", err)
		return nil
	}
	return u
}

func (c *Cache) cancelUpload(ctx context.Context, u *storage.Upload) {
	if u != nil {
		_ = u.Cancel(context.WithoutCancel(ctx))
	}
}

// hashFile hashes the first n bytes of f with alg.
func hashFile(alg digest.Algorithm, f *os.File, n int64) (hash.Hash, error) {
	h := alg.Hash()
	got, err := io.Copy(h, io.NewSectionReader(f, 0, n))
	if err == nil && got != n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("temporary file for a fetched blob: %w", err)
	}
	return h, nil
}

// teeFile reads the upstream body for storage's upload and lets the
// readers have what it read: when they read the upload's data file (tmp
// is nil), once storage asks for more, which it does only after writing
// what it got (storage.Upload.OpenData); else at once, from tmp, which
// the tee writes. It hashes what it reads when h is set.
type teeFile struct {
	r       io.Reader
	f       *fetch
	h       hash.Hash
	tmp     *os.File
	tempDir string
	// last is a copy of what the last Read returned while the readers
	// read storage's file, until storage asks for more: what spill needs
	// when storage fails to write it.
	last []byte
	n    int64
	// ended: the body ended with the bytes the last Read returned,
	// which storage has yet to write.
	ended bool
	err   error
	eof   bool
}

func (t *teeFile) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	if t.eof {
		return 0, io.EOF
	}
	if t.tmp == nil {
		// Storage wrote what it got before asking for more.
		t.last = t.last[:0]
		t.f.advance(t.n)
	}
	if t.ended {
		return 0, t.end()
	}
	n, err := t.r.Read(p)
	if n > 0 {
		if t.tmp != nil {
			if _, werr := t.tmp.WriteAt(p[:n], t.n); werr != nil {
				t.err = fmt.Errorf("temporary file for a fetched blob: %w", werr)
				return 0, t.err
			}
		} else {
			t.last = append(t.last, p[:n]...)
		}
		if t.h != nil {
			t.h.Write(p[:n])
		}
		t.n += int64(n)
		if t.tmp != nil {
			t.f.advance(t.n)
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		if n > 0 && t.tmp == nil {
			// Storage writes these first, then reads again.
			t.ended = true
			return n, nil
		}
		return n, t.end()
	case err != nil:
		t.err = err
	}
	return n, err
}

// end checks the length at the body's end and returns io.EOF, or why the
// body is not the blob.
func (t *teeFile) end() error {
	if t.f.size >= 0 && t.n != t.f.size {
		t.err = fmt.Errorf("the upstream sent %d bytes of %d", t.n, t.f.size)
		return t.err
	}
	t.eof = true
	return io.EOF
}

// spill moves the readers from storage's data file to a temporary file
// holding the same bytes (what storage wrote, copied from its file, and
// last), which the tee then writes the rest to.
func (t *teeFile) spill() error {
	tmp, err := tempFile(t.tempDir)
	if err != nil {
		return err
	}
	t.f.mu.Lock()
	data := t.f.file
	t.f.files = append(t.f.files, tmp)
	t.f.mu.Unlock()
	written := t.n - int64(len(t.last))
	if n, err := io.Copy(tmp, io.NewSectionReader(data, 0, written)); err != nil || n != written {
		return fmt.Errorf("copying a fetched blob to a temporary file: %d of %d bytes: %w", n, written, errors.Join(err, io.ErrUnexpectedEOF))
	}
	if _, err := tmp.WriteAt(t.last, written); err != nil {
		return fmt.Errorf("temporary file for a fetched blob: %w", err)
	}
	t.tmp, t.last = tmp, nil
	t.f.mu.Lock()
	t.f.file = tmp
	t.f.mu.Unlock()
	t.f.advance(t.n)
	return nil
}

// check returns why the download failed, or nil when every byte arrived
// and matched want. The digest is the tee's own when it hashed, else
// stored, the one storage computed over exactly these bytes; without
// either (storage gave up early), the file is hashed.
func (t *teeFile) check(want, stored digest.Digest) error {
	if t.err != nil {
		return t.err
	}
	if !t.eof {
		return errors.New("the upstream body ended early")
	}
	got := stored
	if t.h != nil {
		got = digest.NewDigest(want.Algorithm(), t.h)
	} else if got == "" {
		t.f.mu.Lock()
		file := t.f.file
		t.f.mu.Unlock()
		h, err := hashFile(want.Algorithm(), file, t.n)
		if err != nil {
			return err
		}
		got = digest.NewDigest(want.Algorithm(), h)
	}
	if got != want {
		return fmt.Errorf("the upstream sent content that is not %s", want)
	}
	return nil
}

func (f *fetch) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fetch) advance(written int64) {
	f.mu.Lock()
	f.written = written
	f.notify()
	f.mu.Unlock()
}

// fail ends a fetch that never got a body.
func (f *fetch) fail(err error) {
	f.mu.Lock()
	f.err, f.done = err, true
	f.notify()
	f.mu.Unlock()
	close(f.ready)
}

func (f *fetch) finish(err error) {
	f.mu.Lock()
	f.err, f.done = err, true
	f.notify()
	f.mu.Unlock()
}

// release drops one reference; the last closes the files.
func (f *fetch) release() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	files := f.files
	f.mu.Unlock()
	if last {
		for _, file := range files {
			_ = file.Close()
		}
	}
}

// fetchReader reads a fetch's file from its own offset, waiting for the
// fetcher when it has caught up. EOF comes only once the whole blob
// arrived and matched its digest.
type fetchReader struct {
	f      *fetch
	ctx    context.Context
	off    int64
	closed bool
}

func (r *fetchReader) Read(p []byte) (int, error) {
	for {
		r.f.mu.Lock()
		avail := r.f.written - r.off
		done, err, changed, file := r.f.done, r.f.err, r.f.changed, r.f.file
		r.f.mu.Unlock()
		if avail > 0 {
			if int64(len(p)) > avail {
				p = p[:avail]
			}
			n, rerr := file.ReadAt(p, r.off)
			r.off += int64(n)
			if errors.Is(rerr, io.EOF) && n > 0 {
				rerr = nil
			}
			return n, rerr
		}
		if done {
			if err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *fetchReader) Close() error {
	if !r.closed {
		r.closed = true
		r.f.release()
	}
	return nil
}
