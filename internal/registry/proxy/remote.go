package proxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Timeouts of every call to an upstream. The body of a blob may take as
// long as it needs while bytes flow; a body that stops for StallTimeout
// ends the fetch.
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	// smallCallTimeout bounds a whole call that moves no blob: a token, a
	// manifest, a HEAD.
	smallCallTimeout     = time.Minute
	defaultStallTimeout  = time.Minute
	maxTokenResponseSize = 1 << 20
	// tokenMargin is taken off a token's lifetime so that it is not used
	// in its last seconds; tokens without expires_in live 60 s (the
	// Docker token spec's default).
	tokenMargin         = 5 * time.Second
	defaultTokenSeconds = 60
)

// NewTransport returns the HTTP transport for upstream calls: bounded dial,
// TLS handshake and response-header waits, TLS 1.2 or later, the
// environment's HTTP(S)_PROXY settings.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// remote is one upstream registry: its base URL, credentials and the
// tokens it handed out, per scope.
type remote struct {
	base   *url.URL
	user   string
	pass   secret.Secret
	client *http.Client
	stall  time.Duration
	now    func() time.Time

	mu     sync.Mutex
	tokens map[string]cachedToken // by scope
	// bearer is the last Bearer challenge seen: later scopes fetch a
	// token before their first request instead of after a 401.
	bearer *challenge
	basic  bool // the upstream asked for Basic credentials
}

type cachedToken struct {
	token   secret.Secret
	expires time.Time
}

// UpstreamError is an answer from an upstream that is no content: a
// status (401, 403, 429, 5xx, ...) or, with Status 0, no answer at all.
// Its text names the call and the status, never credentials or bodies.
type UpstreamError struct {
	Op     string // e.g. "GET manifest library/alpine:3"
	Status int    // 0: unreachable, timed out, or a broken answer
	// RetryAfter is the upstream's Retry-After header, passed on with 429.
	RetryAfter string
	Err        error
}

func (e *UpstreamError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("upstream %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("upstream %s: HTTP %d", e.Op, e.Status)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// UpstreamStatus is the upstream's HTTP status (0 when it did not answer).
func (e *UpstreamError) UpstreamStatus() int { return e.Status }

// RetryAfterHeader is the upstream's Retry-After, if it sent one.
func (e *UpstreamError) RetryAfterHeader() string { return e.RetryAfter }

// fallback reports whether err lets a cached copy be served instead: the
// upstream is unreachable, slow, limiting us (429), failing (5xx), or
// refusing our credentials (401, 403). A 404 is an answer, not a failure.
func fallback(err error) bool {
	var ue *UpstreamError
	if !errors.As(err, &ue) {
		return false
	}
	s := ue.Status
	return s == 0 || s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusTooManyRequests || s >= 500
}

func newRemote(rawURL, user string, pass secret.Secret, rt http.RoundTripper, stall time.Duration, now func() time.Time) (*remote, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("upstream URL %q is not an absolute http(s) URL", rawURL)
	}
	u.Path, u.RawPath = "", ""
	if stall <= 0 {
		stall = defaultStallTimeout
	}
	return &remote{base: u, user: user, pass: pass, client: &http.Client{Transport: rt}, stall: stall, now: now,
		tokens: map[string]cachedToken{}}, nil
}

// get sends method to /v2/<repo>/<path> with the given Accept, taking care
// of the upstream's authentication: a cached token for the repository's
// pull scope, else the 401 challenge, a token fetched from its realm (with
// Basic credentials when configured) and one retry. A 2xx answer is
// returned with its body (the caller closes it); anything else is an
// *UpstreamError. The body stops with an error when no byte arrives for
// the stall timeout.
func (r *remote) get(ctx context.Context, method, repo, path string, accept []string) (*http.Response, error) {
	op := method + " " + repo + path
	scope := "repository:" + repo + ":pull"
	u := *r.base
	u.Path = "/v2/" + repo + path
	for attempt := 0; ; attempt++ {
		authz, err := r.authorization(ctx, scope)
		if err != nil {
			var ue *UpstreamError
			if errors.As(err, &ue) {
				return nil, ue
			}
			return nil, &UpstreamError{Op: op, Err: err}
		}
		rctx, cancel := context.WithCancel(ctx)
		req, err := http.NewRequestWithContext(rctx, method, u.String(), nil)
		if err != nil {
			cancel()
			return nil, &UpstreamError{Op: op, Err: err}
		}
		for _, a := range accept {
			req.Header.Add("Accept", a)
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		req.Header.Set("User-Agent", "gatehouse-proxy")
		resp, err := r.client.Do(req)
		if err != nil {
			cancel()
			return nil, &UpstreamError{Op: op, Err: scrub(err)}
		}
		if resp.StatusCode/100 == 2 {
			resp.Body = newStallReader(resp.Body, r.stall, cancel)
			return resp, nil
		}
		retryAfter := resp.Header.Get("Retry-After")
		chal := resp.Header.Values("Www-Authenticate")
		drain(resp.Body)
		cancel()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && r.learn(chal, scope) {
			continue
		}
		return nil, &UpstreamError{Op: op, Status: resp.StatusCode, RetryAfter: retryAfter}
	}
}

// drain reads a little of an unwanted body so the connection can be
// reused, then closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// scrub drops the URL from a client error (it names the upstream host,
// which is fine, but keep the text short and free of query strings).
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// learn reads the challenges of a 401 and reports whether a retry can do
// better: a Bearer challenge (a token is fetched on the retry), or a Basic
// challenge while credentials are configured and were not sent yet.
func (r *remote) learn(values []string, scope string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tokens, scope) // a rejected token is not tried again
	for _, v := range values {
		for _, c := range parseChallenges(v) {
			switch c.scheme {
			case "bearer":
				if c.params["realm"] == "" {
					continue
				}
				cc := c
				r.bearer = &cc
				return true
			case "basic":
				if r.user != "" && !r.basic {
					r.basic = true
					return true
				}
			}
		}
	}
	return false
}

// authorization returns the Authorization header for a call in scope:
// a cached token, a token fetched now (once a Bearer challenge is known),
// Basic credentials (once asked for), or nothing.
func (r *remote) authorization(ctx context.Context, scope string) (string, error) {
	r.mu.Lock()
	tok, ok := r.tokens[scope]
	bearer, basic := r.bearer, r.basic
	r.mu.Unlock()
	if ok && r.now().Before(tok.expires) {
		return "Bearer " + tok.token.Reveal(), nil
	}
	if bearer != nil {
		t, err := r.fetchToken(ctx, bearer, scope)
		if err != nil {
			return "", err
		}
		return "Bearer " + t.Reveal(), nil
	}
	if basic && r.user != "" {
		return basicAuth(r.user, r.pass), nil
	}
	return "", nil
}

func basicAuth(user string, pass secret.Secret) string {
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(user, pass.Reveal())
	return req.Header.Get("Authorization")
}

// tokenResponse is the Docker token endpoint's answer.
type tokenResponse struct {
	Token       string    `json:"token"`
	AccessToken string    `json:"access_token"`
	ExpiresIn   int       `json:"expires_in"`
	IssuedAt    time.Time `json:"issued_at"`
}

// fetchToken asks the challenge's realm for a token for scope. The
// credentials go along only to an https realm or to the upstream's own
// host: a challenge cannot send them elsewhere in the clear.
func (r *remote) fetchToken(ctx context.Context, c *challenge, scope string) (secret.Secret, error) {
	realm, err := url.Parse(c.params["realm"])
	if err != nil || realm.Host == "" || (realm.Scheme != "http" && realm.Scheme != "https") {
		return "", errors.New("the upstream's token realm is not an absolute http(s) URL")
	}
	q := realm.Query()
	if s := c.params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("scope", scope)
	realm.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, smallCallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	if r.user != "" && (realm.Scheme == "https" || realm.Host == r.base.Host) {
		req.SetBasicAuth(r.user, r.pass.Reveal())
	}
	req.Header.Set("User-Agent", "gatehouse-proxy")
	resp, err := r.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", scrub(err))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", &UpstreamError{Op: "GET token", Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	}
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxTokenResponseSize)).Decode(&tr); err != nil {
		return "", errors.New("token request: the answer is not a token response")
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", errors.New("token request: the answer holds no token")
	}
	secs := tr.ExpiresIn
	if secs <= 0 {
		secs = defaultTokenSeconds
	}
	issued := r.now()
	if !tr.IssuedAt.IsZero() && tr.IssuedAt.Before(issued) {
		issued = tr.IssuedAt
	}
	expires := issued.Add(time.Duration(secs)*time.Second - tokenMargin)
	r.mu.Lock()
	r.tokens[scope] = cachedToken{token: secret.Secret(tok), expires: expires}
	r.mu.Unlock()
	return secret.Secret(tok), nil
}

// stallReader ends a body (through cancel, the request's context) when no
// byte arrives for d.
type stallReader struct {
	rc     io.ReadCloser
	d      time.Duration
	timer  *time.Timer
	cancel context.CancelFunc
}

func newStallReader(rc io.ReadCloser, d time.Duration, cancel context.CancelFunc) *stallReader {
	return &stallReader{rc: rc, d: d, timer: time.AfterFunc(d, cancel), cancel: cancel}
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	err := s.rc.Close()
	s.cancel()
	return err
}

// contentLength reads Content-Length (-1 when absent or bad).
func contentLength(h http.Header) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(h.Get("Content-Length")), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
