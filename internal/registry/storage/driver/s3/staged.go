package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/minio/minio-go/v7"
)

// A stagedWriter writes a new file whose content S3 shows only at
// Commit: full chunks go as the parts of a multipart upload at the file's
// own key, started with the first full chunk; Commit sends the rest as
// the last part and completes the upload (or, for a file under one chunk,
// sends it with one PutObject). Until then nothing is visible at the key,
// and Cancel aborts the upload. Memory: one chunk, and a second one while
// a part is sent in the background (pipe.go).
//
// A file whose size is known and above one chunk is streamed instead:
// each part is one PutObjectPart request whose body is fed by Write as the
// bytes arrive (an io.Pipe), so nothing is held in memory, and the parts
// are multipartcopychunksize (32 MiB) or more, as a Move makes them: S3
// servers read large objects made of larger parts faster.
//
// Unlike a writer's segments, parts can't be read back or resumed; it is
// for a body whose digest is known before it is sent, which the registry
// checks before it commits.
type stagedWriter struct {
	ctx   context.Context
	d     *Driver
	path  string
	key   string
	id    string // multipart upload id; "" until the first part
	parts []minio.CompletePart
	buf   []byte
	size  int64
	done  bool
	// pipe sends parts in the background (the last of parts may be in
	// flight); broken is the error of one that failed.
	pipe   pipe
	broken error

	// Streaming (total >= 0): the announced size, the size of every
	// part but the last, and the part being sent.
	total, partSize int64
	cur             *streamPart
}

// streamPart is a part whose body is being written.
type streamPart struct {
	pw   *io.PipeWriter
	left int64 // bytes still to write into it
	done chan struct{}
	etag string
	err  error
}

// StagedWriter implements driver.Stager.
func (d *Driver) StagedWriter(ctx context.Context, path string, size int64) (driver.FileWriter, error) {
	if path == "/" {
		return nil, &driver.InvalidPathError{Path: path, Driver: Name, Reason: "the root is a directory"}
	}
	w := &stagedWriter{ctx: ctx, d: d, path: path, key: d.keys.key(path), pipe: pipe{d: d}, total: -1}
	if size > d.cfg.ChunkSize {
		w.total = size
		w.partSize = max(d.cfg.MultipartCopyChunkSize, d.cfg.ChunkSize, (size+maxParts-1)/maxParts)
	}
	return w, nil
}

// writeStream sends p into the parts of a streamed file.
func (w *stagedWriter) writeStream(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.size >= w.total {
			w.broken = fmt.Errorf("s3: write %s: more than the %d bytes announced", w.path, w.total)
			return n, w.broken
		}
		if w.cur == nil {
			if err := w.startPart(); err != nil {
				w.broken = err
				return n, err
			}
		}
		sp := w.cur
		k, err := sp.pw.Write(p[:min(int64(len(p)), sp.left)])
		p, n, w.size, sp.left = p[k:], n+k, w.size+int64(k), sp.left-int64(k)
		switch {
		case err != nil:
			// The request ended early; its own error says why (the
			// transport may have closed the body first, which is all
			// the write saw).
			<-sp.done
			if sp.err != nil {
				err = sp.err
			}
		case sp.left == 0:
			err = w.endPart()
		}
		if err != nil {
			w.broken = w.d.fail("write", w.path, err)
			return n, w.broken
		}
	}
	return n, nil
}

// startPart starts the next part's request (and the upload, first).
func (w *stagedWriter) startPart() error {
	if w.id == "" {
		id, err := w.d.core.NewMultipartUpload(w.ctx, w.d.cfg.Bucket, w.key, w.d.putOptions())
		if err != nil {
			return w.d.fail("start upload of", w.path, err)
		}
		w.id = id
	}
	n := len(w.parts) + 1
	size := min(w.partSize, w.total-w.size)
	pr, pw := io.Pipe()
	sp := &streamPart{pw: pw, left: size, done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		op, err := w.d.core.PutObjectPart(w.ctx, w.d.cfg.Bucket, w.key, w.id, n, pr, size, minio.PutObjectPartOptions{})
		sp.etag, sp.err = op.ETag, err
		if err == nil {
			err = io.ErrClosedPipe // the request is over: no more bytes
		}
		_ = pr.CloseWithError(err) // unblocks a Write the request no longer reads
	}()
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n})
	w.cur = sp
	return nil
}

// dropPart ends the part being sent, if any, without its bytes, so that
// its request fails and ends.
func (w *stagedWriter) dropPart() {
	if sp := w.cur; sp != nil {
		w.cur = nil
		_ = sp.pw.CloseWithError(errors.New("s3: staged write cancelled"))
		<-sp.done
	}
}

// endPart ends the body of the part being sent and waits for its answer.
func (w *stagedWriter) endPart() error {
	sp := w.cur
	w.cur = nil
	_ = sp.pw.Close()
	<-sp.done
	if sp.err != nil {
		return sp.err
	}
	w.parts[len(w.parts)-1].ETag = sp.etag
	return nil
}

func (w *stagedWriter) Size() int64 { return w.size }

func (w *stagedWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("s3: write to closed writer %s", w.path)
	}
	if w.broken != nil {
		return 0, w.broken
	}
	if w.total >= 0 {
		return w.writeStream(p)
	}
	chunk := int(w.d.cfg.ChunkSize)
	n := 0
	for len(p) > 0 {
		k := min(chunk-len(w.buf), len(p))
		w.buf = grow(w.buf, k, chunk)
		w.buf = append(w.buf, p[:k]...)
		p, n, w.size = p[k:], n+k, w.size+int64(k)
		if len(w.buf) == chunk {
			if err := w.sendPart(w.ctx); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// sendPart sends the buffer as the next part, starting the upload first,
// in the background when the pipe can take it.
func (w *stagedWriter) sendPart(ctx context.Context) error {
	if err := w.settle(); err != nil {
		return err
	}
	if w.id == "" {
		id, err := w.d.core.NewMultipartUpload(ctx, w.d.cfg.Bucket, w.key, w.d.putOptions())
		if err != nil {
			return w.d.fail("start upload of", w.path, err)
		}
		w.id = id
	}
	n := len(w.parts) + 1
	if n > maxParts {
		return fmt.Errorf("s3: write %s: more than %d parts: raise chunksize", w.path, maxParts)
	}
	put := func(b []byte) (string, error) {
		op, err := w.d.core.PutObjectPart(ctx, w.d.cfg.Bucket, w.key, w.id, n, bytes.NewReader(b), int64(len(b)), minio.PutObjectPartOptions{})
		return op.ETag, err
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n})
	if next := w.pipe.start(w.buf, put); next != nil {
		w.buf = next
		return nil
	}
	etag, err := put(w.buf)
	if err != nil {
		w.broken = w.d.fail("write", w.path, err)
		return w.broken
	}
	w.parts[n-1].ETag = etag
	w.buf = w.buf[:0]
	return nil
}

// settle waits for the part in flight; a failure breaks the writer.
func (w *stagedWriter) settle() error {
	if w.broken != nil {
		return w.broken
	}
	etag, flew, err := w.pipe.wait()
	if !flew {
		return nil
	}
	if err != nil {
		w.broken = w.d.fail("write", w.path, err)
		return w.broken
	}
	w.parts[len(w.parts)-1].ETag = etag
	return nil
}

// Close abandons the file: a staged write can't be resumed.
func (w *stagedWriter) Close() error {
	return w.Cancel(context.WithoutCancel(w.ctx))
}

func (w *stagedWriter) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("s3: commit of closed writer %s", w.path)
	}
	w.done = true
	defer func() { w.pipe.release(); w.buf = nil }()
	if err := w.settle(); err != nil {
		w.abort(ctx)
		return err
	}
	if w.total >= 0 && w.size != w.total {
		w.dropPart()
		w.abort(ctx)
		return fmt.Errorf("s3: commit %s: %d bytes written of the %d announced", w.path, w.size, w.total)
	}
	if w.id == "" {
		_, err := w.d.core.PutObject(ctx, w.d.cfg.Bucket, w.key, bytes.NewReader(w.buf), int64(len(w.buf)), "", "", w.d.putOptions())
		return w.d.fail("put", w.path, err)
	}
	if len(w.buf) > 0 {
		err := w.sendPart(ctx)
		if err == nil {
			err = w.settle()
		}
		if err != nil {
			w.abort(ctx)
			return err
		}
	}
	if _, err := w.d.core.CompleteMultipartUpload(ctx, w.d.cfg.Bucket, w.key, w.id, w.parts, minio.PutObjectOptions{}); err != nil {
		w.abort(ctx)
		return w.d.fail("commit", w.path, err)
	}
	return nil
}

func (w *stagedWriter) Cancel(ctx context.Context) error {
	w.dropPart()
	w.pipe.release()
	w.done, w.buf = true, nil
	w.abort(ctx)
	return nil
}

// abort drops the multipart upload, if one was started. A failure leaves
// an incomplete upload that shows nowhere; PurgeStaged (upload purging)
// or a bucket lifecycle rule removes it later.
func (w *stagedWriter) abort(ctx context.Context) {
	if w.id == "" {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := w.d.core.AbortMultipartUpload(actx, w.d.cfg.Bucket, w.key, w.id); err != nil && !isNotFound(err) {
		w.d.cfg.Logger.WarnContext(ctx, "s3: aborting a multipart upload failed", "path", w.path, "err", err)
	}
	w.id = ""
}

// PurgeStaged implements driver.Stager: it aborts the multipart uploads
// below path started before cutoff. Besides those of staged writes and
// commits a crash cut short, these are registry:2's unfinished uploads,
// which its own purge would abort at the same age.
func (d *Driver) PurgeStaged(ctx context.Context, path string, cutoff time.Time, dryRun bool) (int, error) {
	prefix := d.keys.dirPrefix(path)
	n := 0
	keyMarker, idMarker := "", ""
	for {
		// The whole bucket, filtered here: MinIO lists a prefix only
		// when it is an object's whole key.
		res, err := d.core.ListMultipartUploads(ctx, d.cfg.Bucket, "", keyMarker, idMarker, "", 1000)
		if err != nil {
			return n, d.fail("list multipart uploads under", "/", err)
		}
		for _, u := range res.Uploads {
			if !strings.HasPrefix(u.Key, prefix) || !u.Initiated.Before(cutoff) {
				continue
			}
			if !dryRun {
				err := d.core.AbortMultipartUpload(ctx, d.cfg.Bucket, u.Key, u.UploadID)
				if err != nil && !isNotFound(err) {
					return n, d.fail("abort the multipart upload of", "/"+u.Key, err)
				}
			}
			n++
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return n, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

var (
	_ driver.Stager     = (*Driver)(nil)
	_ driver.FileWriter = (*stagedWriter)(nil)
)
