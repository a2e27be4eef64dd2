package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/auth"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/server"
)

// Options configure the API handler.
type Options struct {
	Registry *storage.Registry
	// Auth decides access; nil serves everyone (auth: none).
	Auth auth.Controller
	// Logger receives errors and, unless AccessLog is false, one line per request.
	Logger    *slog.Logger
	AccessLog bool
	// Prefix is http.prefix: the API is served under Prefix + "/v2/".
	Prefix string
	// Host is http.host, the external base URL for Location headers.
	Host string
	// RelativeURLs makes Location headers paths without scheme and host.
	RelativeURLs bool
	// Headers are added to every response (http.headers).
	Headers http.Header
	// Delete enables DELETE of blobs, manifests and tags.
	Delete bool
	// ReadOnly refuses every write with 405 UNSUPPORTED.
	ReadOnly bool
	// AnonymousMount allows ?mount= without from=: the blob is linked from
	// wherever it is stored. Safe only where every user may read every
	// repository (no auth, htpasswd); otherwise a start of an upload is
	// answered instead, as the spec allows.
	AnonymousMount bool
	// MaxTags and MaxEntries cap tags/list and _catalog pages.
	MaxTags, MaxEntries int
	// MaxManifestSize bounds a manifest PUT body (default 4 MiB).
	MaxManifestSize int64
	// ChunkMinLength is advertised as OCI-Chunk-Min-Length (0: not sent).
	ChunkMinLength int64
	// DisableRedirect serves blobs through the registry even when the
	// driver could redirect clients to the backend (storage.redirect.disable).
	DisableRedirect bool
	// Metrics, when set, counts requests.
	Metrics *Metrics
	// Events, when set, receives an event for every push, pull, delete and
	// mount (notifications).
	Events Events
	// Healthy, when set, is asked before every request: false answers 503
	// (a health check is failing).
	Healthy func() bool
	// Proxy, when set, mirrors the repositories it claims from upstream
	// registries (the pull-through cache).
	Proxy PullThrough
}

// smallRequestTimeout bounds reading and answering requests that carry no
// blob data (manifests, tags, catalog, referrers).
const smallRequestTimeout = time.Minute

// DefaultMaxManifestSize is the largest manifest accepted by default; the
// spec asks registries to accept at least 4 MiB.
const DefaultMaxManifestSize = 4 << 20

// Handler serves the registry API.
type Handler struct {
	opts Options
	log  *slog.Logger
	host *url.URL
}

// New returns the API handler.
func New(opts Options) (*Handler, error) {
	if opts.Registry == nil {
		return nil, errors.New("registry api: no storage")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxTags <= 0 {
		opts.MaxTags = 1000
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 1000
	}
	if opts.MaxManifestSize <= 0 {
		opts.MaxManifestSize = DefaultMaxManifestSize
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	h := &Handler{opts: opts, log: opts.Logger}
	if opts.Host != "" {
		u, err := url.Parse(opts.Host)
		if err != nil || u.Host == "" {
			return nil, errors.New("registry api: host must be an absolute URL")
		}
		h.host = u
	}
	return h, nil
}

// reqInfo is what the access log reports about a request; handlers fill it in.
type reqInfo struct {
	id   string
	user string
	rt   route
	// authorized is set once access control let the request through;
	// before that its body is never read.
	authorized bool
}

type ctxKey struct{}

func info(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(ctxKey{}).(*reqInfo)
	if ri == nil {
		return &reqInfo{}
	}
	return ri
}

// handlerFunc is the shape of every endpoint.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if h.opts.Metrics != nil {
		h.opts.Metrics.inFlight.Inc()
		defer h.opts.Metrics.inFlight.Dec()
	}
	ri := &reqInfo{id: server.RequestID(r)}
	rw := &responseWriter{ResponseWriter: w}
	hdr := rw.Header()
	for k, vs := range h.opts.Headers {
		hdr[k] = append([]string(nil), vs...)
	}
	hdr.Set("Docker-Distribution-API-Version", "registry/2.0")
	hdr.Set("X-Request-Id", ri.id)
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri))

	var err error
	if h.opts.Healthy != nil && !h.opts.Healthy() {
		err = &Error{Code: CodeUnavailable, Message: "the registry is unhealthy: a health check is failing",
			Header: http.Header{"Retry-After": {strconv.Itoa(unavailableRetryAfter)}}}
	} else {
		err = h.serve(rw, r, ri)
	}
	if err != nil {
		e := asAPIError(err)
		level := slog.LevelDebug
		if e.status() >= 500 {
			level = slog.LevelError
		}
		h.log.Log(r.Context(), level, "request failed", "request_id", ri.id, "code", e.Code.Name, "err", server.Clip(err.Error(), 2048))
		if !rw.wroteHeader {
			if !ri.authorized && r.ContentLength != 0 {
				// The body was never read and is not wanted: closing
				// spares reading it (net/http would drain it first, and a
				// client that announced a body and sends none would hold
				// the answer back).
				hdr.Set("Connection", "close")
			}
			writeError(rw, r, e)
		}
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	d := time.Since(start)
	if h.opts.Metrics != nil {
		h.opts.Metrics.observe(server.MethodLabel(r.Method), ri.rt.Kind.String(), rw.status, d)
	}
	if h.opts.AccessLog {
		server.LogAccess(r.Context(), h.log, slog.LevelInfo, server.Access{
			ID: ri.id, Method: r.Method, Path: r.URL.Path, Status: rw.status, Bytes: rw.bytes, Duration: d,
			Remote: r.RemoteAddr, Agent: r.UserAgent(), Account: ri.user,
			Attrs: []slog.Attr{slog.String("route", ri.rt.Kind.String()), slog.String("repository", ri.rt.Name)},
		})
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, ri *reqInfo) error {
	path := r.URL.Path
	// Encoded characters have no place in a registry path: names, tags,
	// digests and upload ids are all plain ASCII. Rejecting them here stops
	// "%2e%2e" and "%2f" tricks before any parsing.
	if strings.Contains(r.URL.EscapedPath(), "%") || strings.Contains(r.URL.RawPath, "%") {
		return apiErr(CodeNameInvalid, "invalid repository name: encoded characters are not allowed in the path", nil)
	}
	rest, ok := strings.CutPrefix(path, h.opts.Prefix+"/v2")
	if !ok {
		return notFound()
	}
	rt, perr := parseRoute(rest)
	if perr != nil {
		return perr
	}
	ri.rt = rt
	fn, need, err := h.dispatch(r, rt)
	if err != nil {
		return err
	}
	if h.opts.Auth != nil {
		u, err := h.opts.Auth.CheckAccess(r.Context(), r, need)
		ri.user = u.Name
		if err != nil {
			if c, ok := auth.IsChallenge(err); ok {
				return &Error{Code: CodeUnauthorized, Message: c.Message, Cause: err,
					Detail: accessDetail(need), Header: http.Header{"Www-Authenticate": {c.Header}}}
			}
			if rl, ok := auth.IsRateLimited(err); ok {
				return &Error{Code: CodeTooManyRequests, Message: rl.Error(),
					Header: http.Header{"Retry-After": {strconv.Itoa(rl.RetryAfterSeconds())}}}
			}
			return &Error{Code: CodeUnavailable, Message: "access control is unavailable", Cause: err}
		}
	}
	ri.authorized = true
	if h.opts.ReadOnly && isWrite(r.Method) {
		return readOnlyError(nil)
	}
	if isWrite(r.Method) && h.proxied(rt.Name) != nil {
		return proxyWriteRefused()
	}
	// Everything but blob bytes is small: a client that trickles it is cut
	// off. Blob transfers take as long as they need. The deadline is set
	// (or cleared) on every request, because a connection's write deadline
	// outlives the request on a kept-alive connection.
	if rt.Kind != routeBlob && rt.Kind != routeUpload && rt.Kind != routeUploadStart {
		server.LimitRequest(w, r, smallRequestTimeout)
	} else {
		server.StreamRequest(w, r)
	}
	return fn(w, r)
}

func accessDetail(need []auth.Access) any {
	if len(need) == 0 {
		return nil
	}
	out := make([]map[string]string, len(need))
	for i, a := range need {
		out[i] = map[string]string{"Type": a.Type, "Name": a.Name, "Action": strings.Join(a.Actions, ",")}
	}
	return out
}

func isWrite(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch || m == http.MethodDelete
}

func methodNotAllowed(allowed ...string) *Error {
	return &Error{Code: CodeUnsupported, Message: "method not allowed", Header: http.Header{"Allow": {strings.Join(allowed, ", ")}}}
}

func repoAccess(name string, actions ...string) auth.Access {
	return auth.Access{Type: "repository", Name: name, Actions: actions}
}

// dispatch picks the endpoint for a route and method and names the access it needs.
func (h *Handler) dispatch(r *http.Request, rt route) (handlerFunc, []auth.Access, error) {
	m := r.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	pull := []auth.Access{repoAccess(rt.Name, "pull")}
	push := []auth.Access{repoAccess(rt.Name, "pull", "push")}
	del := []auth.Access{repoAccess(rt.Name, "delete")}
	switch rt.Kind {
	case routeBase:
		if m != http.MethodGet {
			return nil, nil, methodNotAllowed("GET", "HEAD")
		}
		return h.base, nil, nil
	case routeCatalog:
		if m != http.MethodGet {
			return nil, nil, methodNotAllowed("GET", "HEAD")
		}
		return h.catalog, []auth.Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}, nil
	case routeTags:
		if m != http.MethodGet {
			return nil, nil, methodNotAllowed("GET", "HEAD")
		}
		return h.tags, pull, nil
	case routeReferrers:
		if m != http.MethodGet {
			return nil, nil, methodNotAllowed("GET", "HEAD")
		}
		return h.referrers, pull, nil
	case routeManifest:
		switch m {
		case http.MethodGet:
			return h.getManifest, pull, nil
		case http.MethodPut:
			return h.putManifest, push, nil
		case http.MethodDelete:
			return h.deleteManifest, del, nil
		}
		return nil, nil, methodNotAllowed("GET", "HEAD", "PUT", "DELETE")
	case routeBlob:
		switch m {
		case http.MethodGet:
			return h.getBlob, pull, nil
		case http.MethodDelete:
			return h.deleteBlob, del, nil
		}
		return nil, nil, methodNotAllowed("GET", "HEAD", "DELETE")
	case routeUploadStart:
		if m != http.MethodPost {
			return nil, nil, methodNotAllowed("POST")
		}
		q := r.URL.Query()
		if from := q.Get("from"); from != "" && q.Get("mount") != "" && from != rt.Name {
			if checkName(from) == nil {
				push = append(push, repoAccess(from, "pull"))
			}
		}
		return h.startUpload, push, nil
	case routeUpload:
		switch r.Method {
		case http.MethodGet:
			return h.uploadStatus, push, nil
		case http.MethodPatch:
			return h.patchUpload, push, nil
		case http.MethodPut:
			return h.putUpload, push, nil
		case http.MethodDelete:
			return h.cancelUpload, push, nil
		}
		return nil, nil, methodNotAllowed("GET", "PATCH", "PUT", "DELETE")
	}
	return nil, nil, notFound()
}

// base answers GET /v2/.
func (h *Handler) base(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, "{}")
	}
	return nil
}

// urlFor builds a Location for path (which starts with /v2/).
func (h *Handler) urlFor(r *http.Request, path string, query url.Values) string {
	u := url.URL{Path: h.opts.Prefix + path}
	if query != nil {
		u.RawQuery = query.Encode()
	}
	switch {
	case h.opts.RelativeURLs:
	case h.host != nil:
		u.Scheme, u.Host = h.host.Scheme, h.host.Host
		u.Path = strings.TrimSuffix(h.host.Path, "/") + u.Path
	default:
		u.Scheme = "http"
		if r.TLS != nil {
			u.Scheme = "https"
		}
		if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			u.Scheme = p
		}
		u.Host = r.Host
	}
	return u.String()
}

// responseWriter records the status and size for the access log. It passes
// io.ReaderFrom through so that file bodies still go out with sendfile.
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.status, w.wroteHeader = code, true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(w.ResponseWriter, src)
	}
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
