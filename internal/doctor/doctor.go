// Package doctor checks a registry deployment from a client's side, link by
// link, the way `docker login` and `docker pull` walk it: the registry's
// name, its TLS certificate, its /v2/ challenge, the token server (realm)
// the challenge names, a token from it, the token's claims and header, the
// registry's acceptance of that token, and a pull. The first broken link is
// reported with what to change; checks after it are not run.
//
// Nothing it prints contains the password or the token: only the token's
// claims and header.
package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// The checks, in the order they run.
const (
	CheckDNS       = "dns"       // the registry's host name resolves
	CheckTLS       = "tls"       // TCP connection and TLS certificate of the registry
	CheckChallenge = "challenge" // GET /v2/ answers with a challenge we can read
	CheckRealmDNS  = "realm-dns" // the token server's host name resolves
	CheckRealmTLS  = "realm-tls" // TCP connection and TLS certificate of the token server
	CheckToken     = "token"     // the token server issues a token
	CheckClaims    = "claims"    // the token's audience, lifetime, clocks and key
	CheckTrust     = "trust"     // the registry accepts the token on GET /v2/
	CheckPull      = "pull"      // a read: the catalog or a repository's tags
)

// Checks lists every check in the order they run.
var Checks = []string{CheckDNS, CheckTLS, CheckChallenge, CheckRealmDNS, CheckRealmTLS, CheckToken, CheckClaims, CheckTrust, CheckPull}

// Status is the outcome of one check.
type Status string

// The outcomes.
const (
	OK   Status = "ok"
	Fail Status = "FAIL"
	Skip Status = "skip"
)

// Result is one check's outcome: what was seen and, on failure, what to
// change.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// DefaultTimeout bounds each check (connect, TLS handshake and the whole
// request).
const DefaultTimeout = 10 * time.Second

// MaxSkew is the clock difference between the machines involved above
// which the claims check fails. Registries allow 60 s of leeway on a
// token's exp and nbf.
const MaxSkew = 30 * time.Second

// registryLeeway is the leeway registry 2.x and 3.x allow on exp and nbf.
const registryLeeway = 60 * time.Second

// Options configure a Run.
type Options struct {
	// Registry is host[:port] (https assumed) or an http(s) URL.
	Registry string
	// User is the account to log in as; empty for an anonymous token.
	User string
	// Password is User's password.
	Password secret.Secret
	// CAFile is a PEM file of CA certificates trusted besides the system's.
	CAFile string
	// Repo is a repository to ask a pull token for and list the tags of.
	Repo string
	// Scopes are further scopes to ask the token server for.
	Scopes []string
	// Timeout bounds each check; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the local clock; time.Now when nil.
	Now func() time.Time
	// Resolver looks up host names; net.DefaultResolver when nil.
	Resolver *net.Resolver
}

// UsageError is an error in Options, found before any check runs.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Run runs the checks in order and passes each result to emit as soon as it
// is known. After the first failure the remaining checks are reported as
// skipped. It returns whether no check failed; the error is a *UsageError
// for bad options (before any check ran).
func Run(ctx context.Context, opts Options, emit func(Result)) (bool, error) {
	r, err := newRun(opts)
	if err != nil {
		return false, &UsageError{err}
	}
	steps := []struct {
		name string
		fn   func(context.Context) Result
	}{
		{CheckDNS, func(ctx context.Context) Result { return r.checkDNS(ctx, r.base, "registry") }},
		{CheckTLS, func(ctx context.Context) Result { return r.checkTLS(ctx, r.base, "registry") }},
		{CheckChallenge, r.checkChallenge},
		{CheckRealmDNS, r.checkRealmDNS},
		{CheckRealmTLS, r.checkRealmTLS},
		{CheckToken, r.checkToken},
		{CheckClaims, r.checkClaims},
		{CheckTrust, r.checkTrust},
		{CheckPull, r.checkPull},
	}
	failed := ""
	for _, s := range steps {
		if failed != "" {
			emit(Result{Check: s.name, Status: Skip, Detail: "not checked: " + failed + " failed"})
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		res := s.fn(cctx)
		cancel()
		res.Check = s.name
		if res.Status == Fail {
			failed = s.name
		}
		emit(res)
	}
	return failed == "", nil
}

// run is the state one Run carries from check to check.
type run struct {
	opts     Options
	timeout  time.Duration
	now      func() time.Time
	resolver *net.Resolver
	base     *url.URL            // registry base URL, path empty
	pool     *x509.CertPool      // system roots plus --ca-file
	caCerts  []*x509.Certificate // --ca-file's certificates
	scopes   []string            // asked of the token server
	client   *http.Client

	// From the challenge.
	noAuth    bool
	basic     bool
	realm     *url.URL
	service   string
	regOffset time.Duration // registry clock minus local clock
	regDated  bool

	// From the token server.
	tok        secret.Secret
	info       *tokenInfo
	authOffset time.Duration // auth server clock minus local clock
	authDated  bool
	tokAt      time.Time // local time the token arrived
	expiresIn  int64
}

func newRun(opts Options) (*run, error) {
	r := &run{opts: opts, timeout: opts.Timeout, now: opts.Now, resolver: opts.Resolver}
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	if r.timeout < 0 {
		return nil, errors.New("the timeout must be positive")
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.resolver == nil {
		r.resolver = net.DefaultResolver
	}
	base, err := parseRegistry(opts.Registry)
	if err != nil {
		return nil, err
	}
	r.base = base
	if opts.User == "" && !opts.Password.IsEmpty() {
		return nil, errors.New("a password needs a user (-u)")
	}
	r.pool, err = x509.SystemCertPool()
	if err != nil || r.pool == nil {
		r.pool = x509.NewCertPool()
	}
	if opts.CAFile != "" {
		certs, err := tlsutil.LoadCertificates(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		r.caCerts = certs
		for _, c := range certs {
			r.pool.AddCert(c)
		}
	}
	r.scopes = []string{"registry:catalog:*"}
	if opts.Repo != "" {
		r.scopes = append(r.scopes, "repository:"+opts.Repo+":pull")
	}
	r.scopes = append(r.scopes, opts.Scopes...)
	if _, err := token.ParseScopes(r.scopes); err != nil {
		return nil, err
	}
	r.client = newClient(r.pool, r.timeout)
	return r, nil
}

// parseRegistry turns "host[:port]" or "http(s)://host[:port][/]" into a
// base URL with an explicit port.
func parseRegistry(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no registry given")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", s, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("registry %q: the scheme must be https or http", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("registry %q: no host", s)
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" && p != "/v2" {
		return nil, fmt.Errorf("registry %q: give the registry's address without a path (the checks use /v2/)", s)
	}
	return &url.URL{Scheme: u.Scheme, Host: withPort(u)}, nil
}

// withPort returns u's host:port, with the scheme's default port if none.
func withPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "http" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

func ok(format string, args ...any) Result {
	return Result{Status: OK, Detail: fmt.Sprintf(format, args...)}
}

func skip(format string, args ...any) Result {
	return Result{Status: Skip, Detail: fmt.Sprintf(format, args...)}
}

func failf(fix, format string, args ...any) Result {
	return Result{Status: Fail, Detail: fmt.Sprintf(format, args...), Fix: fix}
}
