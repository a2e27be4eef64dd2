package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/notify"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

func (h *Handler) repo(r *http.Request) (*storage.Repository, error) {
	return h.opts.Registry.Repository(info(r.Context()).rt.Name)
}

func setBlobHeaders(w http.ResponseWriter, desc storage.Descriptor) {
	hdr := w.Header()
	hdr.Set("Docker-Content-Digest", desc.Digest.String())
	hdr.Set("ETag", `"`+desc.Digest.String()+`"`)
	hdr.Set("Cache-Control", "max-age=31536000")
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Content-Type", "application/octet-stream")
}

// getBlob answers GET and HEAD /v2/<name>/blobs/<digest>.
func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	dgst, e := parseDigest(info(ctx).rt.Ref)
	if e != nil {
		return e
	}
	repo, err := h.repo(r)
	if err != nil {
		return err
	}
	if p := h.proxied(repo.Name()); p != nil {
		if served, err := h.proxyBlob(w, r, p, repo, dgst); served || err != nil {
			return err
		}
	}
	if r.Method == http.MethodHead {
		desc, err := repo.StatBlob(ctx, dgst)
		if err != nil {
			return err
		}
		setBlobHeaders(w, desc)
		w.Header().Set("Content-Length", strconv.FormatInt(desc.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if !h.opts.DisableRedirect {
		if loc, err := repo.BlobRedirectURL(r, dgst); err == nil && loc != "" {
			w.Header().Set("Docker-Content-Digest", dgst.String())
			http.Redirect(w, r, loc, http.StatusTemporaryRedirect) //nolint:gosec // the URL comes from the storage driver, not the client
			if h.opts.Events != nil {
				if desc, err := repo.StatBlob(ctx, dgst); err == nil {
					h.emit(r, h.blobEvent(r, notify.ActionPull, desc))
				}
			}
			return nil
		} else if err != nil && !errors.Is(err, errNoRedirect) {
			h.log.Debug("blob redirect unavailable; serving directly", "err", err)
		}
	}
	br, err := repo.OpenBlob(ctx, dgst)
	if err != nil {
		return err
	}
	defer func() { _ = br.Close() }()
	setBlobHeaders(w, storage.Descriptor{Digest: dgst, Size: br.Size()})
	var content io.ReadSeeker = br
	if f := br.File(); f != nil {
		content = f // lets net/http use sendfile
	}
	if rh := r.Header.Get("Range"); rh != "" && !rangeWellFormed(rh) {
		r.Header.Del("Range")
	}
	// The stream is opened before the status is sent, so that storage
	// that is down or stalls answers 503 instead of a 200 (or 206) whose
	// body breaks off. A single range opens at its first byte; the Seek
	// http.ServeContent makes to the same offset keeps the stream.
	if o, ok := content.(opener); ok {
		start, open := int64(0), true
		if rh := r.Header.Get("Range"); rh != "" && rangeApplies(r, dgst) {
			start, open = rangeStart(rh, br.Size())
		}
		if open {
			if _, err := br.Seek(start, io.SeekStart); err != nil {
				return err
			}
			if err := o.Open(); err != nil {
				return err
			}
		}
	}
	// ServeContent handles Range (206, and 416 for unsatisfiable ranges),
	// If-Range and conditional requests against the ETag set above.
	http.ServeContent(w, r, "", time.Time{}, content)
	if rw, ok := w.(*responseWriter); !ok || rw.status == http.StatusOK || rw.status == http.StatusPartialContent {
		h.emit(r, h.blobEvent(r, notify.ActionPull, storage.Descriptor{Digest: dgst, Size: br.Size()}))
	}
	return nil
}

// rangeApplies reports whether the Range header is honoured: always, unless
// an If-Range names another entity (then the whole blob is sent).
func rangeApplies(r *http.Request, dgst digest.Digest) bool {
	ir := r.Header.Get("If-Range")
	return ir == "" || ir == `"`+dgst.String()+`"`
}

// opener is a blob reader that can open its stream before the first Read.
type opener interface{ Open() error }

// errNoRedirect is never returned; it documents that a redirect error only
// means "serve it yourself".
var errNoRedirect = errors.New("no redirect")

// deleteBlob answers DELETE /v2/<name>/blobs/<digest>.
func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request) error {
	if !h.opts.Delete {
		return apiErr(CodeUnsupported, "deleting is disabled on this registry (storage.delete.enabled)", nil)
	}
	dgst, e := parseDigest(info(r.Context()).rt.Ref)
	if e != nil {
		return e
	}
	repo, err := h.repo(r)
	if err != nil {
		return err
	}
	if err := repo.DeleteBlob(r.Context(), dgst); err != nil {
		return err
	}
	h.emit(r, notify.Event{Action: notify.ActionDelete, Digest: dgst.String()})
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
