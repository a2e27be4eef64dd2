package api

import (
	"context"
	"net/http"

	digest "github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/notify"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

// Events receives a record of every push, pull, delete and mount that
// completes. Emit returns once the record is kept: the API calls it before
// answering a push, delete or mount, and after sending the content of a
// pull.
type Events interface {
	Emit(ctx context.Context, e notify.Event)
}

// emit fills in what every event says about its request and hands e to
// Options.Events, if set.
func (h *Handler) emit(r *http.Request, e notify.Event) {
	if h.opts.Events == nil {
		return
	}
	ri := info(r.Context())
	if e.Repository == "" {
		e.Repository = ri.rt.Name
	}
	e.Actor = ri.user
	e.Request = notify.Request{ID: ri.id, Addr: r.RemoteAddr, Host: r.Host, Method: r.Method, UserAgent: r.UserAgent()}
	// A client that hangs up after the work is done does not cancel its
	// event.
	h.opts.Events.Emit(context.WithoutCancel(r.Context()), e)
}

// blobEvent is the event of a push, pull or mount of desc.
func (h *Handler) blobEvent(r *http.Request, action string, desc storage.Descriptor) notify.Event {
	return notify.Event{Action: action, MediaType: notify.BlobMediaType, Digest: desc.Digest.String(), Size: desc.Size,
		URL: h.blobLocation(r, info(r.Context()).rt.Name, desc.Digest)}
}

// manifestEvent is the event of a push or pull of a manifest.
func (h *Handler) manifestEvent(r *http.Request, action, tag, mediaType string, dgst digest.Digest, payload []byte) notify.Event {
	return notify.Event{Action: action, Tag: tag, MediaType: mediaType, Digest: dgst.String(), Size: int64(len(payload)),
		URL: h.manifestLocation(r, info(r.Context()).rt.Name, dgst), Manifest: payload}
}
