package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/server"
)

// reqInfo collects what the access log and metrics report about a request.
type reqInfo struct {
	endpoint string
	outcome  string
	account  string
	grant    string // OAuth2 grant_type, when there was one
	id       string
}

// statusWriter records the status code and the bytes written.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP routes a request. The token endpoints live under the chain's
// path prefix; /, /healthz, /readyz, /metrics and /.well-known/jwks.json
// answer both at the root and under the prefix.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := s.acquire()
	defer release(c)

	info := &reqInfo{id: server.RequestID(r)}
	w := &statusWriter{ResponseWriter: rw}
	w.Header().Set("X-Request-Id", info.id)
	if c.HSTS {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
	log := s.log.With("request_id", info.id)

	p := r.URL.Path
	prefix := strings.TrimSuffix(c.PathPrefix, "/")
	switch p {
	case prefix + "/auth", prefix + "/auth/token":
		info.endpoint = "token"
		s.serveToken(w, r, c, info, log)
	default:
		if prefix != "" && (p == prefix || strings.HasPrefix(p, prefix+"/")) {
			p = strings.TrimPrefix(p, prefix)
			if p == "" {
				p = "/"
			}
		}
		s.serveOther(w, r, c, p, info)
	}

	d := time.Since(start)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	s.metrics.requests.WithLabelValues(info.endpoint, info.outcome).Inc()
	s.metrics.duration.WithLabelValues(info.endpoint).Observe(d.Seconds())
	path := r.URL.Path
	if q := sanitizedQuery(r.URL.RawQuery); q != "" {
		path += "?" + q
	}
	lvl := slog.LevelInfo
	if info.endpoint != "token" {
		lvl = slog.LevelDebug // probes and scrapes would drown the log
	}
	attrs := []slog.Attr{slog.String("endpoint", info.endpoint), slog.String("outcome", info.outcome)}
	if info.grant != "" {
		attrs = append(attrs, slog.String("grant", info.grant))
	}
	server.LogAccess(r.Context(), s.log, lvl, server.Access{
		ID: info.id, Method: r.Method, Path: path, Status: w.status, Bytes: w.bytes, Duration: d,
		Remote: r.RemoteAddr, Agent: r.UserAgent(), Account: info.account, Attrs: attrs,
	})
}

func (s *Server) serveOther(w http.ResponseWriter, r *http.Request, c *Chain, p string, info *reqInfo) {
	// The endpoint is a metric label: only known paths name themselves, so
	// that made-up paths cannot mint label values.
	info.endpoint, info.outcome = "other", "ok"
	switch p {
	case "/healthz", "/readyz", "/metrics":
		info.endpoint = strings.TrimPrefix(p, "/")
	}
	if p != "/metrics" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		info.outcome = "bad_request"
		http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if c.JWKSPath != "" && p == c.JWKSPath {
		p = "/.well-known/jwks.json"
	}
	if p == "/metrics" && s.opts.NoMetricsRoute {
		p = "/not-here"
	}
	switch p {
	case "/":
		info.endpoint = "index"
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, "<!doctype html>\n<title>%[1]s</title>\n<h1>%[1]s</h1>\n<p>Docker registry token server. Tokens: <code>%[2]s/auth</code>.</p>\n",
			html.EscapeString(c.Issuer), html.EscapeString(strings.TrimSuffix(c.PathPrefix, "/")))
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	case "/readyz":
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		var problems []string
		for _, a := range c.Authenticators {
			if rd, ok := a.(Ready); ok {
				if err := rd.Ready(ctx); err != nil {
					// The reason can name servers and bind DNs: it goes to
					// the log, not to whoever can reach the probe.
					problems = append(problems, fmt.Sprintf("authenticator %s: not ready", a.Name()))
					s.log.Warn("not ready", "request_id", info.id, "authenticator", a.Name(), "err", err)
				}
			}
		}
		for _, a := range c.Authorizers {
			if rd, ok := a.(Ready); ok {
				if err := rd.Ready(ctx); err != nil {
					problems = append(problems, fmt.Sprintf("authorizer %s: not ready", a.Name()))
					s.log.Warn("not ready", "request_id", info.id, "authorizer", a.Name(), "err", err)
				}
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(problems) > 0 {
			info.outcome = "unavailable"
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, strings.Join(problems, "\n"))
			return
		}
		_, _ = fmt.Fprintln(w, "ready")
	case "/metrics":
		s.metrics.handler.ServeHTTP(w, r)
	case "/.well-known/jwks.json":
		info.endpoint = "jwks"
		b, err := c.Signer.PublicJWKS()
		if err != nil {
			info.outcome = "error"
			s.log.Error("public JWKS", "request_id", info.id, "err", err)
			http.Error(w, "Internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(b)
	default:
		info.endpoint, info.outcome = "other", "not_found"
		http.Error(w, "Not found", http.StatusNotFound)
	}
}

// httpError is a failed token request: what the client sees (status,
// msg, OAuth2 code) apart from what is logged (err).
type httpError struct {
	status     int
	msg        string
	oauth      string // OAuth2 error code, for POST grants
	err        error  // logged, never sent
	retryAfter time.Duration
	outcome    string
}

// write answers in the shape registry clients parse: the distribution
// error envelope {"errors":[{"code","message"}]}, which the Docker engine
// and the CLIs built on distribution's client turn into "unauthorized: ...",
// "toomanyrequests: ..." (a text body reaches their users as "error parsing
// HTTP 401 response body"). An OAuth2 grant's answer also carries RFC 6749's
// "error" and "error_description".
func (e *httpError) write(w http.ResponseWriter, issuer string, oauthStyle bool) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", issuer))
	}
	type registryError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body := struct {
		Errors      []registryError `json:"errors"`
		Error       string          `json:"error,omitempty"`
		Description string          `json:"error_description,omitempty"`
	}{Errors: []registryError{{Code: e.registryCode(), Message: e.msg}}}
	if oauthStyle && e.oauth != "" {
		body.Error, body.Description = e.oauth, e.msg
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(body)
}

// registryCode is the distribution error code for the answer: a grant
// that is no longer good (the account removed, the refresh token expired)
// is UNAUTHORIZED like a wrong password, so clients ask to log in again.
func (e *httpError) registryCode() string {
	switch {
	case e.status == http.StatusUnauthorized, e.oauth == "invalid_grant":
		return "UNAUTHORIZED"
	case e.status == http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	case e.status == http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case e.status == http.StatusMethodNotAllowed:
		return "UNSUPPORTED"
	default:
		return "UNKNOWN"
	}
}

func badRequest(oauth, format string, args ...any) *httpError {
	return &httpError{status: http.StatusBadRequest, oauth: oauth, msg: fmt.Sprintf(format, args...), outcome: "bad_request"}
}

func internalError(err error) *httpError {
	return &httpError{status: http.StatusInternalServerError, oauth: "server_error", msg: "Internal error; see the server log", err: err, outcome: "error"}
}
