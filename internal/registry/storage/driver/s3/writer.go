package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/minio/minio-go/v7"
)

// A writer keeps everything it has been given in S3, in segment objects
// under <key>~/ named by their offset (keys.go), and at most one chunk in
// memory:
//
//   - Write fills a buffer; each time it holds chunksize bytes it is stored
//     as the segment at its offset and emptied.
//   - Close stores what is buffered (the tail, shorter than a chunk, maybe
//     empty) as the segment at its offset. The file is then fully in S3:
//     Stat, Reader and List see it, and a writer opened with append in any
//     process, later, lists the segments and carries on.
//   - A resumed writer goes on in a new segment after a tail of at least
//     5 MiB. A tail shorter than that it reads back into its buffer on
//     its first Write, and later stores the grown chunk under the same
//     key, which replaces the tail in one PutObject. Every segment but
//     the last is therefore at least 5 MiB, as S3 wants multipart parts.
//     A writer opened only to be committed never reads the tail.
//   - Commit (or CommitTo, for another path) makes the object from the
//     stored segments: one server-side CopyObject for a single segment,
//     else a multipart upload whose parts are server-side copies of the
//     segments (UploadPartCopy), each conditional on the segment's ETag.
//     Only bytes still in memory (written but not yet stored) are sent.
//     Then the segments are deleted.
//   - Cancel deletes the segments and the object.
//
// Unlike an S3 multipart upload, whose parts can't be read before it is
// completed, segments are objects: the registry can stat and re-read an
// unfinished upload (to hash it with another algorithm, or after a restart
// that lost its hash state).
type writer struct {
	ctx  context.Context
	d    *Driver
	path string
	key  string

	segs   []segment // stored segments before base
	base   int64     // file offset of buf[0]
	buf    []byte    // bytes from base on; len < chunksize
	stored bool      // the segment at base holds exactly buf
	// shortTail is set while the last of segs is shorter than chunksize
	// and not yet read back: the first Write loads it into buf.
	shortTail bool
	// committed is the size of an already committed object the writer
	// was opened on with append, when no segments exist (-1: none).
	// It is turned into segments on the first Write.
	committed int64

	etag string // of the segment at base, when stored holds

	// pipe stores full chunks in the background (the last of segs may
	// be in flight); broken is the error of one that failed, after which
	// the writer only fails.
	pipe   pipe
	broken error

	closed, done bool
}

// Writer implements driver.Driver.
func (d *Driver) Writer(ctx context.Context, path string, appendTo bool) (driver.FileWriter, error) {
	if path == "/" {
		return nil, &driver.InvalidPathError{Path: path, Driver: Name, Reason: "the root is a directory"}
	}
	w := &writer{ctx: ctx, d: d, path: path, key: d.keys.key(path), committed: -1, pipe: pipe{d: d}}
	if !appendTo {
		// Start empty: drop an earlier object and unfinished segments.
		if err := d.deleteState(ctx, path, true); err != nil {
			return nil, err
		}
		return w, nil
	}
	segs, err := d.segments(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		oi, err := d.client.StatObject(ctx, d.cfg.Bucket, w.key, minio.StatObjectOptions{})
		switch {
		case err == nil:
			w.committed, w.base = oi.Size, oi.Size
		case !isNotFound(err):
			return nil, d.fail("stat", path, err)
		}
		return w, nil
	}
	last := segs[len(segs)-1]
	if last.size >= MinChunkSize {
		// A tail S3 takes as a part stays as it is: the file goes on
		// in a new segment, so a client sending chunks of 5 MiB or more
		// has none of them sent to S3 twice.
		w.segs, w.base = segs, last.off+last.size
		return w, nil
	}
	// Carry on from the short tail, which the first Write reads back.
	w.segs, w.base, w.shortTail = segs, last.off+last.size, true
	return w, nil
}

// loadTail reads the short tail segment back into the buffer, to grow it.
func (w *writer) loadTail() error {
	last := w.segs[len(w.segs)-1]
	if last.size == 0 {
		w.buf = nil // an empty file: nothing to read
	} else if err := w.load(last); err != nil {
		return err
	}
	w.segs, w.base, w.stored, w.shortTail = w.segs[:len(w.segs)-1], last.off, true, false
	return nil
}

// load reads segment s into the buffer. On an error the buffer is left
// as it was: bytes read back from a segment that is not the one listed
// (another process grew it meanwhile) must never be stored by Close.
func (w *writer) load(s segment) error {
	rc, _, _, err := w.d.core.GetObject(w.ctx, w.d.cfg.Bucket, s.key, minio.GetObjectOptions{})
	if err != nil {
		return w.d.fail("resume", w.path, err)
	}
	defer func() { _ = rc.Close() }()
	b := bytes.NewBuffer(make([]byte, 0, w.d.cfg.ChunkSize))
	if _, err := io.Copy(b, io.LimitReader(rc, w.d.cfg.ChunkSize)); err != nil {
		return w.d.fail("resume", w.path, err)
	}
	if int64(b.Len()) != s.size {
		return fmt.Errorf("s3: resume %s: segment at %d has %d bytes, listed as %d", w.path, s.off, b.Len(), s.size)
	}
	w.buf = b.Bytes()
	return nil
}

// deleteState removes the segments of path, and with object its object.
func (d *Driver) deleteState(ctx context.Context, path string, object bool) error {
	if object {
		err := d.client.RemoveObject(ctx, d.cfg.Bucket, d.keys.key(path), minio.RemoveObjectOptions{})
		if err != nil && !isNotFound(err) {
			return d.fail("delete", path, err)
		}
	}
	return d.deletePrefix(ctx, path, d.keys.stateDir(path))
}

// deletePrefix removes every key with prefix.
func (d *Driver) deletePrefix(ctx context.Context, path, prefix string) error {
	var listErr error
	objects := func(yield func(minio.ObjectInfo) bool) {
		for oi, err := range d.list(ctx, prefix, true, 0) {
			if err != nil {
				listErr = err
				return
			}
			if !yield(minio.ObjectInfo{Key: oi.Key}) {
				return
			}
		}
	}
	delErr := d.removeObjects(ctx, objects)
	return d.fail("delete", path, errors.Join(listErr, delErr))
}

func (w *writer) Size() int64 { return w.base + int64(len(w.buf)) }

// release frees the buffers of a closed or committed writer, keeping the
// bytes of buf in base so that Size still counts them: the registry
// answers an upload's Range from Size after Close.
func (w *writer) release() {
	w.pipe.release()
	w.base += int64(len(w.buf))
	w.buf = nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.closed || w.done {
		return 0, fmt.Errorf("s3: write to closed writer %s", w.path)
	}
	if w.broken != nil {
		return 0, w.broken
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.committed >= 0 {
		if err := w.unpackCommitted(); err != nil {
			return 0, err
		}
	}
	if w.shortTail {
		if err := w.loadTail(); err != nil {
			return 0, err
		}
	}
	chunk := int(w.d.cfg.ChunkSize)
	n := 0
	for len(p) > 0 {
		k := min(chunk-len(w.buf), len(p))
		w.buf = grow(w.buf, k, chunk)
		w.buf = append(w.buf, p[:k]...)
		w.stored = false
		p = p[k:]
		n += k
		if len(w.buf) == chunk {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// grow returns buf with room for k more bytes, growing it by doubling
// (from 64 KiB) up to chunk, so that a small file never takes a whole
// chunk of memory.
func grow(buf []byte, k, chunk int) []byte {
	if len(buf)+k <= cap(buf) {
		return buf
	}
	grown := make([]byte, len(buf), min(chunk, max(2*cap(buf), len(buf)+k, 64<<10)))
	copy(grown, buf)
	return grown
}

// flush stores the full buffer as the segment at base, in the background
// when the pipe can take it, and starts the next.
func (w *writer) flush() error {
	if err := w.settle(); err != nil {
		return err
	}
	seg := segment{key: w.d.keys.segmentKey(w.path, w.base), off: w.base, size: int64(len(w.buf))}
	w.segs = append(w.segs, seg)
	// A chunk in flight is finished even if the request is cancelled
	// (a client that went away mid-body): it was received whole, and the
	// upload resumes after it. The transport's timeouts bound the call.
	bg := context.WithoutCancel(w.ctx)
	if next := w.pipe.start(w.buf, func(b []byte) (string, error) { return w.put(bg, seg.key, b) }); next != nil {
		w.buf = next
	} else {
		if err := w.storeBuf(); err != nil {
			w.segs = w.segs[:len(w.segs)-1]
			return err
		}
		w.segs[len(w.segs)-1].etag = w.etag
		w.buf = w.buf[:0]
	}
	w.base += seg.size
	w.stored = false
	return nil
}

// settle waits for the segment in flight. If storing it failed, the
// writer forgets it and every byte after it (Size drops back to what is
// stored) and fails from then on.
func (w *writer) settle() error {
	if w.broken != nil {
		return w.broken
	}
	etag, flew, err := w.pipe.wait()
	if !flew {
		return nil
	}
	i := len(w.segs) - 1
	if err != nil {
		w.base, w.buf, w.stored = w.segs[i].off, nil, false
		w.segs = w.segs[:i]
		w.broken = w.d.fail("write", w.path, err)
		return w.broken
	}
	w.segs[i].etag = etag
	return nil
}

// put stores b as the object key and returns its ETag.
func (w *writer) put(ctx context.Context, key string, b []byte) (string, error) {
	info, err := w.d.core.PutObject(ctx, w.d.cfg.Bucket, key, bytes.NewReader(b), int64(len(b)), "", "", w.d.putOptions())
	return info.ETag, err
}

// storeBuf writes the buffer as the segment at base.
func (w *writer) storeBuf() error {
	etag, err := w.put(w.ctx, w.d.keys.segmentKey(w.path, w.base), w.buf)
	if err != nil {
		return w.d.fail("write", w.path, err)
	}
	w.stored, w.etag = true, etag
	return nil
}

// unpackCommitted turns the committed object the writer was opened on
// into segments, so that bytes can be appended: a copy into the segment
// at 0 (server-side), read back into the buffer when it is short.
func (w *writer) unpackCommitted() error {
	size := w.committed
	key := w.d.keys.segmentKey(w.path, 0)
	if size < w.d.cfg.ChunkSize {
		if err := w.load(segment{key: w.key, size: size}); err != nil {
			return err
		}
		w.base, w.stored = 0, false
	} else {
		var err error
		if size <= MaxChunkSize {
			_, err = w.d.core.CopyObject(w.ctx, w.d.cfg.Bucket, w.key, w.d.cfg.Bucket, key, w.d.copyHeaders(), minio.CopySrcOptions{}, minio.PutObjectOptions{})
		} else {
			err = errors.New("appending to a committed object above 5 GiB is not supported")
		}
		if err != nil {
			return w.d.fail("reopen", w.path, err)
		}
		w.segs = []segment{{key: key, off: 0, size: size}}
		w.base = size
	}
	w.committed = -1
	return nil
}

// Close stores the buffered tail, so the file can be resumed from S3.
func (w *writer) Close() error {
	if w.closed || w.done {
		return nil
	}
	w.closed = true
	defer w.release()
	if err := w.settle(); err != nil {
		return err
	}
	if w.committed >= 0 || w.stored || (len(w.buf) == 0 && len(w.segs) > 0) {
		return nil
	}
	if err := w.storeBuf(); err != nil {
		// The tail is not stored: Size drops back to what S3 holds.
		w.buf = nil
		return err
	}
	return nil
}

func (w *writer) Commit(ctx context.Context) error {
	return w.commit(ctx, w.path)
}

// CommitTo implements driver.TargetCommitter: the object is composed at
// dst's key instead of the writer's, which saves the server-side copy a
// Move would make after Commit. Every segment is copied only as it was
// listed or stored (its ETag): if another process replaced one meanwhile,
// CommitTo fails with driver.ErrChanged and dst is left alone.
func (w *writer) CommitTo(ctx context.Context, dst string) error {
	return w.commit(ctx, dst)
}

func (w *writer) commit(ctx context.Context, dst string) error {
	if w.closed || w.done {
		return fmt.Errorf("s3: commit of closed writer %s", w.path)
	}
	w.done = true
	defer w.release()
	if err := w.settle(); err != nil {
		return err
	}
	dstKey := w.d.keys.key(dst)
	if w.committed >= 0 {
		// Opened on a committed object, and nothing appended to it.
		if dst == w.path {
			return nil
		}
		return w.d.move(ctx, w.path, dst, w.committed)
	}
	var tail []byte
	if !w.stored {
		tail = w.buf // written but not stored yet: sent from memory
	} else if len(w.buf) > 0 {
		w.segs = append(w.segs, segment{key: w.d.keys.segmentKey(w.path, w.base), off: w.base, size: int64(len(w.buf)), etag: w.etag})
	}
	var err error
	switch {
	case len(w.segs) == 0 || (len(w.segs) == 1 && w.segs[0].size == 0):
		_, err = w.d.core.PutObject(ctx, w.d.cfg.Bucket, dstKey, bytes.NewReader(tail), int64(len(tail)), "", "", w.d.putOptions())
	case len(w.segs) == 1 && len(tail) == 0:
		s := w.segs[0]
		hdr := w.d.copyHeaders()
		maps.Copy(hdr, s.copyCond())
		_, err = w.d.core.CopyObject(ctx, w.d.cfg.Bucket, s.key, w.d.cfg.Bucket, dstKey, hdr, minio.CopySrcOptions{}, minio.PutObjectOptions{})
	default:
		parts := make([]copyPart, 0, len(w.segs))
		for _, s := range w.segs {
			if s.size > 0 {
				parts = append(parts, copyPart{key: s.key, off: 0, size: s.size, cond: s.copyCond()})
			}
		}
		err = w.d.compose(ctx, dstKey, parts, tail)
	}
	if err != nil {
		if isPreconditionFailed(err) || isNotFound(err) {
			return fmt.Errorf("s3: commit %s to %s: %w (a segment was replaced or removed meanwhile)", w.path, dst, driver.ErrChanged)
		}
		return w.d.fail("commit", w.path, err)
	}
	if err := w.d.deleteState(ctx, w.path, dst != w.path); err != nil {
		// The object is complete; leftover segments are only garbage
		// that the object hides and a Delete of the directory removes.
		w.d.cfg.Logger.WarnContext(ctx, "s3: removing the upload segments after commit failed", "path", w.path, "err", err)
	}
	return nil
}

func (w *writer) Cancel(ctx context.Context) error {
	w.pipe.release()
	w.closed, w.buf = true, nil
	return w.d.deleteState(ctx, w.path, true)
}

var (
	_ driver.FileWriter      = (*writer)(nil)
	_ driver.TargetCommitter = (*writer)(nil)
)
