package storage

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/reference"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
)

// copyBufferSize is the chunk size used to stream uploads to the driver.
const copyBufferSize = 1 << 20

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// Upload is a blob upload in progress. Its state lives in storage (data,
// startedat and the running sha256 state under the upload's directory),
// so it survives a restart and can be resumed by any replica. An Upload
// value belongs to one request; operations on the same upload id are
// serialised within a process, and Commit is safe against other processes
// (see Commit).
type Upload struct {
	repo      *Repository
	id        string
	startedAt time.Time
	size      int64
	h         hash.Hash // sha256 over the first size bytes; nil = unknown
}

func (u *Upload) dir() string      { return uploadDir(u.repo.name, u.id) }
func (u *Upload) dataPath() string { return u.dir() + "/data" }
func (u *Upload) statePath(size int64) string {
	return u.dir() + "/hashstates/" + string(digest.SHA256) + "/" + strconv.FormatInt(size, 10)
}

// uploadLocks hands out one mutex per upload id. An entry lives only
// while some operation holds or waits for it, so uploads that are never
// committed or cancelled (abandoned, then purged by PurgeUploads, possibly
// from another process) leave nothing behind in a long-running registry.
type uploadLocks struct {
	mu sync.Mutex
	m  map[string]*uploadLock
}

type uploadLock struct {
	mu   sync.Mutex
	refs int // operations holding or waiting for mu; guarded by uploadLocks.mu
}

// lock locks upload id and returns the unlock function.
func (l *uploadLocks) lock(id string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*uploadLock)
	}
	e := l.m[id]
	if e == nil {
		e = &uploadLock{}
		l.m[id] = e
	}
	e.refs++
	l.mu.Unlock()

	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}

// len returns the number of upload ids with a lock entry.
func (l *uploadLocks) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

func (r *Registry) lockUpload(id string) func() {
	return r.uploadLocks.lock(id)
}

func uploadUnknown(id string) error {
	return errorf(ErrBlobUploadUnknown, map[string]any{"uuid": id}, "blob upload unknown to registry")
}

// NewUpload starts an upload.
func (r *Repository) NewUpload(ctx context.Context) (*Upload, error) {
	if err := r.reg.writable(); err != nil {
		return nil, err
	}
	u := &Upload{repo: r, id: uuid.NewString(), startedAt: time.Now().UTC().Truncate(time.Second), h: sha256.New()}
	if err := u.create(ctx); err != nil {
		// Leave nothing behind (a full disk fails here): the client
		// never learns the id, so nothing would ever cancel it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := r.reg.d.Delete(cctx, u.dir()); derr != nil && !driver.IsNotFound(derr) {
			r.reg.log.WarnContext(ctx, "removing an upload that failed to start failed", "repository", r.name, "upload", u.id, "err", derr)
		}
		return nil, err
	}
	return u, nil
}

// create writes a new upload's empty data and its start time.
func (u *Upload) create(ctx context.Context) error {
	d := u.repo.reg.d
	w, err := d.Writer(ctx, u.dataPath(), false)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return d.PutContent(ctx, u.dir()+"/startedat", []byte(u.startedAt.Format(time.RFC3339)))
}

// ResumeUpload reopens upload id, or returns ErrBlobUploadUnknown.
func (r *Repository) ResumeUpload(ctx context.Context, id string) (*Upload, error) {
	if reference.ValidateUploadID(id) != nil {
		return nil, uploadUnknown(id)
	}
	u := &Upload{repo: r, id: id}
	b, err := r.reg.d.GetContent(ctx, u.dir()+"/startedat")
	if err != nil {
		if driver.IsNotFound(err) {
			return nil, uploadUnknown(id)
		}
		return nil, err
	}
	u.startedAt, err = time.Parse(time.RFC3339, string(b))
	if err != nil {
		r.reg.log.WarnContext(ctx, "upload has an unreadable startedat", "repository", r.name, "upload", id)
	}
	if err := u.load(ctx); err != nil {
		return nil, err
	}
	return u, nil
}

// load reads the data size and the hash state matching it, if any.
func (u *Upload) load(ctx context.Context) error {
	fi, err := u.repo.reg.d.Stat(ctx, u.dataPath())
	if err != nil {
		if driver.IsNotFound(err) {
			return uploadUnknown(u.id)
		}
		return err
	}
	u.size, u.h = fi.Size(), nil
	if u.size == 0 {
		u.h = sha256.New()
		return nil
	}
	state, err := u.repo.reg.d.GetContent(ctx, u.statePath(u.size))
	if err != nil {
		if driver.IsNotFound(err) {
			return nil // re-hash when needed
		}
		return err
	}
	h := sha256.New()
	// A state that is not ours (registry:2 keeps another format) leaves
	// u.h nil: the data is re-hashed when needed.
	if h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state) == nil {
		u.h = h
	}
	return nil
}

// ID returns the upload's id.
func (u *Upload) ID() string { return u.id }

// Size returns the number of bytes received so far.
func (u *Upload) Size() int64 { return u.size }

// StartedAt returns when the upload started.
func (u *Upload) StartedAt() time.Time { return u.startedAt }

// Digest returns the sha256 digest of the upload's first Size bytes, as
// Append computed it while writing them, so a caller that streams a blob
// through Append need not hash it again. ok is false when the upload
// holds no running hash (an Append failed, or the upload was resumed
// without a saved state matching its data): only the data can tell then.
// Commit checks the digest whatever this returns.
func (u *Upload) Digest() (d digest.Digest, ok bool) {
	if u.h == nil {
		return "", false
	}
	return digest.NewDigest(digest.SHA256, u.h), true
}

// rehash computes alg over the upload's data by streaming it back.
func (u *Upload) rehash(ctx context.Context, alg digest.Algorithm, size int64) (hash.Hash, error) {
	h := alg.Hash()
	rc, err := u.repo.reg.d.Reader(ctx, u.dataPath(), 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(h, io.LimitReader(rc, size), *buf)
	if err != nil {
		return nil, err
	}
	if n != size {
		return nil, fmt.Errorf("upload %s: data shorter than expected (%d < %d)", u.id, n, size)
	}
	return h, nil
}

// OpenData opens the upload's data read-only when the driver's files are
// local (driver.LocalFiler), or returns nil when they are not. The file
// follows Append: Append reads more from its reader only once the bytes
// of the previous read are written, and a LocalFiler's writes are in the
// file when they return, so a caller that feeds Append can let others
// read what it fed so far from this file without a copy of its own.
func (u *Upload) OpenData() (*os.File, error) {
	lf, ok := u.repo.reg.d.(driver.LocalFiler)
	if !ok {
		return nil, nil
	}
	return lf.LocalFile(u.dataPath())
}

// Append streams from into the upload, hashing as it goes, and returns
// the number of bytes written. On an error the bytes written so far stay
// (Size tells how many); the upload can be resumed from there. from is
// read again only once what the previous read returned is written.
func (u *Upload) Append(ctx context.Context, from io.Reader) (int64, error) {
	if err := u.repo.reg.writable(); err != nil {
		return 0, err
	}
	defer u.repo.reg.lockUpload(u.id)()
	d := u.repo.reg.d
	w, err := d.Writer(ctx, u.dataPath(), true)
	if err != nil {
		return 0, err
	}
	if w.Size() != u.size || u.h == nil {
		// Another request appended since we loaded, or no hash state
		// matched: start from what is stored.
		_ = w.Close()
		if err := u.load(ctx); err != nil {
			return 0, err
		}
		if u.h == nil {
			if u.h, err = u.rehash(ctx, digest.SHA256, u.size); err != nil {
				return 0, err
			}
		}
		if w, err = d.Writer(ctx, u.dataPath(), true); err != nil {
			return 0, err
		}
	}
	prevSize := u.size
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, copyErr := io.CopyBuffer(io.MultiWriter(w, u.h), readerOnly{from}, *buf)
	closeErr := w.Close()
	u.size = w.Size()
	if copyErr != nil || closeErr != nil || u.size != prevSize+n {
		u.h = nil // the state may not match the data any more
		return n, errors.Join(copyErr, closeErr)
	}
	if u.size == prevSize {
		return 0, nil
	}
	state, err := u.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return n, err
	}
	// The state only saves a re-hash: a missing or damaged one is
	// recomputed from the data (load, Commit), so it is written without
	// waiting for stable storage. The data itself is flushed at Commit.
	if err := putScratch(ctx, d, u.statePath(u.size), state); err != nil {
		return n, err
	}
	if prevSize > 0 {
		if err := d.Delete(ctx, u.statePath(prevSize)); err != nil && !driver.IsNotFound(err) {
			return n, err
		}
	}
	return n, nil
}

// readerOnly hides a WriterTo/ReaderFrom so io.CopyBuffer uses our buffer.
type readerOnly struct{ io.Reader }

// Commit verifies the content against dgst (any registered algorithm) and
// expectedSize (-1 = unknown), flushes it, moves it into place and links it
// into the repository. A mismatch leaves the upload in place
// (ErrDigestInvalid, ErrSizeInvalid) so the client may cancel it.
//
// Replicas sharing storage share no lock, so Commit is written to be safe
// against another process working on the same upload at the same moment:
//
//   - The digest is checked over exactly the bytes that are moved: the
//     flush and the move both refuse to go on when the data no longer has
//     the size that was hashed (another replica appended to it), and the
//     move copies only the version of the data it measured
//     (driver.ExactMover, or driver.TargetCommitter where the data is
//     composed straight at the blob's path).
//   - Two commits of the same upload (a client retrying its PUT through a
//     load balancer) both succeed when the blob ends up in place: blobs are
//     content-addressed, so a commit that finds its data gone, or changed,
//     but the blob already stored with the verified size, only links it.
func (u *Upload) Commit(ctx context.Context, dgst digest.Digest, expectedSize int64) (Descriptor, error) {
	if err := u.repo.reg.writable(); err != nil {
		return Descriptor{}, err
	}
	if err := checkDigest(dgst); err != nil {
		return Descriptor{}, err
	}
	defer u.repo.reg.lockUpload(u.id)()
	d := u.repo.reg.d
	fi, err := d.Stat(ctx, u.dataPath())
	if err != nil {
		if driver.IsNotFound(err) {
			return Descriptor{}, uploadUnknown(u.id)
		}
		return Descriptor{}, err
	}
	size := fi.Size()
	if expectedSize >= 0 && size != expectedSize {
		return Descriptor{}, errorf(ErrSizeInvalid, map[string]any{"size": size, "expected": expectedSize},
			"uploaded %d bytes, expected %d", size, expectedSize)
	}
	if size != u.size {
		if err := u.load(ctx); err != nil {
			return Descriptor{}, err
		}
	}
	var got digest.Digest
	if dgst.Algorithm() == digest.SHA256 && u.h != nil && u.size == size {
		got = digest.NewDigest(digest.SHA256, u.h)
	}
	if got != dgst {
		// No saved state, another algorithm, or a mismatch that a state
		// damaged by a power loss could explain: hash the data itself.
		h, err := u.rehash(ctx, dgst.Algorithm(), size)
		if err != nil {
			if driver.IsNotFound(err) {
				return u.committedElsewhere(ctx, Descriptor{MediaType: BlobMediaType, Digest: dgst, Size: size}, err)
			}
			return Descriptor{}, err
		}
		got = digest.NewDigest(dgst.Algorithm(), h)
	}
	if got != dgst {
		return Descriptor{}, errorf(ErrDigestInvalid, map[string]any{"digest": dgst.String()},
			"provided digest did not match uploaded content")
	}
	desc := Descriptor{MediaType: BlobMediaType, Digest: dgst, Size: size}
	// Flush the data before it becomes visible: exactly the size hashed.
	w, err := d.Writer(ctx, u.dataPath(), true)
	if err != nil {
		return u.committedElsewhere(ctx, desc, err)
	}
	if w.Size() != size {
		_ = w.Close()
		return u.committedElsewhere(ctx, desc, fmt.Errorf("upload %s: %w (%d bytes, %d hashed)", u.id, driver.ErrChanged, w.Size(), size))
	}
	if existing, err := d.Stat(ctx, blobDataPath(dgst)); err == nil && !existing.IsDir() && existing.Size() == size {
		// Same content already in place (another push got there first):
		// the data is removed with the upload.
		_ = w.Close()
	} else if tc, ok := w.(driver.TargetCommitter); ok {
		// Straight to the blob's path (S3: one server-side compose
		// instead of a compose and a copy).
		if err := tc.CommitTo(ctx, blobDataPath(dgst)); err != nil {
			return u.committedElsewhere(ctx, desc, err)
		}
	} else {
		if err := w.Commit(ctx); err != nil {
			return u.committedElsewhere(ctx, desc, err)
		}
		if err := moveExact(ctx, d, u.dataPath(), blobDataPath(dgst), size); err != nil {
			return u.committedElsewhere(ctx, desc, err)
		}
	}
	return u.finishCommit(ctx, desc)
}

// finishCommit links the stored blob into the repository and removes the
// upload.
func (u *Upload) finishCommit(ctx context.Context, desc Descriptor) (Descriptor, error) {
	if err := u.repo.linkBlob(ctx, desc); err != nil {
		return Descriptor{}, err
	}
	u.repo.reg.cacheSet(ctx, "", desc)
	if err := u.repo.reg.d.Delete(ctx, u.dir()); err != nil && !driver.IsNotFound(err) {
		u.repo.reg.log.WarnContext(ctx, "removing a committed upload failed", "repository", u.repo.name, "upload", u.id, "err", err)
	}
	return desc, nil
}

// committedElsewhere handles a commit step that failed after the digest
// was verified. When the data went missing or changed under us (another
// replica committing or appending to the same upload) but the blob is
// stored with the verified size, it is the same content: link it and
// succeed. Otherwise the failure stands: an upload that is gone is
// unknown, one that changed is invalid (the client raced itself), and
// anything else (storage unreachable) is returned as it is.
func (u *Upload) committedElsewhere(ctx context.Context, desc Descriptor, cause error) (Descriptor, error) {
	lost := driver.IsNotFound(cause) || errors.Is(cause, driver.ErrChanged)
	if !lost {
		return Descriptor{}, cause
	}
	if fi, err := u.repo.reg.d.Stat(ctx, blobDataPath(desc.Digest)); err == nil && !fi.IsDir() && fi.Size() == desc.Size {
		u.repo.reg.log.InfoContext(ctx, "upload committed concurrently elsewhere; the blob is in place",
			"repository", u.repo.name, "upload", u.id, "digest", desc.Digest, "cause", cause)
		return u.finishCommit(ctx, desc)
	}
	if driver.IsNotFound(cause) {
		return Descriptor{}, uploadUnknown(u.id)
	}
	return Descriptor{}, &Error{Err: ErrBlobUploadInvalid, Message: "the upload changed while it was being committed (another request wrote to it at the same time)",
		Detail: map[string]any{"uuid": u.id}}
}

// moveExact moves src to dst when src still holds size bytes (see
// driver.ExactMover); a driver without the capability just moves.
func moveExact(ctx context.Context, d driver.Driver, src, dst string, size int64) error {
	if em, ok := d.(driver.ExactMover); ok {
		return em.MoveExact(ctx, src, dst, size)
	}
	return d.Move(ctx, src, dst)
}

// Cancel abandons the upload and removes its data.
func (u *Upload) Cancel(ctx context.Context) error {
	if err := u.repo.reg.writable(); err != nil {
		return err
	}
	defer u.repo.reg.lockUpload(u.id)()
	if err := u.repo.reg.d.Delete(ctx, u.dir()); err != nil {
		if driver.IsNotFound(err) {
			return uploadUnknown(u.id)
		}
		return err
	}
	return nil
}
