package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/notify"
)

func (h *Handler) manifestLocation(r *http.Request, name string, dgst digest.Digest) string {
	return h.urlFor(r, "/v2/"+name+"/manifests/"+dgst.String(), nil)
}

// getManifest answers GET and HEAD /v2/<name>/manifests/<reference>.
func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ref := info(ctx).rt.Ref
	refTag, _, e := parseReference(ref)
	if e != nil {
		return e
	}
	repo, err := h.repo(r)
	if err != nil {
		return err
	}
	if p := h.proxied(repo.Name()); p != nil {
		if err := p.PrepareManifest(ctx, repo.Name(), ref); err != nil {
			return upstreamError(err)
		}
	}
	hdr := w.Header()
	if r.Method == http.MethodHead {
		desc, err := repo.StatManifest(ctx, ref)
		if err != nil {
			return err
		}
		hdr.Set("Content-Type", desc.MediaType)
		hdr.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
		hdr.Set("Docker-Content-Digest", desc.Digest.String())
		hdr.Set("ETag", `"`+desc.Digest.String()+`"`)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	mediaType, payload, dgst, err := repo.GetManifest(ctx, ref)
	if err != nil {
		return err
	}
	hdr.Set("Content-Type", mediaType)
	hdr.Set("Content-Length", strconv.Itoa(len(payload)))
	hdr.Set("Docker-Content-Digest", dgst.String())
	hdr.Set("ETag", `"`+dgst.String()+`"`)
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, dgst.String()) {
		hdr.Del("Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload) //nolint:gosec // a manifest is served as stored, with its own media type and nosniff
	h.emit(r, h.manifestEvent(r, notify.ActionPull, refTag, mediaType, dgst, payload))
	return nil
}

// putManifest answers PUT /v2/<name>/manifests/<reference>[?tag=...].
func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name, ref := info(ctx).rt.Name, info(ctx).rt.Ref
	_, refDigest, e := parseReference(ref)
	if e != nil {
		return e
	}
	tags := r.URL.Query()["tag"]
	for _, t := range tags {
		if !isTag(t) {
			return apiErr(CodeTagInvalid, "invalid tag", map[string]string{"tag": truncate(t, 200)})
		}
	}
	mediaType := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(mediaType); err == nil {
		mediaType = mt
	}
	if r.ContentLength > h.opts.MaxManifestSize {
		drainRejected(w, r.Body)
		return tooLarge(h.opts.MaxManifestSize)
	}
	body := r.Body
	payload, err := io.ReadAll(http.MaxBytesReader(nil, body, h.opts.MaxManifestSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			drainRejected(w, body)
			return tooLarge(h.opts.MaxManifestSize)
		}
		return &Error{Code: CodeManifestInvalid, Message: "could not read the manifest body", Cause: err}
	}
	if len(payload) == 0 {
		return apiErr(CodeManifestInvalid, "the manifest body is empty", nil)
	}
	if refDigest != "" && refDigest.Algorithm().FromBytes(payload) != refDigest {
		return apiErr(CodeDigestInvalid, "the manifest does not match the digest in the URL", map[string]string{"digest": refDigest.String()})
	}
	repo, err := h.repo(r)
	if err != nil {
		return err
	}
	res, err := repo.PutManifest(ctx, ref, mediaType, payload)
	if err != nil {
		return err
	}
	hdr := w.Header()
	for _, t := range tags {
		if err := repo.TagDigest(ctx, t, res.Digest); err != nil {
			return err
		}
		hdr.Add("OCI-Tag", t)
	}
	// One event per tag the push set (by tag, or ?tag= on a push by
	// digest), or one without a tag.
	evTags := tags
	if refDigest == "" {
		evTags = append([]string{ref}, tags...)
	}
	if len(evTags) == 0 {
		evTags = []string{""}
	}
	for _, t := range evTags {
		h.emit(r, h.manifestEvent(r, notify.ActionPush, t, mediaType, res.Digest, payload))
	}
	hdr.Set("Location", h.manifestLocation(r, name, res.Digest))
	hdr.Set("Docker-Content-Digest", res.Digest.String())
	if res.Subject != nil {
		hdr.Set("OCI-Subject", res.Subject.String())
	}
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// maxRejectedDrain is how much of a refused body is read and thrown away.
const maxRejectedDrain = 16 << 20

// drainRejected reads what is left of a refused body, up to
// maxRejectedDrain (and within the request's deadline), so that a client
// that sends its whole body before reading the answer (the Docker engine,
// Python's http.client) reads the error instead of a broken pipe. A longer
// body is cut off with Connection: close.
func drainRejected(w http.ResponseWriter, body io.Reader) {
	n, err := io.Copy(io.Discard, io.LimitReader(body, maxRejectedDrain+1))
	if n > maxRejectedDrain || err != nil {
		w.Header().Set("Connection", "close")
	}
}

func tooLarge(limit int64) *Error {
	return &Error{Code: CodeManifestInvalid, Status: http.StatusRequestEntityTooLarge,
		Message: "manifest too large", Detail: map[string]int64{"limit": limit}}
}

// deleteManifest answers DELETE by digest (the manifest) or by tag (the tag only).
func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request) error {
	if !h.opts.Delete {
		return apiErr(CodeUnsupported, "deleting is disabled on this registry (storage.delete.enabled)", nil)
	}
	ctx := r.Context()
	tag, dgst, e := parseReference(info(ctx).rt.Ref)
	if e != nil {
		return e
	}
	repo, err := h.repo(r)
	if err != nil {
		return err
	}
	if tag != "" {
		err = repo.DeleteTag(ctx, tag)
	} else {
		err = repo.DeleteManifest(ctx, dgst)
	}
	if err != nil {
		return err
	}
	h.emit(r, notify.Event{Action: notify.ActionDelete, Tag: tag, Digest: dgst.String()})
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
