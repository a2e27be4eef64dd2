package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/notify"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

func (h *Handler) uploadLocation(r *http.Request, name, id string) string {
	return h.urlFor(r, "/v2/"+name+"/blobs/uploads/"+id, nil)
}

func (h *Handler) blobLocation(r *http.Request, name string, dgst digest.Digest) string {
	return h.urlFor(r, "/v2/"+name+"/blobs/"+dgst.String(), nil)
}

// rangeHeader is the Range of an upload of size bytes, as distribution
// writes it ("0-0" for an empty upload).
func rangeHeader(size int64) string {
	end := size - 1
	if end < 0 {
		end = 0
	}
	return fmt.Sprintf("0-%d", end)
}

func (h *Handler) writeUploadState(w http.ResponseWriter, r *http.Request, up *storage.Upload, status int) {
	hdr := w.Header()
	hdr.Set("Location", h.uploadLocation(r, info(r.Context()).rt.Name, up.ID()))
	hdr.Set("Range", rangeHeader(up.Size()))
	hdr.Set("Docker-Upload-UUID", up.ID())
	hdr.Set("Content-Length", "0")
	if h.opts.ChunkMinLength > 0 {
		hdr.Set("OCI-Chunk-Min-Length", strconv.FormatInt(h.opts.ChunkMinLength, 10))
	}
	w.WriteHeader(status)
}

func (h *Handler) blobCreated(w http.ResponseWriter, r *http.Request, desc storage.Descriptor) error {
	hdr := w.Header()
	hdr.Set("Location", h.blobLocation(r, info(r.Context()).rt.Name, desc.Digest))
	hdr.Set("Docker-Content-Digest", desc.Digest.String())
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// startUpload answers POST /v2/<name>/blobs/uploads/: a cross-repository or
// anonymous mount (?mount=), a monolithic upload (?digest= with the body),
// or the start of a chunked or streamed upload.
func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name := info(ctx).rt.Name
	q := r.URL.Query()
	repo, err := h.repo(r)
	if err != nil {
		return err
	}
	if m := q.Get("mount"); m != "" {
		if desc, ok, err := h.tryMount(r, repo, m, q.Get("from")); err != nil {
			return err
		} else if ok {
			ev := h.blobEvent(r, notify.ActionMount, desc)
			ev.FromRepository = q.Get("from")
			h.emit(r, ev)
			return h.blobCreated(w, r, desc)
		}
	}
	var dgst digest.Digest
	if ds, ok := q["digest"]; ok {
		d, e := parseDigest(firstValue(ds))
		if e != nil {
			return e
		}
		dgst = d
	}
	up, err := repo.NewUpload(ctx)
	if err != nil {
		return err
	}
	if dgst == "" {
		h.writeUploadState(w, r, up, http.StatusAccepted)
		return nil
	}
	// Monolithic upload: the whole blob is the body. The client has no
	// upload to come back to, so a failure removes what was written
	// (on a full disk, waiting for the purge would keep it full).
	desc, err := h.finish(r, up, dgst)
	if err != nil {
		h.abandon(r, up)
		return err
	}
	h.log.Debug("monolithic upload", "repository", name, "digest", desc.Digest.String(), "size", desc.Size)
	h.emit(r, h.blobEvent(r, notify.ActionPush, desc))
	return h.blobCreated(w, r, desc)
}

func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// tryMount links a blob from another repository (or, without from, from
// anywhere in the registry). ok=false means "not mountable: start an upload
// instead", as the spec asks.
func (h *Handler) tryMount(r *http.Request, repo *storage.Repository, mount, from string) (storage.Descriptor, bool, error) {
	// A malformed digest or source name is not an error here: the spec
	// asks for an ordinary upload session instead.
	dgst, valid := validDigest(mount)
	if !valid {
		return storage.Descriptor{}, false, nil
	}
	var src *storage.Repository
	if from == "" && !h.opts.AnonymousMount {
		return storage.Descriptor{}, false, nil
	}
	if from != "" {
		if src = h.sourceRepo(from); src == nil {
			return storage.Descriptor{}, false, nil
		}
	}
	desc, err := repo.MountBlob(r.Context(), src, dgst)
	switch {
	case err == nil:
		return desc, true, nil
	case errors.Is(err, storage.ErrBlobUnknown), errors.Is(err, storage.ErrNameUnknown), errors.Is(err, storage.ErrUnsupported):
		return storage.Descriptor{}, false, nil
	}
	return storage.Descriptor{}, false, err
}

func validDigest(s string) (digest.Digest, bool) {
	d, e := parseDigest(s)
	return d, e == nil
}

// sourceRepo returns the mount source repository, or nil for a bad name.
func (h *Handler) sourceRepo(name string) *storage.Repository {
	if checkName(name) != nil {
		return nil
	}
	if s, err := h.opts.Registry.Repository(name); err == nil {
		return s
	}
	return nil
}

// finish appends the request body (if any) and commits the upload as dgst.
func (h *Handler) finish(r *http.Request, up *storage.Upload, dgst digest.Digest) (storage.Descriptor, error) {
	ctx := r.Context()
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		var body io.Reader = r.Body
		if r.ContentLength > 0 {
			body = io.LimitReader(r.Body, r.ContentLength)
		}
		if desc, staged, err := up.CommitBody(ctx, body, r.ContentLength, dgst); staged {
			if err != nil {
				return storage.Descriptor{}, uploadAppendError(err)
			}
			return desc, nil
		} else if err != nil {
			return storage.Descriptor{}, err
		}
		n, err := up.Append(ctx, body)
		if err != nil {
			return storage.Descriptor{}, uploadAppendError(err)
		}
		if r.ContentLength > 0 && n != r.ContentLength {
			return storage.Descriptor{}, apiErr(CodeSizeInvalid, "the body was shorter than Content-Length", nil)
		}
	}
	return up.Commit(ctx, dgst, -1)
}

// uploadAppendError keeps storage errors as they are and turns a client
// that went away mid-body into BLOB_UPLOAD_INVALID.
func uploadAppendError(err error) error {
	if _, ok := storageError(err); ok {
		return err
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Code: CodeBlobUploadInvalid, Message: "the upload body ended early", Cause: err}
	}
	return err
}

func (h *Handler) resume(r *http.Request) (*storage.Upload, error) {
	repo, err := h.repo(r)
	if err != nil {
		return nil, err
	}
	return repo.ResumeUpload(r.Context(), info(r.Context()).rt.UploadID)
}

// checkChunkRange validates a Content-Range against the upload's size:
// the chunk must start where the upload ends. It returns the chunk length
// (-1 when no Content-Range was sent).
func (h *Handler) checkChunkRange(r *http.Request, up *storage.Upload) (int64, error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return -1, nil
	}
	start, end, err := parseContentRange(cr)
	bad := func(msg string) error {
		return &Error{Code: CodeRangeInvalid, Message: msg, Header: http.Header{
			"Location":           {h.uploadLocation(r, info(r.Context()).rt.Name, up.ID())},
			"Range":              {rangeHeader(up.Size())},
			"Docker-Upload-Uuid": {up.ID()},
		}}
	}
	if err != nil {
		return 0, bad("malformed Content-Range; want start-end")
	}
	if start != up.Size() {
		return 0, bad(fmt.Sprintf("chunk starts at %d but the upload has %d bytes", start, up.Size()))
	}
	n := end - start + 1
	if r.ContentLength >= 0 && r.ContentLength != n {
		return 0, bad("Content-Range and Content-Length disagree")
	}
	return n, nil
}

// patchUpload answers PATCH: a chunk (with Content-Range) or a stream.
func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request) error {
	up, err := h.resume(r)
	if err != nil {
		return err
	}
	n, err := h.checkChunkRange(r, up)
	if err != nil {
		return err
	}
	var body io.Reader = r.Body
	if n >= 0 {
		body = io.LimitReader(r.Body, n)
	}
	got, err := up.Append(r.Context(), body)
	if err != nil {
		return h.withUploadState(r, up, uploadAppendError(err))
	}
	if n >= 0 && got != n {
		return apiErr(CodeSizeInvalid, "the chunk was shorter than its Content-Range", nil)
	}
	h.writeUploadState(w, r, up, http.StatusAccepted)
	return nil
}

// putUpload answers PUT ?digest=: an optional last chunk, then commit.
func (h *Handler) putUpload(w http.ResponseWriter, r *http.Request) error {
	ds, ok := r.URL.Query()["digest"]
	if !ok {
		return apiErr(CodeDigestInvalid, "the digest query parameter is required to complete an upload", nil)
	}
	dgst, e := parseDigest(firstValue(ds))
	if e != nil {
		return e
	}
	up, err := h.resume(r)
	if err != nil {
		return err
	}
	if _, err := h.checkChunkRange(r, up); err != nil {
		return err
	}
	// A PUT carrying the whole blob on an upload that holds nothing yet
	// is a monolithic upload in two requests: on failure it is removed,
	// as for a monolithic POST. After earlier chunks the upload stays, and
	// the error says where it stands so the client can resume.
	monolithic := up.Size() == 0 && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
	desc, err := h.finish(r, up, dgst)
	if err != nil {
		if monolithic {
			h.abandon(r, up)
			return err
		}
		return h.withUploadState(r, up, err)
	}
	h.emit(r, h.blobEvent(r, notify.ActionPush, desc))
	return h.blobCreated(w, r, desc)
}

// abandonTimeout bounds the removal of a failed upload.
const abandonTimeout = 30 * time.Second

// abandon removes a failed upload's data, even when the client has gone.
func (h *Handler) abandon(r *http.Request, up *storage.Upload) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), abandonTimeout)
	defer cancel()
	if err := up.Cancel(ctx); err != nil && !errors.Is(err, storage.ErrBlobUploadUnknown) {
		h.log.WarnContext(ctx, "removing a failed upload failed; the upload purge will remove it",
			"repository", info(r.Context()).rt.Name, "upload", up.ID(), "err", err)
	}
}

// withUploadState adds the upload's Location, Range and id to the error
// of a request on an upload that is still there, so the client can resume.
func (h *Handler) withUploadState(r *http.Request, up *storage.Upload, err error) error {
	if errors.Is(err, storage.ErrBlobUploadUnknown) {
		return err
	}
	e := *asAPIError(err)
	e.Header = e.Header.Clone()
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set("Location", h.uploadLocation(r, info(r.Context()).rt.Name, up.ID()))
	e.Header.Set("Range", rangeHeader(up.Size()))
	e.Header.Set("Docker-Upload-UUID", up.ID())
	return &e
}

// uploadStatus answers GET on an upload: 204 with its Range.
func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request) error {
	up, err := h.resume(r)
	if err != nil {
		return err
	}
	h.writeUploadState(w, r, up, http.StatusNoContent)
	return nil
}

// cancelUpload answers DELETE on an upload.
func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request) error {
	up, err := h.resume(r)
	if err != nil {
		return err
	}
	if err := up.Cancel(r.Context()); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
