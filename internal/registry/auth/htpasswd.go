package auth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authn/static"
	"github.com/gatehouse-registry/gatehouse/internal/credcache"
	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Htpasswd checks HTTP Basic credentials against an htpasswd file whose
// hashes are all bcrypt, with the auth server's pieces: the static
// backend's checker (an unknown user costs the same bcrypt work as a wrong
// password), the credential cache (a client pushing many layers does not
// pay for bcrypt on every request), and the failed-login limits per account
// and per client address, at ratelimit's defaults.
type Htpasswd struct {
	realm     string
	users     *static.Authenticator
	cache     *credcache.Cache
	byAccount *ratelimit.Limiter
	byIP      *ratelimit.Limiter
}

// htpasswdAuthenticator names htpasswd entries in the credential cache.
const htpasswdAuthenticator = "htpasswd"

// LoadHtpasswd reads an htpasswd file. Lines are "user:hash"; blank lines
// and lines starting with # are skipped. A hash that is not bcrypt (MD5
// "$apr1$", SHA1 "{SHA}", crypt, plain) is refused with the line number.
func LoadHtpasswd(realm, path string) (*Htpasswd, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	h, err := ParseHtpasswd(realm, data)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	return h, nil
}

// ParseHtpasswd parses htpasswd content (see LoadHtpasswd).
func ParseHtpasswd(realm string, data []byte) (*Htpasswd, error) {
	users := static.Users{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want user:bcrypt-hash", line)
		}
		if _, err := static.CheckHash(hash); err != nil {
			return nil, fmt.Errorf("line %d: the hash for user %q is not bcrypt; only bcrypt hashes are accepted (htpasswd -B, or gatehouse hash-password)", line, user)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q appears twice", line, user)
		}
		users[user] = static.User{Password: secret.Secret(hash)}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	checker, err := static.New(users)
	if err != nil {
		return nil, err
	}
	return &Htpasswd{
		realm:     realm,
		users:     checker,
		cache:     credcache.New(credcache.DefaultTTL, 0),
		byAccount: ratelimit.New(ratelimit.DefaultAccountFailures, ratelimit.DefaultWindow, 0),
		byIP:      ratelimit.New(ratelimit.DefaultIPFailures, ratelimit.DefaultWindow, 0),
	}, nil
}

// CheckAccess checks the request's Basic credentials. Any valid user may do
// anything: htpasswd has no per-repository rules (as in distribution).
//
// As in the auth server, an attempt reserves a failed-login slot for the
// client's address before the cache is asked, and one for the account
// before bcrypt runs; a wrong password or unknown user keeps both, anything
// else gives them back. Past either limit the answer is a *RateLimited.
func (h *Htpasswd) CheckAccess(ctx context.Context, r *http.Request, _ []Access) (User, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return User{}, &Challenge{Header: BasicChallenge(h.realm), Message: "authentication required"}
	}
	password := secret.Secret(pass)

	byIP, ok, wait := h.byIP.Reserve(clientAddr(r))
	if !ok {
		return User{}, &RateLimited{Limit: "address", RetryAfter: wait}
	}
	var byAccount ratelimit.Reservation
	wrong := false
	defer func() {
		if !wrong {
			byIP.Release()
			byAccount.Release()
		}
	}()
	if _, hit := h.cache.Get(user, password); hit {
		return User{Name: user}, nil
	}
	if byAccount, ok, wait = h.byAccount.Reserve(user); !ok {
		return User{}, &RateLimited{Limit: "account", RetryAfter: wait}
	}
	_, err := h.users.Authenticate(ctx, user, password)
	switch {
	case err == nil:
		h.cache.Put(user, password, credcache.Entry{Authenticator: htpasswdAuthenticator})
		return User{Name: user}, nil
	case errors.Is(err, authn.ErrWrongPass), errors.Is(err, authn.ErrNoMatch):
		wrong = true // the reserved slots are kept
		return User{}, &Challenge{Header: BasicChallenge(h.realm), Reason: "invalid_credentials", Message: "invalid username or password"}
	default:
		// The request was cancelled: no verdict on the password.
		return User{}, fmt.Errorf("htpasswd: %w", err)
	}
}

// clientAddr is the request's peer address, the key of the per-address
// limit. The registry has no trusted-proxy setting, so forwarding headers
// (which any client can set) are not read.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return host
}

// setClock replaces time.Now in the cache and the limiters, for tests.
func (h *Htpasswd) setClock(now func() time.Time) {
	h.cache.SetClock(now)
	h.byAccount.SetClock(now)
	h.byIP.SetClock(now)
}

var _ Controller = (*Htpasswd)(nil)
