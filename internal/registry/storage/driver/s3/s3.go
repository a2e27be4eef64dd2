// Package s3 is a storage driver that keeps the registry in an S3 bucket
// (AWS, MinIO or any S3-compatible server), with the object keys
// distribution's S3 driver uses: a bucket written by registry:2 is served
// as is, and back.
//
// S3 has no directories: a directory is the set of keys with its prefix,
// listed with ListObjectsV2 and a "/" delimiter. Files being written are
// kept as segment objects beside the file's key (see keys.go and
// writer.go), so an upload survives a restart and any replica can resume
// it. Committing a file composes its segments into one object with a
// server-side multipart copy.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Name is the driver's config name.
const Name = "s3"

// RedirectExpiry is how long a presigned URL handed to a client is valid.
const RedirectExpiry = 20 * time.Minute

// contentType is the type of every object, as distribution stores them.
const contentType = "application/octet-stream"

// Driver stores files as objects in one bucket. It is safe for concurrent
// use and holds no state of its own besides its connections.
type Driver struct {
	cfg       Config
	keys      keyMap
	client    *minio.Client
	core      minio.Core
	presign   *minio.Client
	sse       encrypt.ServerSide
	transport *http.Transport
	endpoint  string        // scheme://host, for messages
	spares    chan struct{} // the second buffers of writers' pipes (pipe.go)
}

// New connects to the bucket cfg names and checks that it can be reached
// with the credentials given, so that a wrong secret, a wrong endpoint or
// a missing bucket stop the registry at start with a clear message.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	root, _ := rootPrefix(cfg.RootDirectory)
	d := &Driver{cfg: cfg, keys: keyMap{root: root}, spares: newSpares(cfg.ChunkSize)}
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	d.transport = tr
	rt := &roundTripper{next: tr, userAgent: cfg.UserAgent}
	if cfg.LogLevel != "off" {
		rt.log = cfg.Logger
	}
	host, secure := awsEndpoint(cfg), cfg.Secure
	if cfg.RegionEndpoint != "" {
		host, secure, _ = parseEndpoint(cfg.RegionEndpoint)
	}
	d.endpoint = map[bool]string{true: "https://", false: "http://"}[secure] + host
	if d.client, err = newClient(cfg, host, secure, rt); err != nil {
		return nil, fmt.Errorf("s3: endpoint %s: %w", d.endpoint, err)
	}
	d.core = minio.Core{Client: d.client}
	d.presign = d.client
	if cfg.RedirectEndpoint != "" {
		rhost, rsecure, _ := parseEndpoint(cfg.RedirectEndpoint)
		if d.presign, err = newClient(cfg, rhost, rsecure, rt); err != nil {
			return nil, fmt.Errorf("s3: redirectendpoint %s: %w", cfg.RedirectEndpoint, err)
		}
	}
	if cfg.Encrypt {
		if cfg.KeyID != "" {
			if d.sse, err = encrypt.NewSSEKMS(cfg.KeyID, nil); err != nil {
				return nil, fmt.Errorf("s3: keyid: %w", err)
			}
		} else {
			d.sse = encrypt.NewSSE()
		}
	}
	if err := d.checkBucket(ctx); err != nil {
		d.transport.CloseIdleConnections()
		return nil, err
	}
	return d, nil
}

// checkBucket makes one authenticated call to the bucket.
func (d *Driver) checkBucket(ctx context.Context) error {
	where := fmt.Sprintf("bucket %q at %s", d.cfg.Bucket, d.endpoint)
	ok, err := d.client.BucketExists(ctx, d.cfg.Bucket)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) {
			switch er.Code {
			case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
				return fmt.Errorf("s3: %s: access refused (%s): check accesskey and secretkey (or the AWS credentials in the environment) and the bucket's policy", where, er.Code)
			}
		}
		return fmt.Errorf("s3: %s: %w", where, err)
	}
	if !ok {
		return fmt.Errorf("s3: %s does not exist: create it, or fix storage.s3.bucket and regionendpoint", where)
	}
	return nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Close releases idle connections.
func (d *Driver) Close() error {
	d.transport.CloseIdleConnections()
	return nil
}

// fail turns an S3 error into the driver's errors: a missing key is a
// *driver.PathNotFoundError, anything else names the bucket and path.
func (d *Driver) fail(op, path string, err error) error {
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return &driver.PathNotFoundError{Path: path, Driver: Name}
	}
	if isUnavailable(err) {
		return fmt.Errorf("s3: %s %s in bucket %q at %s: %w: %w", op, path, d.cfg.Bucket, d.endpoint, driver.ErrUnavailable, err)
	}
	return fmt.Errorf("s3: %s %s in bucket %q: %w", op, path, d.cfg.Bucket, err)
}

// isUnavailable reports whether err says the service could not be reached
// or failed on its side (a connection refused or reset, a timeout, a 5xx,
// SlowDown), as opposed to refusing the request itself (a 4xx): the same
// request may succeed later.
func isUnavailable(err error) bool {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch er.Code {
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized":
			return true
		}
		return er.StatusCode >= 500
	}
	if errors.Is(err, context.Canceled) {
		return false // the caller went away; nothing is wrong with S3
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Ping implements driver.Pinger: one authenticated call about the bucket,
// whose error names the bucket and endpoint (never the credentials).
func (d *Driver) Ping(ctx context.Context) error {
	ok, err := d.client.BucketExists(ctx, d.cfg.Bucket)
	switch {
	case err != nil && isUnavailable(err):
		return fmt.Errorf("s3: bucket %q at %s: %w: %w", d.cfg.Bucket, d.endpoint, driver.ErrUnavailable, err)
	case err != nil:
		return fmt.Errorf("s3: bucket %q at %s: %w", d.cfg.Bucket, d.endpoint, err)
	case !ok:
		return fmt.Errorf("s3: bucket %q at %s does not exist", d.cfg.Bucket, d.endpoint)
	}
	return nil
}

func isNotFound(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	return er.Code == "NoSuchKey" || (er.StatusCode == http.StatusNotFound && er.Code != "NoSuchBucket" && er.Code != "NoSuchUpload")
}

func isInvalidRange(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.Code == "InvalidRange" || er.StatusCode == http.StatusRequestedRangeNotSatisfiable)
}

// putOptions are the options of every object the driver creates.
func (d *Driver) putOptions() minio.PutObjectOptions {
	o := minio.PutObjectOptions{ContentType: contentType, ServerSideEncryption: d.sse}
	if d.cfg.StorageClass != "NONE" {
		o.StorageClass = d.cfg.StorageClass
	}
	o.UserMetadata = map[string]string{"x-amz-acl": d.cfg.ObjectACL}
	return o
}

// copyHeaders are the headers of a CopyObject creating a new object with
// the same options as putOptions.
func (d *Driver) copyHeaders() map[string]string {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	h.Set("x-amz-metadata-directive", "REPLACE")
	h.Set("x-amz-acl", d.cfg.ObjectACL)
	if d.cfg.StorageClass != "NONE" {
		h.Set("x-amz-storage-class", d.cfg.StorageClass)
	}
	if d.sse != nil {
		d.sse.Marshal(h)
	}
	m := make(map[string]string, len(h))
	for k := range h {
		m[k] = h.Get(k)
	}
	return m
}

// list iterates over the keys (and, when delimited, common prefixes) with
// prefix. It stops on the first error, which it yields last; a cancelled
// ctx is such an error.
func (d *Driver) list(ctx context.Context, prefix string, recursive bool, maxKeys int) iter.Seq2[minio.ObjectInfo, error] {
	return func(yield func(minio.ObjectInfo, error) bool) {
		opts := minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive, MaxKeys: maxKeys}
		f := false
		opts.FetchOwner = &f
		for oi := range d.client.ListObjectsIter(ctx, d.cfg.Bucket, opts) {
			if oi.Err != nil {
				yield(oi, oi.Err)
				return
			}
			if !yield(oi, nil) {
				return
			}
		}
		if err := ctx.Err(); err != nil {
			yield(minio.ObjectInfo{}, err)
		}
	}
}

// GetContent implements driver.Driver.
func (d *Driver) GetContent(ctx context.Context, path string) ([]byte, error) {
	rc, err := d.Reader(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, d.fail("read", path, err)
	}
	return b, nil
}

// PutContent implements driver.Driver: one PutObject, which S3 makes
// visible whole or not at all.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	_, err := d.core.PutObject(ctx, d.cfg.Bucket, d.keys.key(path), bytes.NewReader(content), int64(len(content)), "", "", d.putOptions())
	return d.fail("put", path, err)
}

// Reader implements driver.Driver. A file being written is read from its
// segments.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if offset > 0 {
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, err
		}
	}
	rc, _, _, err := d.core.GetObject(ctx, d.cfg.Bucket, d.keys.key(path), opts)
	switch {
	case err == nil:
		return rc, nil
	case isInvalidRange(err):
		fi, serr := d.Stat(ctx, path)
		if serr != nil {
			return nil, serr
		}
		if !fi.IsDir() && fi.Size() == offset {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, &driver.InvalidOffsetError{Path: path, Offset: offset, Driver: Name}
	case !isNotFound(err):
		return nil, d.fail("get", path, err)
	}
	segs, err := d.segments(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, &driver.PathNotFoundError{Path: path, Driver: Name}
	}
	last := segs[len(segs)-1]
	if offset > last.off+last.size {
		return nil, &driver.InvalidOffsetError{Path: path, Offset: offset, Driver: Name}
	}
	return &segmentReader{ctx: ctx, d: d, path: path, segs: segs, pos: offset}, nil
}

// segment is one stored piece of a file being written.
type segment struct {
	key       string
	off, size int64
	mod       time.Time
	etag      string // as listed or stored; "" when unknown
}

// copyCond is the condition of a server-side copy of s: the source must
// still be the version listed (or stored), so that a segment another
// process replaced meanwhile (a tail it grew) is never copied unchecked.
func (s segment) copyCond() map[string]string {
	if s.etag == "" {
		return nil
	}
	return map[string]string{"x-amz-copy-source-if-match": s.etag}
}

// segments lists the segments of the file being written at path, in
// order, as far as they follow each other from offset 0. Segments past a
// gap (left by a writer that lost a race) are not part of the file.
func (d *Driver) segments(ctx context.Context, path string) ([]segment, error) {
	dir := d.keys.stateDir(path)
	var all []segment
	for oi, err := range d.list(ctx, dir, true, 0) {
		if err != nil {
			return nil, d.fail("list segments of", path, err)
		}
		if off, ok := segmentOffset(dir, oi.Key); ok {
			all = append(all, segment{key: oi.Key, off: off, size: oi.Size, mod: oi.LastModified, etag: oi.ETag})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].off < all[j].off })
	var chain []segment
	var end int64
	for _, s := range all {
		if s.off != end {
			break
		}
		chain = append(chain, s)
		end += s.size
		if s.size == 0 {
			break
		}
	}
	if len(chain) == 0 && len(all) > 0 {
		return nil, fmt.Errorf("s3: the upload state of %s in bucket %q does not start at offset 0; delete %s to discard it", path, d.cfg.Bucket, dir)
	}
	return chain, nil
}

// segmentReader reads a file being written, one ranged GET per segment.
type segmentReader struct {
	ctx  context.Context
	d    *Driver
	path string
	segs []segment
	pos  int64
	cur  io.ReadCloser
	end  int64 // file offset where cur ends
}

func (r *segmentReader) Read(p []byte) (int, error) {
	for {
		if r.cur != nil {
			n, err := r.cur.Read(p)
			r.pos += int64(n)
			if errors.Is(err, io.EOF) || r.pos >= r.end {
				_ = r.cur.Close()
				r.cur = nil
				if r.pos < r.end {
					return n, fmt.Errorf("s3: segment of %s ended early at %d", r.path, r.pos)
				}
				err = nil
			}
			if n > 0 || err != nil {
				return n, r.d.fail("read", r.path, err)
			}
			continue
		}
		i := slices.IndexFunc(r.segs, func(s segment) bool { return r.pos >= s.off && r.pos < s.off+s.size })
		if i < 0 {
			return 0, io.EOF
		}
		s := r.segs[i]
		var opts minio.GetObjectOptions
		if r.pos > s.off {
			if err := opts.SetRange(r.pos-s.off, 0); err != nil {
				return 0, err
			}
		}
		rc, _, _, err := r.d.core.GetObject(r.ctx, r.d.cfg.Bucket, s.key, opts)
		if err != nil {
			return 0, r.d.fail("get", r.path, err)
		}
		r.cur, r.end = rc, s.off+s.size
	}
}

func (r *segmentReader) Close() error {
	if r.cur != nil {
		err := r.cur.Close()
		r.cur = nil
		return err
	}
	return nil
}

type fileInfo struct {
	path string
	size int64
	mod  time.Time
	dir  bool
}

func (f fileInfo) Path() string       { return f.path }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) ModTime() time.Time { return f.mod }
func (f fileInfo) IsDir() bool        { return f.dir }

// Stat implements driver.Driver: the object, else the file being
// written, else the directory (any key below the path).
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path == "/" {
		return fileInfo{path: path, dir: true}, nil
	}
	oi, err := d.client.StatObject(ctx, d.cfg.Bucket, d.keys.key(path), minio.StatObjectOptions{})
	if err == nil {
		return fileInfo{path: path, size: oi.Size, mod: oi.LastModified}, nil
	}
	if !isNotFound(err) {
		return nil, d.fail("stat", path, err)
	}
	segs, err := d.segments(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		fi := fileInfo{path: path}
		for _, s := range segs {
			fi.size += s.size
			if s.mod.After(fi.mod) {
				fi.mod = s.mod
			}
		}
		return fi, nil
	}
	for oi, err := range d.list(ctx, d.keys.dirPrefix(path), false, 1) {
		if err != nil {
			return nil, d.fail("stat", path, err)
		}
		// S3 has no directory times: the first entry's is a stand-in.
		return fileInfo{path: path, dir: true, mod: oi.LastModified}, nil
	}
	return nil, &driver.PathNotFoundError{Path: path, Driver: Name}
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, path string) ([]string, error) {
	prefix := d.keys.dirPrefix(path)
	seen := map[string]bool{}
	for oi, err := range d.list(ctx, prefix, false, 0) {
		if err != nil {
			return nil, d.fail("list", path, err)
		}
		if name, kind := classify(strings.TrimPrefix(oi.Key, prefix)); kind != entryNone {
			seen[name] = true
		}
	}
	if len(seen) == 0 && path != "/" {
		return nil, &driver.PathNotFoundError{Path: path, Driver: Name}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, childPath(path, name))
	}
	sort.Strings(out)
	return out, nil
}

// Move implements driver.Driver: a server-side copy (a multipart copy in
// parallel parts above multipartcopythresholdsize), then the source is
// deleted. Unlike a rename it is not atomic, but dst only ever holds the
// old content or the whole new one.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	return d.move(ctx, src, dst, -1)
}

// MoveExact implements driver.ExactMover: Move, but only when src holds
// size bytes, and copying only the object version it measured (every copy
// request carries x-amz-copy-source-if-match with the ETag it saw). If
// another writer replaces src in between (another replica committing more
// bytes), the copy fails with driver.ErrChanged instead of moving bytes
// that were never checked.
func (d *Driver) MoveExact(ctx context.Context, src, dst string, size int64) error {
	return d.move(ctx, src, dst, size)
}

func (d *Driver) move(ctx context.Context, src, dst string, want int64) error {
	oi, err := d.client.StatObject(ctx, d.cfg.Bucket, d.keys.key(src), minio.StatObjectOptions{})
	if err != nil {
		return d.fail("move", src, err)
	}
	if want >= 0 && oi.Size != want {
		return fmt.Errorf("s3: move %s: %w (%d bytes, expected %d)", src, driver.ErrChanged, oi.Size, want)
	}
	var cond map[string]string
	if want >= 0 && oi.ETag != "" {
		cond = map[string]string{"x-amz-copy-source-if-match": oi.ETag}
	}
	srcKey, dstKey := d.keys.key(src), d.keys.key(dst)
	if oi.Size <= d.cfg.MultipartCopyThresholdSize {
		hdr := d.copyHeaders()
		maps.Copy(hdr, cond)
		_, err = d.core.CopyObject(ctx, d.cfg.Bucket, srcKey, d.cfg.Bucket, dstKey, hdr, minio.CopySrcOptions{}, minio.PutObjectOptions{})
	} else {
		chunk := d.cfg.MultipartCopyChunkSize
		if n := (oi.Size + chunk - 1) / chunk; n > maxParts {
			chunk = (oi.Size + maxParts - 1) / maxParts
		}
		var parts []copyPart
		for off := int64(0); off < oi.Size; off += chunk {
			parts = append(parts, copyPart{key: srcKey, off: off, size: min(chunk, oi.Size-off), cond: cond})
		}
		err = d.compose(ctx, dstKey, parts, nil)
	}
	if err != nil {
		if isPreconditionFailed(err) {
			return fmt.Errorf("s3: move %s: %w (its ETag is no longer %s)", src, driver.ErrChanged, oi.ETag)
		}
		return d.fail("copy to "+dst+" from", src, err)
	}
	err = d.client.RemoveObject(ctx, d.cfg.Bucket, srcKey, minio.RemoveObjectOptions{})
	if err != nil && !isNotFound(err) {
		return d.fail("delete moved", src, err)
	}
	return nil
}

func isPreconditionFailed(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed)
}

// copyPart is a byte range of an object to copy into a new one.
type copyPart struct {
	key       string
	off, size int64             // size < 0: the whole object
	cond      map[string]string // extra headers of the copy (a source condition)
}

// compose builds dstKey with a multipart upload from parts (server-side
// copies, multipartcopymaxconcurrency at a time) followed by tail (sent
// from memory) when it is not empty. Every part but the last must be at
// least 5 MiB. On failure the multipart upload is aborted.
func (d *Driver) compose(ctx context.Context, dstKey string, parts []copyPart, tail []byte) error {
	n := len(parts)
	if len(tail) > 0 {
		n++
	}
	if n > maxParts {
		return fmt.Errorf("%d parts are more than S3's limit of %d: raise chunksize", n, maxParts)
	}
	id, err := d.core.NewMultipartUpload(ctx, d.cfg.Bucket, dstKey, d.putOptions())
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = d.core.AbortMultipartUpload(actx, d.cfg.Bucket, dstKey, id)
		}
	}()
	complete := make([]minio.CompletePart, n)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, d.cfg.MultipartCopyMaxConcurrency)
	for i, p := range parts {
		select {
		case sem <- struct{}{}:
		case <-cctx.Done():
		}
		if cctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cp, err := d.core.CopyObjectPart(cctx, d.cfg.Bucket, p.key, d.cfg.Bucket, dstKey, id, i+1, p.off, p.size, p.cond)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
				return
			}
			complete[i] = cp
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(tail) > 0 {
		op, err := d.core.PutObjectPart(ctx, d.cfg.Bucket, dstKey, id, n, bytes.NewReader(tail), int64(len(tail)), minio.PutObjectPartOptions{})
		if err != nil {
			return err
		}
		complete[n-1] = minio.CompletePart{PartNumber: n, ETag: op.ETag}
	}
	if _, err := d.core.CompleteMultipartUpload(ctx, d.cfg.Bucket, dstKey, id, complete, minio.PutObjectOptions{}); err != nil {
		return err
	}
	done = true
	return nil
}

// Delete implements driver.Driver: the object, the file being written
// there and every key below the path, in batches of 1,000
// (RemoveObjects).
func (d *Driver) Delete(ctx context.Context, path string) error {
	key := d.keys.key(path)
	var listErr error
	found := false
	objects := func(yield func(minio.ObjectInfo) bool) {
		if _, err := d.client.StatObject(ctx, d.cfg.Bucket, key, minio.StatObjectOptions{}); err == nil {
			found = true
			if !yield(minio.ObjectInfo{Key: key}) {
				return
			}
		} else if !isNotFound(err) {
			listErr = err
			return
		}
		for _, prefix := range []string{key + "/", d.keys.stateDir(path)} {
			for oi, err := range d.list(ctx, prefix, true, 0) {
				if err != nil {
					listErr = err
					return
				}
				found = true
				if !yield(minio.ObjectInfo{Key: oi.Key}) {
					return
				}
			}
		}
	}
	delErr := d.removeObjects(ctx, objects)
	switch {
	case listErr != nil:
		return d.fail("delete", path, listErr)
	case delErr != nil:
		return d.fail("delete", path, delErr)
	case ctx.Err() != nil:
		return d.fail("delete", path, ctx.Err())
	case !found:
		return &driver.PathNotFoundError{Path: path, Driver: Name}
	}
	return nil
}

// removeObjects deletes the keys objects yields, in batches of 1,000
// (RemoveObjects), and returns the first failure other than a key already
// gone, naming the key.
func (d *Driver) removeObjects(ctx context.Context, objects iter.Seq[minio.ObjectInfo]) error {
	results, err := d.client.RemoveObjectsWithIter(ctx, d.cfg.Bucket, objects, minio.RemoveObjectsOptions{})
	if err != nil {
		return err
	}
	var first error
	for r := range results {
		if r.Err != nil && first == nil && !isNotFound(r.Err) {
			first = fmt.Errorf("%s: %w", r.ObjectName, r.Err)
		}
	}
	return first
}

// walkNode is a file or directory seen in a recursive listing.
type walkNode struct {
	dir       bool
	committed bool
	size      int64
	mod       time.Time
	children  map[string]*walkNode
}

// Walk implements driver.Driver with one recursive listing (1,000 keys a
// call). The entries are sorted depth first, so the listing of the path
// is held in memory (about 100 bytes a key) before fn is called.
func (d *Driver) Walk(ctx context.Context, path string, fn driver.WalkFn) error {
	prefix := d.keys.dirPrefix(path)
	root := &walkNode{dir: true, children: map[string]*walkNode{}}
	for oi, err := range d.list(ctx, prefix, true, 0) {
		if err != nil {
			return d.fail("walk", path, err)
		}
		comps, writing, ok := splitWalkKey(strings.TrimPrefix(oi.Key, prefix))
		if !ok {
			continue
		}
		n := root
		for i, c := range comps {
			child := n.children[c]
			if child == nil {
				child = &walkNode{}
				n.children[c] = child
			}
			n = child
			if i < len(comps)-1 {
				if !n.dir {
					n.dir, n.children = true, map[string]*walkNode{}
				}
				if oi.LastModified.After(n.mod) {
					n.mod = oi.LastModified
				}
			}
		}
		switch {
		case n.dir:
		case writing && !n.committed:
			n.size += oi.Size
			if oi.LastModified.After(n.mod) {
				n.mod = oi.LastModified
			}
		case !writing:
			n.committed, n.size, n.mod = true, oi.Size, oi.LastModified
		}
	}
	if len(root.children) == 0 && path != "/" {
		if _, err := d.Stat(ctx, path); err != nil {
			return err
		}
		return nil
	}
	return walkTree(ctx, path, root, fn)
}

func walkTree(ctx context.Context, dir string, n *walkNode, fn driver.WalkFn) error {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := n.children[name]
		p := childPath(dir, name)
		fi := fileInfo{path: p, mod: c.mod, dir: c.dir}
		if !c.dir {
			fi.size = c.size
		}
		err := fn(fi)
		if c.dir && errors.Is(err, driver.ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if c.dir {
			if err := walkTree(ctx, p, c, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// RedirectURL implements driver.Redirector: a presigned GET (or HEAD) URL,
// valid for RedirectExpiry, on redirectendpoint when it is set.
func (d *Driver) RedirectURL(r *http.Request, path string) (string, error) {
	var method string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		method = r.Method
	default:
		return "", nil
	}
	u, err := d.presign.Presign(r.Context(), method, d.cfg.Bucket, d.keys.key(path), RedirectExpiry, nil)
	if err != nil {
		return "", d.fail("presign", path, err)
	}
	return u.String(), nil
}

var (
	_ driver.Driver     = (*Driver)(nil)
	_ driver.Redirector = (*Driver)(nil)
	_ driver.ExactMover = (*Driver)(nil)
	_ driver.Pinger     = (*Driver)(nil)
	_ io.Closer         = (*Driver)(nil)
)
