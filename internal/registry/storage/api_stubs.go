package storage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

var errTODO = errors.New("not implemented yet")

// Descriptor describes a blob or manifest.
type Descriptor struct {
	MediaType    string
	Digest       digest.Digest
	Size         int64
	ArtifactType string
	Annotations  map[string]string
}

// BlobReader reads a blob. File returns the underlying *os.File when the
// driver is local (driver.LocalFiler), so the HTTP layer can serve it with
// sendfile (http.ServeContent on the *os.File); it is nil otherwise.
type BlobReader interface {
	io.ReadSeekCloser
	Size() int64
	File() *os.File
}

// StatBlob describes dgst if it is linked into this repository, else
// ErrBlobUnknown.
func (r *Repository) StatBlob(ctx context.Context, dgst digest.Digest) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// OpenBlob opens dgst for reading if it is linked into this repository.
func (r *Repository) OpenBlob(ctx context.Context, dgst digest.Digest) (BlobReader, error) {
	return nil, errTODO
}

// BlobRedirectURL returns a URL the client can fetch dgst from directly
// (driver.Redirector), or "" to serve it through the registry.
func (r *Repository) BlobRedirectURL(req *http.Request, dgst digest.Digest) (string, error) {
	return "", errTODO
}

// DeleteBlob unlinks dgst from this repository. The bytes stay until GC.
func (r *Repository) DeleteBlob(ctx context.Context, dgst digest.Digest) error {
	return errTODO
}

// MountBlob links dgst into this repository from the repository from
// (ErrBlobUnknown if from does not have it). from nil is an anonymous
// mount: the blob only has to exist in the registry.
func (r *Repository) MountBlob(ctx context.Context, from *Repository, dgst digest.Digest) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// Upload is a blob upload in progress. Its state lives in storage, so it
// survives a restart and can be resumed by any replica.
type Upload struct {
	repo      *Repository
	id        string
	startedAt time.Time
	size      int64
	w         driver.FileWriter
}

// NewUpload starts an upload.
func (r *Repository) NewUpload(ctx context.Context) (*Upload, error) { return nil, errTODO }

// ResumeUpload reopens upload id, or returns ErrBlobUploadUnknown.
func (r *Repository) ResumeUpload(ctx context.Context, id string) (*Upload, error) {
	return nil, errTODO
}

// ID returns the upload's id.
func (u *Upload) ID() string { return u.id }

// Size returns the number of bytes received so far.
func (u *Upload) Size() int64 { return u.size }

// StartedAt returns when the upload started.
func (u *Upload) StartedAt() time.Time { return u.startedAt }

// Append streams from into the upload, hashing as it goes, and returns
// the number of bytes written.
func (u *Upload) Append(ctx context.Context, from io.Reader) (int64, error) { return 0, errTODO }

// Commit verifies the content against dgst (any registered algorithm) and
// expectedSize (-1 = unknown), flushes it, moves it into place and links it
// into the repository.
func (u *Upload) Commit(ctx context.Context, dgst digest.Digest, expectedSize int64) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// Cancel abandons the upload and removes its data.
func (u *Upload) Cancel(ctx context.Context) error { return errTODO }

// PutResult is what PutManifest stored.
type PutResult struct {
	Digest  digest.Digest
	Subject *digest.Digest // the manifest's subject, if it has one
}

// PutManifest validates and stores a manifest under ref (a tag or a digest).
func (r *Repository) PutManifest(ctx context.Context, ref, mediaType string, payload []byte) (PutResult, error) {
	return PutResult{}, errTODO
}

// GetManifest returns a manifest by tag or digest.
func (r *Repository) GetManifest(ctx context.Context, ref string) (mediaType string, payload []byte, dgst digest.Digest, err error) {
	return "", nil, "", errTODO
}

// StatManifest describes a manifest by tag or digest.
func (r *Repository) StatManifest(ctx context.Context, ref string) (Descriptor, error) {
	return Descriptor{}, errTODO
}

// DeleteManifest removes the manifest's revision link, the tags pointing to
// it and its referrers index entry.
func (r *Repository) DeleteManifest(ctx context.Context, dgst digest.Digest) error { return errTODO }

// DeleteTag removes a tag (the manifest stays).
func (r *Repository) DeleteTag(ctx context.Context, tag string) error { return errTODO }

// Tags lists tags after last (exclusive), at most n (n <= 0 = all), sorted.
func (r *Repository) Tags(ctx context.Context, last string, n int) (tags []string, more bool, err error) {
	return nil, false, errTODO
}

// Referrers lists the manifests whose subject is subject, filtered by
// artifactType when it is not "".
func (r *Repository) Referrers(ctx context.Context, subject digest.Digest, artifactType string) ([]Descriptor, error) {
	return nil, errTODO
}

// GCOptions tune GC.
type GCOptions struct {
	DryRun         bool
	DeleteUntagged bool
	// Progress, when set, receives one line per step.
	Progress func(format string, args ...any)
}

// GCResult counts what GC did (or would do, in a dry run).
type GCResult struct {
	Repositories      int
	ManifestsMarked   int
	BlobsMarked       int
	ManifestsDeleted  int
	BlobsSwept        int
	BytesFreed        int64
	LayerLinksRemoved int
}

// GC marks every blob reachable from a manifest and deletes the rest. The
// registry must not accept writes while it runs.
func GC(ctx context.Context, d driver.Driver, opts GCOptions) (GCResult, error) {
	return GCResult{}, errTODO
}

// PurgeResult counts removed uploads.
type PurgeResult struct {
	Purged int
	Errors int
}

// PurgeUploads removes uploads started more than olderThan ago.
func PurgeUploads(ctx context.Context, d driver.Driver, olderThan time.Duration, dryRun bool) (PurgeResult, error) {
	return PurgeResult{}, errTODO
}
