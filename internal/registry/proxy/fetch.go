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

// fetch is one blob coming from an upstream. The bytes go to an unlinked
// temporary file as they arrive, and into storage; every client asking
// for the blob meanwhile reads the temporary file from its own offset,
// waiting for more when it catches up. The fetch runs on the cache's
// lifetime, not a client's request: a client that leaves does not break
// it for the others.
type fetch struct {
	ready chan struct{} // closed once size and file are set, or err is
	size  int64         // the upstream's Content-Length, -1 if unknown
	file  *os.File

	mu      sync.Mutex
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
	failed := f.file == nil
	err := f.err
	f.mu.Unlock()
	if failed {
		f.release()
		return nil, 0, err
	}
	return &fetchReader{f: f, ctx: ctx}, f.size, nil
}

// runFetch downloads the blob into the temporary file and storage. The
// readers are done once every byte arrived and matched the digest; storage
// commits (and, when durable, flushes) its copy after that, and the fetch
// stays joinable until then, so no second upstream transfer starts.
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
	tmp, err := os.CreateTemp(c.opts.TempDir, "gatehouse-proxy-*")
	if err != nil {
		f.fail(fmt.Errorf("temporary file for a fetched blob: %w", err))
		return
	}
	// Unlinked at once: the open descriptor keeps the bytes for the
	// readers, and nothing is left behind by a crash.
	_ = os.Remove(tmp.Name())
	f.mu.Lock()
	f.file, f.size = tmp, contentLength(resp.Header)
	f.mu.Unlock()
	close(f.ready)

	src := &teeFile{r: resp.Body, f: f, h: dgst.Algorithm().Hash(), want: dgst}
	stored := c.store(ctx, name, dgst, src)
	// Storage may have given up early; the readers still get every byte.
	if _, err := io.Copy(io.Discard, src); err != nil && src.err == nil {
		src.err = err
	}
	derr := src.finish()
	f.finish(derr)
	if derr != nil {
		c.log.Warn("blob fetch failed", "repository", name, "digest", dgst, "err", derr)
		return
	}
	c.metrics.fetchedBytes.WithLabelValues("blob").Add(float64(src.n))
	if stored {
		c.state.add(kindBlob, name, dgst, src.n, c.now(), up.TTL)
		c.metrics.cachedBytes.Set(float64(c.state.usage()))
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// store writes the blob into repository name through an upload, which
// checks the digest before the blob becomes visible.
func (c *Cache) store(ctx context.Context, name string, dgst digest.Digest, src io.Reader) bool {
	repo, err := c.reg.Repository(name)
	if err != nil {
		return false
	}
	u, err := repo.NewUpload(ctx)
	if err != nil {
		c.log.Warn("caching a fetched blob failed", "repository", name, "digest", dgst, "err", err)
		return false
	}
	if _, err := u.Append(ctx, src); err == nil {
		if _, err = u.Commit(ctx, dgst, -1); err == nil {
			return true
		}
		c.log.Warn("caching a fetched blob failed", "repository", name, "digest", dgst, "err", err)
	} else {
		c.log.Warn("caching a fetched blob failed", "repository", name, "digest", dgst, "err", err)
	}
	_ = u.Cancel(context.WithoutCancel(ctx))
	return false
}

// teeFile reads the upstream body, appends what it reads to the fetch's
// file for the readers and hashes it.
type teeFile struct {
	r    io.Reader
	f    *fetch
	h    hash.Hash
	want digest.Digest
	n    int64
	err  error
	eof  bool
}

func (t *teeFile) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	if t.eof {
		return 0, io.EOF
	}
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.f.file.WriteAt(p[:n], t.n); werr != nil {
			t.err = fmt.Errorf("temporary file for a fetched blob: %w", werr)
			return 0, t.err
		}
		t.h.Write(p[:n])
		t.n += int64(n)
		t.f.advance(t.n)
	}
	switch {
	case errors.Is(err, io.EOF):
		// Checked before the EOF reaches storage, so a bad body is never
		// committed.
		if e := t.verify(); e != nil {
			t.err = e
			return n, e
		}
		t.eof = true
		// The readers have every byte, checked: they need not wait for
		// storage to commit (and flush) its copy.
		t.f.finish(nil)
	case err != nil:
		t.err = err
	}
	return n, err
}

func (t *teeFile) verify() error {
	if t.f.size >= 0 && t.n != t.f.size {
		return fmt.Errorf("the upstream sent %d bytes of %d", t.n, t.f.size)
	}
	if got := digest.NewDigest(t.want.Algorithm(), t.h); got != t.want {
		return fmt.Errorf("the upstream sent content that is not %s", t.want)
	}
	return nil
}

// finish returns why the download failed, or nil when every byte arrived
// and matched.
func (t *teeFile) finish() error {
	if t.err != nil {
		return t.err
	}
	if !t.eof {
		return errors.New("the upstream body ended early")
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

// release drops one reference; the last closes the file.
func (f *fetch) release() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	file := f.file
	f.mu.Unlock()
	if last && file != nil {
		_ = file.Close()
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
		done, err, changed := r.f.done, r.f.err, r.f.changed
		r.f.mu.Unlock()
		if avail > 0 {
			if int64(len(p)) > avail {
				p = p[:avail]
			}
			n, rerr := r.f.file.ReadAt(p, r.off)
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
