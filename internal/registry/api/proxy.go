package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/notify"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

// PullThrough is a pull-through cache: repositories mirrored from upstream
// registries. The handler asks it before serving a mirrored repository's
// manifests and blobs from storage, and refuses writes to them.
type PullThrough interface {
	// Proxied reports whether repository name is mirrored.
	Proxied(name string) bool
	// PrepareManifest makes storage hold the current manifest ref (a tag
	// or a digest) of name, or returns why it cannot.
	PrepareManifest(ctx context.Context, name, ref string) error
	// StatBlob describes, from the upstream, a blob storage does not hold.
	StatBlob(ctx context.Context, name string, dgst digest.Digest) (storage.Descriptor, error)
	// FetchBlob streams a blob storage does not hold while caching it;
	// size is -1 when unknown.
	FetchBlob(ctx context.Context, name string, dgst digest.Digest) (rc io.ReadCloser, size int64, err error)
	// LinkStored links into name a blob that storage holds for another
	// repository, when the upstream confirms name has it; it reports
	// whether it did (the caller then serves it from storage).
	LinkStored(ctx context.Context, name string, dgst digest.Digest) bool
	// Served records that a cached blob was pulled.
	Served(name string, dgst digest.Digest)
}

// upstreamStatus is what the cache's errors say about an upstream's answer.
type upstreamStatus interface {
	UpstreamStatus() int // 0: no answer
	RetryAfterHeader() string
}

// upstreamError maps an upstream's failure onto the catalogue: 429 is
// passed on with its Retry-After; 401 and 403 (the upstream refused the
// cache) are DENIED, since the client's own credentials are not at fault;
// anything else is UNAVAILABLE. Other errors pass unchanged.
func upstreamError(err error) error {
	var us upstreamStatus
	if !errors.As(err, &us) {
		return err
	}
	switch us.UpstreamStatus() {
	case http.StatusTooManyRequests:
		e := &Error{Code: CodeTooManyRequests, Message: "the upstream registry is limiting requests; retry later", Cause: err}
		if ra := us.RetryAfterHeader(); ra != "" {
			if _, perr := strconv.Atoi(ra); perr == nil {
				e.Header = http.Header{"Retry-After": {ra}}
			}
		}
		return e
	case http.StatusUnauthorized, http.StatusForbidden:
		return &Error{Code: CodeDenied, Message: "the upstream registry refused access to this repository", Cause: err}
	case 0:
		return &Error{Code: CodeUnavailable, Message: "the upstream registry is unreachable", Cause: err}
	}
	return &Error{Code: CodeUnavailable, Message: "the upstream registry failed to answer", Cause: err}
}

// proxied returns the cache when repository name is mirrored.
func (h *Handler) proxied(name string) PullThrough {
	if p := h.opts.Proxy; p != nil && p.Proxied(name) {
		return p
	}
	return nil
}

// proxyBlob serves a GET or HEAD of a blob of a mirrored repository that
// storage does not hold, from the upstream. served is false when storage
// holds it after all (the caller serves it from there).
func (h *Handler) proxyBlob(w http.ResponseWriter, r *http.Request, p PullThrough, repo *storage.Repository, dgst digest.Digest) (served bool, err error) {
	ctx := r.Context()
	name := repo.Name()
	if _, err := repo.StatBlob(ctx, dgst); err == nil {
		p.Served(name, dgst)
		return false, nil
	} else if !errors.Is(err, storage.ErrBlobUnknown) {
		return true, err
	}
	if p.LinkStored(ctx, name, dgst) {
		return false, nil
	}
	if r.Method == http.MethodHead {
		desc, err := p.StatBlob(ctx, name, dgst)
		if err != nil {
			return true, upstreamError(err)
		}
		setBlobHeaders(w, desc)
		if desc.Size >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(desc.Size, 10))
		}
		w.WriteHeader(http.StatusOK)
		return true, nil
	}
	rc, size, err := p.FetchBlob(ctx, name, dgst)
	if err != nil {
		return true, upstreamError(err)
	}
	defer func() { _ = rc.Close() }()
	// A Range is not honoured while the blob is fetched: the whole blob
	// is a valid answer (RFC 9110 section 14.2), and the next request
	// finds it in storage.
	setBlobHeaders(w, storage.Descriptor{Digest: dgst, Size: size})
	w.Header().Del("Accept-Ranges")
	if size >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(w, rc)
	if err != nil {
		// Headers are out: end the connection so the client sees a short
		// body, not a complete one.
		return true, err
	}
	h.emit(r, h.blobEvent(r, notify.ActionPull, storage.Descriptor{Digest: dgst, Size: n}))
	return true, nil
}

// proxyWriteRefused is the answer to a push or delete on a mirror.
func proxyWriteRefused() *Error {
	return &Error{Code: CodeUnsupported, Message: "this repository is a pull-through cache of an upstream registry: pushes and deletes are refused"}
}
