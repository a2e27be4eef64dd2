package storage

import (
	"context"
	"errors"
	"io"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// CommitBody stores body as the whole content of an empty upload and
// commits it as dgst, in one step, when the storage can write a file that
// stays invisible until it is committed (driver.Stager, S3): the body then
// goes straight to the blob's path, hashed on the way, and appears there
// only once the digest matched, with no copy. length is the body's size
// when the request says it (-1 otherwise); a body shorter than that is
// ErrSizeInvalid and leaves nothing behind. If the blob is already stored
// with that size, the body is only hashed.
//
// staged is false, with nothing read from body, when this path does not
// apply (the upload already holds bytes, or the driver has no Stager and
// the blob is not already stored with that size: the hash-only case needs
// no Stager): the caller then appends and commits as usual. A digest mismatch leaves
// the upload in place, empty, as Commit does.
func (u *Upload) CommitBody(ctx context.Context, body io.Reader, length int64, dgst digest.Digest) (desc Descriptor, staged bool, err error) {
	if err := u.repo.reg.writable(); err != nil {
		return Descriptor{}, false, err
	}
	if err := checkDigest(dgst); err != nil {
		return Descriptor{}, false, err
	}
	defer u.repo.reg.lockUpload(u.id)()
	d := u.repo.reg.d
	if u.size != 0 {
		return Descriptor{}, false, nil
	}
	// Another request may have appended since this one loaded the
	// upload: only an upload still empty in storage takes this path.
	if fi, err := d.Stat(ctx, u.dataPath()); err != nil {
		if driver.IsNotFound(err) {
			return Descriptor{}, false, uploadUnknown(u.id)
		}
		return Descriptor{}, false, err
	} else if fi.Size() != 0 {
		return Descriptor{}, false, nil
	}
	dst := blobDataPath(dgst)
	var w driver.FileWriter
	if fi, err := d.Stat(ctx, dst); err == nil && !fi.IsDir() && length >= 0 && fi.Size() == length {
		w = nil // stored already: only check that the body is that blob
	} else if s, ok := d.(driver.Stager); !ok {
		return Descriptor{}, false, nil
	} else if w, err = s.StagedWriter(ctx, dst, length); err != nil {
		if errors.Is(err, driver.ErrUnsupported) {
			return Descriptor{}, false, nil
		}
		return Descriptor{}, true, err
	}
	h := dgst.Algorithm().Hash()
	var to io.Writer = h
	if w != nil {
		to = io.MultiWriter(w, h)
		defer func() {
			if err != nil {
				_ = w.Cancel(context.WithoutCancel(ctx))
			}
		}()
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(to, readerOnly{body}, *buf)
	if err != nil {
		return Descriptor{}, true, err
	}
	if length >= 0 && n != length {
		return Descriptor{}, true, errorf(ErrSizeInvalid, map[string]any{"size": n, "expected": length},
			"the body was shorter than Content-Length (%d of %d bytes)", n, length)
	}
	if got := digest.NewDigest(dgst.Algorithm(), h); got != dgst {
		return Descriptor{}, true, errorf(ErrDigestInvalid, map[string]any{"digest": dgst.String()},
			"provided digest did not match uploaded content")
	}
	if w != nil {
		if err = w.Commit(ctx); err != nil {
			return Descriptor{}, true, err
		}
	}
	desc, err = u.finishCommit(ctx, Descriptor{MediaType: BlobMediaType, Digest: dgst, Size: n})
	return desc, true, err
}
