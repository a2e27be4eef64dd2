package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/gatehouse-registry/gatehouse/internal/reference"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// BlobMediaType is the media type reported for blobs, which are opaque.
const BlobMediaType = "application/octet-stream"

// Descriptor describes a blob or a manifest.
type Descriptor struct {
	MediaType    string
	Digest       digest.Digest
	Size         int64
	ArtifactType string
	Annotations  map[string]string
}

// BlobReader reads a blob. File returns the underlying *os.File when the
// driver is local (driver.LocalFiler) so the HTTP layer can serve it with
// sendfile (http.ServeContent on the *os.File); it is nil otherwise. Close
// releases both.
type BlobReader interface {
	io.ReadSeekCloser
	Size() int64
	File() *os.File
}

// checkDigest validates a digest given by a client with
// reference.ParseDigest: sha256 or sha512.
func checkDigest(d digest.Digest) error {
	if _, err := reference.ParseDigest(string(d)); err != nil {
		return digestInvalid(string(d), err)
	}
	return nil
}

func digestInvalid(s string, err error) error {
	return errorf(ErrDigestInvalid, map[string]any{"digest": s}, "invalid digest: %s", reference.Reason(err))
}

func (r *Registry) writable() error {
	if r.opts.ReadOnly {
		return ErrReadOnly
	}
	return nil
}

func (r *Registry) deletable() error {
	if !r.opts.Delete {
		return errorf(ErrUnsupported, nil, "deletion is disabled (storage.delete.enabled)")
	}
	return r.writable()
}

func blobUnknown(d digest.Digest) error {
	return errorf(ErrBlobUnknown, map[string]any{"digest": d.String()}, "blob unknown to registry")
}

// StatStored describes blob dgst if its data is stored for any repository
// (ErrBlobUnknown if not): a mirror can link it instead of fetching it.
func (r *Registry) StatStored(ctx context.Context, dgst digest.Digest) (Descriptor, error) {
	if err := checkDigest(dgst); err != nil {
		return Descriptor{}, err
	}
	return r.statGlobal(ctx, dgst)
}

// statGlobal describes dgst if its data exists anywhere in the registry.
func (r *Registry) statGlobal(ctx context.Context, dgst digest.Digest) (Descriptor, error) {
	if c := r.opts.Cache; c != nil {
		if cd, err := c.Stat(ctx, "", dgst); err == nil {
			return Descriptor{MediaType: BlobMediaType, Digest: dgst, Size: cd.Size}, nil
		}
	}
	fi, err := r.d.Stat(ctx, blobDataPath(dgst))
	if err != nil {
		if driver.IsNotFound(err) {
			return Descriptor{}, blobUnknown(dgst)
		}
		return Descriptor{}, err
	}
	if fi.IsDir() {
		return Descriptor{}, blobUnknown(dgst)
	}
	desc := Descriptor{MediaType: BlobMediaType, Digest: dgst, Size: fi.Size()}
	r.cacheSet(ctx, "", desc)
	return desc, nil
}

func (r *Registry) cacheSet(ctx context.Context, repo string, desc Descriptor) {
	if c := r.opts.Cache; c != nil {
		if err := c.Set(ctx, repo, desc.Digest, cache.Descriptor{Digest: desc.Digest, Size: desc.Size, MediaType: desc.MediaType}); err != nil {
			r.log.WarnContext(ctx, "blob descriptor cache set failed", "err", err)
		}
	}
}

func (r *Registry) cacheClear(ctx context.Context, repo string, dgst digest.Digest) {
	if c := r.opts.Cache; c != nil {
		if err := c.Clear(ctx, repo, dgst); err != nil {
			r.log.WarnContext(ctx, "blob descriptor cache clear failed", "err", err)
		}
	}
}

// StatBlob describes dgst if it is linked into this repository, else
// ErrBlobUnknown.
func (r *Repository) StatBlob(ctx context.Context, dgst digest.Digest) (Descriptor, error) {
	if err := checkDigest(dgst); err != nil {
		return Descriptor{}, err
	}
	if c := r.reg.opts.Cache; c != nil {
		if cd, err := c.Stat(ctx, r.name, dgst); err == nil {
			return Descriptor{MediaType: BlobMediaType, Digest: dgst, Size: cd.Size}, nil
		}
	}
	linked, err := r.reg.readLink(ctx, layerLinkDir(r.name, dgst)+"/link")
	if err != nil {
		if driver.IsNotFound(err) {
			return Descriptor{}, blobUnknown(dgst)
		}
		return Descriptor{}, err
	}
	if linked != dgst {
		return Descriptor{}, fmt.Errorf("layer link for %s holds %s", dgst, linked)
	}
	desc, err := r.reg.statGlobal(ctx, dgst)
	if err != nil {
		return Descriptor{}, err
	}
	r.reg.cacheSet(ctx, r.name, desc)
	return desc, nil
}

// OpenBlob opens dgst for reading if it is linked into this repository.
func (r *Repository) OpenBlob(ctx context.Context, dgst digest.Digest) (BlobReader, error) {
	desc, err := r.StatBlob(ctx, dgst)
	if err != nil {
		return nil, err
	}
	return r.reg.openData(ctx, dgst, desc.Size)
}

func (r *Registry) openData(ctx context.Context, dgst digest.Digest, size int64) (BlobReader, error) {
	p := blobDataPath(dgst)
	if lf, ok := r.d.(driver.LocalFiler); ok {
		f, err := lf.LocalFile(p)
		if err != nil {
			if driver.IsNotFound(err) {
				r.cacheClear(ctx, "", dgst)
				return nil, blobUnknown(dgst)
			}
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		return &fileBlob{f: f, size: fi.Size()}, nil
	}
	return &driverBlob{ctx: ctx, d: r.d, p: p, size: size}, nil
}

// fileBlob is a local blob file.
type fileBlob struct {
	f    *os.File
	size int64
}

func (f *fileBlob) Read(p []byte) (int, error)                { return f.f.Read(p) }
func (f *fileBlob) Seek(off int64, whence int) (int64, error) { return f.f.Seek(off, whence) }
func (f *fileBlob) Close() error                              { return f.f.Close() }
func (f *fileBlob) Size() int64                               { return f.size }
func (f *fileBlob) File() *os.File                            { return f.f }

// driverBlob reads a blob through the driver, reopening at the offset
// when a Read follows a Seek that moved it.
type driverBlob struct {
	ctx   context.Context
	d     driver.Driver
	p     string
	size  int64
	off   int64         // where the next Read reads
	rc    io.ReadCloser // open at rcOff, or nil
	rcOff int64
}

func (b *driverBlob) Size() int64    { return b.size }
func (b *driverBlob) File() *os.File { return nil }

// Open opens the stream at the current offset now instead of at the first
// Read, so that a storage that is down or stalled fails before a response
// is started (a Seek back to the same offset keeps the stream).
func (b *driverBlob) Open() error {
	if b.off >= b.size {
		return nil
	}
	if b.rc != nil && b.rcOff != b.off {
		_ = b.rc.Close()
		b.rc = nil
	}
	if b.rc == nil {
		rc, err := b.d.Reader(b.ctx, b.p, b.off)
		if err != nil {
			return err
		}
		b.rc, b.rcOff = rc, b.off
	}
	return nil
}

func (b *driverBlob) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if err := b.Open(); err != nil {
		return 0, err
	}
	n, err := b.rc.Read(p)
	b.off += int64(n)
	b.rcOff += int64(n)
	return n, err
}

func (b *driverBlob) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.off + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, errors.New("blob: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("blob: negative position")
	}
	b.off = abs
	return abs, nil
}

func (b *driverBlob) Close() error {
	if b.rc != nil {
		err := b.rc.Close()
		b.rc = nil
		return err
	}
	return nil
}

// BlobRedirectURL returns a URL the client can fetch dgst from directly
// (driver.Redirector), or "" to serve it through the registry. A blob not
// linked into this repository is ErrBlobUnknown, as for StatBlob.
func (r *Repository) BlobRedirectURL(req *http.Request, dgst digest.Digest) (string, error) {
	if err := checkDigest(dgst); err != nil {
		return "", err
	}
	rd, ok := r.reg.d.(driver.Redirector)
	if r.reg.opts.Redirector != nil {
		rd, ok = r.reg.opts.Redirector, true
	}
	if !ok {
		return "", nil
	}
	// The URL serves the global blob data: hand it out only for a blob
	// linked into this repository, or pull access to any repository would
	// read every blob in the registry.
	if _, err := r.StatBlob(req.Context(), dgst); err != nil {
		return "", err
	}
	return rd.RedirectURL(req, blobDataPath(dgst))
}

// DeleteBlob unlinks dgst from this repository. The bytes stay until GC.
func (r *Repository) DeleteBlob(ctx context.Context, dgst digest.Digest) error {
	if err := r.reg.deletable(); err != nil {
		return err
	}
	if err := checkDigest(dgst); err != nil {
		return err
	}
	if err := r.reg.d.Delete(ctx, layerLinkDir(r.name, dgst)); err != nil {
		if driver.IsNotFound(err) {
			return blobUnknown(dgst)
		}
		return err
	}
	r.reg.cacheClear(ctx, r.name, dgst)
	return nil
}

// MountBlob links dgst into this repository from the repository from
// (ErrBlobUnknown if from does not have it). from nil is an anonymous
// mount: the blob only has to exist somewhere in the registry.
func (r *Repository) MountBlob(ctx context.Context, from *Repository, dgst digest.Digest) (Descriptor, error) {
	if err := r.reg.writable(); err != nil {
		return Descriptor{}, err
	}
	var (
		desc Descriptor
		err  error
	)
	if from != nil {
		desc, err = from.StatBlob(ctx, dgst)
	} else {
		if err = checkDigest(dgst); err == nil {
			desc, err = r.reg.statGlobal(ctx, dgst)
		}
	}
	if err != nil {
		return Descriptor{}, err
	}
	if err := r.linkBlob(ctx, desc); err != nil {
		return Descriptor{}, err
	}
	return desc, nil
}

func (r *Repository) linkBlob(ctx context.Context, desc Descriptor) error {
	if err := r.reg.writeLink(ctx, layerLinkDir(r.name, desc.Digest)+"/link", desc.Digest); err != nil {
		return err
	}
	r.reg.cacheSet(ctx, r.name, desc)
	return nil
}
