// Package authserver is the Docker registry token server: GET and POST
// /auth (and /auth/token) as cesanta/docker_auth answers them, plus the
// OAuth2 password and refresh-token grants the Docker engine uses,
// verified-credential caching, failed-login rate limits, health, readiness,
// metrics and a JWKS.
//
// The configured pieces (authenticators, authorizers, signer, settings)
// form a Chain. A Server serves one Chain at a time and swaps it atomically
// on reload: requests already running finish on the chain they started
// with, and the old chain is closed once they are done.
package authserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
	"github.com/gatehouse-registry/gatehouse/internal/credcache"
	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/token"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Chain fields left zero.
const (
	DefaultRefreshExpiration = 30 * 24 * time.Hour
	DefaultCloseGrace        = 60 * time.Second
	maxBodyBytes             = 64 << 10
)

// Signer issues signed registry tokens; *token.Signer implements it.
type Signer interface {
	Sign(claims token.Claims) (string, error)
	PublicJWKS() ([]byte, error)
}

// Ready is implemented by authenticators and authorizers that can report
// whether their backend is reachable (LDAP, for example). /readyz calls it.
type Ready interface {
	Ready(ctx context.Context) error
}

// LabelLookup is implemented by authenticators that can look an account up
// without its password. On a refresh-token grant the account's current
// labels are then used; otherwise the labels recorded at login are.
// ErrNoMatch from Lookup means the account is gone and refresh fails; an
// error wrapping errors.ErrUnsupported keeps the labels recorded at login.
type LabelLookup interface {
	Lookup(ctx context.Context, account string) (authn.Labels, error)
}

// CredentialVersion is implemented by authenticators that can tell,
// without the password, which credential an account has now: static
// users answer with the account's bcrypt hash. A refresh token records an
// HMAC of it (see credentialMAC) and is refused once it differs, so a
// password change revokes the account's refresh tokens. ErrNoMatch means
// the account is gone.
type CredentialVersion interface {
	CredentialVersion(ctx context.Context, account string) (secret.Secret, error)
}

// AccountLister is implemented by authenticators with a fixed list of
// accounts (static users). Across reloads the Server notes when an
// account appears, and refuses refresh tokens issued before: an account
// removed and added again does not get its old refresh tokens back, even
// with the very same password hash.
type AccountLister interface {
	Accounts() []string
}

// Chain is everything a configuration file decides. Build a new one per
// reload; a Server takes ownership and closes its authenticators and
// authorizers when the chain is replaced or the server closes.
type Chain struct {
	// Issuer is the tokens' iss claim and the Basic realm of a 401.
	Issuer string
	// Expiration is the lifetime of access tokens (token.expiration).
	Expiration time.Duration
	// RefreshExpiration is the lifetime of refresh tokens (default 30 days).
	RefreshExpiration time.Duration
	// Authenticators are asked in order; Authorizers likewise per scope.
	Authenticators []authn.Authenticator
	Authorizers    []authz.Authorizer
	// Signer signs access tokens.
	Signer Signer
	// RefreshKey is the HMAC key of refresh tokens. Derive it from the
	// token signing key with RefreshKey so that a key change invalidates
	// every refresh token. Empty disables refresh tokens.
	RefreshKey []byte

	// PathPrefix is server.path_prefix ("" or starting with "/").
	PathPrefix string
	// JWKSPath is a further route (under PathPrefix) for the JWKS, besides
	// /.well-known/jwks.json (token.jwks_path).
	JWKSPath string
	// HSTS adds Strict-Transport-Security to every response.
	HSTS bool
	// RealIPHeader and RealIPPos take the client address from a proxy
	// header (server.real_ip_header, server.real_ip_pos).
	RealIPHeader string
	RealIPPos    int

	// CacheTTL is how long verified credentials are remembered
	// (credcache.DefaultTTL when zero; negative disables the cache).
	CacheTTL time.Duration
	// AccountFailures and IPFailures are the failed logins allowed per
	// FailureWindow per account and per client IP (when zero,
	// ratelimit.DefaultAccountFailures and ratelimit.DefaultIPFailures per
	// ratelimit.DefaultWindow; negative disables the limit).
	AccountFailures int
	IPFailures      int
	FailureWindow   time.Duration
	// TokenCacheTTL is how long an issued access token is handed out
	// again to identical requests (DefaultTokenCacheTTL when zero;
	// negative disables the cache). Never longer than a tenth of
	// Expiration: a reused token has at least 90% of its lifetime left.
	TokenCacheTTL time.Duration
	// TokenCacheSize bounds the token cache (DefaultTokenCacheEntries
	// when zero or negative).
	TokenCacheSize int
	// SharedLimits, when not nil, keeps the failed-login buckets in Redis
	// so that replicas share them; the chain closes it.
	SharedLimits *ratelimit.Shared

	// inflight counts requests using this chain.
	inflight atomic.Int64
	// cache, tokens and limiters belong to the chain: a reload starts
	// them empty.
	cache     *credcache.Cache
	tokens    *tokenCache
	byAccount *ratelimit.Limiter
	byIP      *ratelimit.Limiter
}

func orDefault[T int | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// prepare checks c and builds its cache and limiters.
func (c *Chain) prepare(cacheSize int) error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("token issuer is empty"))
	}
	if c.Expiration <= 0 {
		errs = append(errs, errors.New("token expiration must be positive"))
	}
	if c.Signer == nil {
		errs = append(errs, errors.New("no token signer"))
	}
	if len(c.Authenticators) == 0 {
		errs = append(errs, errors.New("no authenticator"))
	}
	if c.PathPrefix != "" && c.PathPrefix[0] != '/' {
		errs = append(errs, fmt.Errorf("path prefix %q must start with /", c.PathPrefix))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.RefreshExpiration = orDefault(c.RefreshExpiration, DefaultRefreshExpiration)
	c.cache = credcache.New(orDefault(c.CacheTTL, credcache.DefaultTTL), cacheSize)
	c.tokens = newTokenCache(orDefault(c.TokenCacheTTL, DefaultTokenCacheTTL), c.Expiration, c.TokenCacheSize)
	c.byAccount = ratelimit.New(orDefault(c.AccountFailures, ratelimit.DefaultAccountFailures), c.FailureWindow, 0)
	c.byIP = ratelimit.New(orDefault(c.IPFailures, ratelimit.DefaultIPFailures), c.FailureWindow, 0)
	c.byAccount.Share(c.SharedLimits, "account")
	c.byIP.Share(c.SharedLimits, "ip")
	return nil
}

// Close closes the chain's authenticators and authorizers.
func (c *Chain) Close() error {
	var errs []error
	for _, a := range c.Authenticators {
		if err := a.Close(); err != nil {
			errs = append(errs, fmt.Errorf("authenticator %s: %w", a.Name(), err))
		}
	}
	for _, a := range c.Authorizers {
		if err := a.Close(); err != nil {
			errs = append(errs, fmt.Errorf("authorizer %s: %w", a.Name(), err))
		}
	}
	if err := c.SharedLimits.Close(); err != nil {
		errs = append(errs, fmt.Errorf("failed-login limits redis: %w", err))
	}
	return errors.Join(errs...)
}

// RefreshKey derives the refresh-token HMAC key from the token signing
// key: SHA-256 of its PKCS#8 DER, then HMAC-SHA256 over a fixed label. A
// new signing key therefore invalidates all refresh tokens.
func RefreshKey(signingKey any) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(signingKey)
	if err != nil {
		return nil, fmt.Errorf("refresh key: %w", err)
	}
	sum := sha256.Sum256(der)
	m := hmac.New(sha256.New, sum[:])
	m.Write([]byte("gatehouse refresh-token key v1"))
	return m.Sum(nil), nil
}

// Options are the parts of a Server that do not change on reload.
type Options struct {
	// Logger receives access logs and errors; nil discards them.
	Logger *slog.Logger
	// Registerer receives the server's metrics and Gatherer serves them on
	// /metrics. When both are nil a private registry with Go and process
	// collectors is used.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// NoMetricsRoute leaves /metrics off the token server's routes, for
	// when MetricsHandler is served on a listener of its own.
	NoMetricsRoute bool
	// CacheSize bounds the credential cache (credcache.DefaultMaxEntries).
	CacheSize int
	// CloseGrace is the longest an old chain waits for its requests to
	// finish after a reload before it is closed (default 60 s).
	CloseGrace time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Server is the token server's http.Handler.
type Server struct {
	chain   atomic.Pointer[Chain]
	log     *slog.Logger
	metrics *metrics
	opts    Options
	now     func() time.Time
	reload  sync.Mutex
	closers sync.WaitGroup
	closed  atomic.Bool
	// accounts notes when listed accounts appeared (see AccountLister).
	accounts accountHistory
}

// accountHistory remembers which accounts each listing authenticator had
// in the chain being served, and when an account appeared in a chain
// after the first one. It is safe for concurrent use.
type accountHistory struct {
	mu      sync.Mutex
	present map[string]map[string]bool // authenticator -> accounts
	added   map[string]time.Time       // authenticator 0x00 account -> when
}

func historyKey(authenticator, account string) string { return authenticator + "\x00" + account }

// update records the accounts of c. With first set (the server's first
// chain) nothing counts as added: what was there before the process
// started is unknown.
func (h *accountHistory) update(c *Chain, now time.Time, first bool) {
	next := make(map[string]map[string]bool)
	for _, a := range c.Authenticators {
		l, ok := a.(AccountLister)
		if !ok {
			continue
		}
		set := make(map[string]bool)
		for _, acct := range l.Accounts() {
			set[acct] = true
		}
		next[a.Name()] = set
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.added == nil {
		h.added = make(map[string]time.Time)
	}
	for name, set := range next {
		for acct := range set {
			if !first && !h.present[name][acct] {
				h.added[historyKey(name, acct)] = now
			}
		}
	}
	for k := range h.added {
		name, acct, _ := strings.Cut(k, "\x00")
		if !next[name][acct] {
			delete(h.added, k) // gone: if it comes back, it is added anew
		}
	}
	h.present = next
}

// addedAt returns when account appeared in a reload, if it did.
func (h *accountHistory) addedAt(authenticator, account string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.added[historyKey(authenticator, account)]
	return t, ok
}

// New returns a Server serving chain.
func New(chain *Chain, opts Options) (*Server, error) {
	if chain == nil {
		return nil, errors.New("authserver: no chain")
	}
	if err := chain.prepare(opts.CacheSize); err != nil {
		return nil, fmt.Errorf("authserver: %w", err)
	}
	s := &Server{log: opts.Logger, opts: opts, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.CloseGrace <= 0 {
		s.opts.CloseGrace = DefaultCloseGrace
	}
	m, err := newMetrics(opts.Registerer, opts.Gatherer, func() bool { return s.Chain().SharedLimits.Shared() })
	if err != nil {
		return nil, fmt.Errorf("authserver: %w", err)
	}
	s.metrics = m
	s.accounts.update(chain, s.now(), true)
	s.chain.Store(chain)
	return s, nil
}

// MetricsHandler serves the Prometheus metrics.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler }

// Chain returns the chain being served.
func (s *Server) Chain() *Chain { return s.chain.Load() }

// acquire returns the current chain, counted as in use until release.
func (s *Server) acquire() *Chain {
	c := s.chain.Load()
	c.inflight.Add(1)
	return c
}

func release(c *Chain) { c.inflight.Add(-1) }

// Swap replaces the chain being served. New requests use next at once;
// the old chain is closed in the background once its running requests are
// done, or after Options.CloseGrace at the latest. next starts with an
// empty credential cache, token cache and rate limits.
func (s *Server) Swap(next *Chain) error {
	if err := next.prepare(s.opts.CacheSize); err != nil {
		return err
	}
	s.accounts.update(next, s.now(), false)
	old := s.chain.Swap(next)
	s.retire(old)
	return nil
}

func (s *Server) retire(old *Chain) {
	old.cache.Purge()
	old.tokens.purge()
	s.closers.Add(1)
	go func() {
		defer s.closers.Done()
		deadline := time.Now().Add(s.opts.CloseGrace)
		// A request may have loaded the old pointer an instant before
		// the swap without having counted itself yet: wait a moment
		// before trusting a zero count.
		time.Sleep(50 * time.Millisecond)
		for old.inflight.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if err := old.Close(); err != nil {
			s.log.Warn("closing the previous auth chain", "err", err)
		}
	}()
}

// Reload builds a new chain with build and swaps it in. If build fails,
// or the chain it returns is invalid, the current chain stays and the
// error is returned (and counted in the reload metric).
func (s *Server) Reload(ctx context.Context, build func(ctx context.Context) (*Chain, error)) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	next, err := build(ctx)
	if err == nil {
		if err = s.Swap(next); err != nil {
			_ = next.Close()
		}
	}
	if err != nil {
		s.metrics.reloads.WithLabelValues("failure").Inc()
		return err
	}
	s.metrics.reloads.WithLabelValues("success").Inc()
	return nil
}

// Close closes the current chain and waits for retired chains to close.
// Call it after the HTTP server has shut down.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.chain.Load().Close()
	s.closers.Wait()
	return err
}

var _ http.Handler = (*Server)(nil)
