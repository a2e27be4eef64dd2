package authserver

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
	"github.com/gatehouse-registry/gatehouse/internal/credcache"
	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// backendTimeout bounds the authentication and authorization of one request.
const backendTimeout = 30 * time.Second

// tokenResponse is the 200 body: docker_auth's two fields plus the OAuth2
// ones Docker clients read.
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// tokenRequest is a parsed token request, whichever way it came.
type tokenRequest struct {
	account  string
	password secret.Secret
	service  string
	clientID string
	scopes   []token.Scope
	ip       net.IP
	offline  bool   // a refresh token is wanted
	refresh  string // grant_type=refresh_token
	oauth    bool   // answer errors in OAuth2 JSON
	grant    string // the OAuth2 grant_type; "" for docker_auth's GET and form POST
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, c *Chain, info *reqInfo, log *slog.Logger) {
	tr, herr := s.parseTokenRequest(w, r, c)
	oauth := tr != nil && tr.oauth
	if tr != nil && tr.grant != "" {
		info.grant = truncate(tr.grant, 40)
	}
	if herr == nil {
		info.account = tr.account
		ctx, cancel := context.WithTimeout(r.Context(), backendTimeout)
		herr = s.issue(ctx, w, c, tr, info)
		cancel()
	}
	if herr != nil {
		info.outcome = herr.outcome
		if herr.err != nil {
			log.Error("token request failed", "status", herr.status, "account", info.account, "err", herr.err)
		}
		herr.write(w, c.Issuer, oauth)
	}
}

// parseTokenRequest reads GET query parameters, a docker_auth style POST,
// or an OAuth2 grant. The returned request is non-nil whenever the error
// must be written OAuth2 style.
func (s *Server) parseTokenRequest(w http.ResponseWriter, r *http.Request, c *Chain) (*tokenRequest, *httpError) {
	tr := &tokenRequest{}
	var params url.Values
	switch r.Method {
	case http.MethodGet:
		params = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			tr.oauth = true
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tr, &httpError{status: http.StatusRequestEntityTooLarge, oauth: "invalid_request", msg: fmt.Sprintf("request body larger than %d bytes", maxBodyBytes), outcome: "bad_request"}
			}
			return tr, badRequest("invalid_request", "malformed form body")
		}
		params = r.PostForm
	default:
		w.Header().Set("Allow", "GET, POST")
		return nil, &httpError{status: http.StatusMethodNotAllowed, msg: "Method not allowed", outcome: "bad_request"}
	}

	ip, err := clientIP(r, c.RealIPHeader, c.RealIPPos)
	tr.ip = ip
	tr.service = params.Get("service")
	tr.clientID = params.Get("client_id")
	grant := ""
	if r.Method == http.MethodPost {
		grant = params.Get("grant_type")
	}
	tr.oauth = grant != ""
	tr.grant = grant
	if err != nil {
		return tr, badRequest("invalid_request", "Bad request: %v", err)
	}
	scopes, err := token.ParseScopes(params["scope"])
	if err != nil {
		return tr, badRequest("invalid_scope", "Bad request: %v", err)
	}
	tr.scopes = scopes

	switch grant {
	case "":
		// docker_auth: Basic credentials, or on POST the form fields.
		user, pass, ok, err := parseBasic(r.Header.Get("Authorization"))
		if err != nil {
			return tr, badRequest("", "Bad request: %v", err)
		}
		if !ok && r.Method == http.MethodPost {
			if u, p := params.Get("username"), params.Get("password"); u != "" && p != "" {
				user, pass = u, secret.Secret(p)
			}
		}
		if herr := checkAccountName(user); herr != nil {
			return tr, herr
		}
		if acct := params.Get("account"); acct != "" && acct != user {
			return tr, badRequest("", "Bad request: user and account are not the same (%q vs %q)", user, acct)
		}
		tr.account, tr.password = user, pass
		tr.offline = params.Get("offline_token") == "true" && tr.clientID != ""
	case "password":
		if tr.clientID == "" {
			return tr, badRequest("invalid_request", "client_id is required")
		}
		tr.account, tr.password = params.Get("username"), secret.Secret(params.Get("password"))
		if tr.account == "" {
			return tr, badRequest("invalid_request", "username is required")
		}
		if herr := checkAccountName(tr.account); herr != nil {
			return tr, herr
		}
		tr.offline = params.Get("access_type") == "offline"
	case "refresh_token":
		if tr.clientID == "" {
			return tr, badRequest("invalid_request", "client_id is required")
		}
		tr.refresh = params.Get("refresh_token")
		if tr.refresh == "" {
			return tr, badRequest("invalid_request", "refresh_token is required")
		}
	default:
		return tr, badRequest("unsupported_grant_type", "grant_type %q is not supported (use password or refresh_token)", truncate(grant, 40))
	}
	return tr, nil
}

// checkAccountName refuses, before any backend is asked, account names
// with surrounding white space or control characters: a directory would
// find the entry of the trimmed name, so they would be a second spelling
// of the same account.
func checkAccountName(name string) *httpError {
	if err := authn.CheckAccountName(name); err != nil {
		return badRequest("invalid_request", "Bad request: %v", err)
	}
	return nil
}

// issue authenticates (or verifies the refresh token), authorizes every
// scope and writes the token response.
func (s *Server) issue(ctx context.Context, w http.ResponseWriter, c *Chain, tr *tokenRequest, info *reqInfo) *httpError {
	var (
		entry        credcache.Entry
		refreshToken string
		herr         *httpError
	)
	if tr.refresh != "" {
		entry, herr = s.fromRefresh(ctx, c, tr)
		if herr != nil {
			return herr
		}
		refreshToken = tr.refresh
	} else {
		entry, herr = s.authenticate(ctx, c, tr)
		if herr != nil {
			return herr
		}
	}
	// From here on the account is the authenticator's spelling of it.
	tr.account = entry.Account
	info.account = tr.account

	access, err := s.authorize(ctx, c, tr, entry.Labels)
	if err != nil {
		return internalError(err)
	}
	now := s.now()
	tok, reused, herr := s.accessToken(ctx, c, tr, entry, access, now)
	if herr != nil {
		return herr
	}
	expiresIn := int64(c.Expiration / time.Second)
	if reused {
		// What is left of it, rounded down: a client never holds on to
		// a token longer than it lives.
		expiresIn = int64(tok.expiry.Sub(now) / time.Second)
	}
	if tr.offline && len(c.RefreshKey) > 0 {
		rc := refreshClaims{
			Account: tr.account, Service: tr.service, ClientID: tr.clientID,
			Authenticator: entry.Authenticator, Labels: entry.Labels,
		}
		if rc.Credential, herr = credentialBinding(ctx, c, rc.Authenticator, rc.Account); herr != nil {
			return herr
		}
		refreshToken, err = issueRefresh(c.RefreshKey, rc, now, c.RefreshExpiration)
		if err != nil {
			return internalError(fmt.Errorf("refresh token: %w", err))
		}
	}
	body, err := json.Marshal(tokenResponse{ //nolint:gosec // G117: this response exists to carry the token
		Token:        tok.jwt,
		AccessToken:  tok.jwt,
		ExpiresIn:    expiresIn,
		IssuedAt:     tok.issued.UTC().Format(time.RFC3339),
		RefreshToken: refreshToken,
	})
	if err != nil {
		return internalError(err)
	}
	info.outcome = "issued"
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_, _ = w.Write(body)
	return nil
}

// accessToken returns the signed access token for an authenticated and
// authorized request: the one an identical request got a moment ago when
// the chain's token cache holds it (reused is then true), else a new one,
// which the cache then keeps. The cache key is made of what decides the
// token's content and of the login's identity (see tokenCache), never of
// the password. An account whose credential version cannot be read now
// gets a new token that is not cached.
func (s *Server) accessToken(ctx context.Context, c *Chain, tr *tokenRequest, entry credcache.Entry, access []token.ResourceActions, now time.Time) (tok cachedToken, reused bool, herr *httpError) {
	var key tokenKey
	cacheable := false
	if c.tokens != nil {
		id := tokenIdentity{authenticator: entry.Authenticator, account: tr.account, labels: entry.Labels, service: tr.service, access: access}
		cacheable = true
		if cv, ok := authenticatorNamed(c, entry.Authenticator).(CredentialVersion); ok {
			v, err := cv.CredentialVersion(ctx, tr.account)
			id.credential, id.hasCredential = v, true
			cacheable = err == nil
		}
		if cacheable {
			key = c.tokens.key(&id)
			if t, ok := c.tokens.get(key, now); ok {
				s.metrics.tokenCache.WithLabelValues("hit").Inc()
				return t, true, nil
			}
			s.metrics.tokenCache.WithLabelValues("miss").Inc()
		}
	}
	claims := token.NewClaims(c.Issuer, tr.account, tr.service, now, c.Expiration, access)
	jwt, err := c.Signer.Sign(claims)
	if err != nil {
		return cachedToken{}, false, internalError(fmt.Errorf("sign token: %w", err))
	}
	tok = cachedToken{jwt: jwt, issued: now, expiry: time.Unix(claims.Expiry, 0)}
	if cacheable {
		c.tokens.put(key, tok, now)
	}
	return tok, false, nil
}

func retryLater(limit string, wait time.Duration) *httpError {
	return &httpError{
		status: http.StatusTooManyRequests, oauth: "temporarily_unavailable", retryAfter: wait, outcome: "rate_limited",
		msg: fmt.Sprintf("Too many failed logins for this %s; retry later", limit),
	}
}

func authFailed() *httpError {
	return &httpError{status: http.StatusUnauthorized, oauth: "invalid_grant", msg: "Auth failed.", outcome: "denied_credentials"}
}

func unavailable(err error) *httpError {
	return &httpError{
		status: http.StatusServiceUnavailable, oauth: "temporarily_unavailable", retryAfter: 5 * time.Second, outcome: "unavailable",
		msg: "Authentication backend unavailable; retry later", err: err,
	}
}

// authenticate runs the authenticator chain, through the credential cache
// and the failed-login limits. A non-anonymous attempt reserves a token in
// the per-address bucket before the cache is asked and one in the
// per-account bucket before the authenticators are: a wrong password keeps
// both, anything else gives them back. Attempts running at the same time
// therefore cannot together get more wrong guesses than the limits allow.
//
// The per-account bucket is keyed by the name in the form directories
// compare (see accountKey), so that "UserA" and "usera" share a budget.
// The entry returned holds the account as the authenticator spells it.
func (s *Server) authenticate(ctx context.Context, c *Chain, tr *tokenRequest) (credcache.Entry, *httpError) {
	anonymous := tr.account == "" && tr.password.IsEmpty()
	var byIP, byAccount ratelimit.Reservation
	wrong := false
	defer func() {
		if !wrong {
			byIP.Release()
			byAccount.Release()
		}
	}()
	if !anonymous {
		var ok bool
		var wait time.Duration
		if byIP, ok, wait = c.byIP.ReserveContext(ctx, ipKey(tr)); !ok {
			s.metrics.rateLimited.WithLabelValues("ip").Inc()
			return credcache.Entry{}, retryLater("address", wait)
		}
	}
	if e, ok := c.cache.Get(tr.account, tr.password); ok {
		s.metrics.cache.WithLabelValues("hit").Inc()
		return e, nil
	}
	if c.cache != nil {
		s.metrics.cache.WithLabelValues("miss").Inc()
	}
	if !anonymous {
		var ok bool
		var wait time.Duration
		if byAccount, ok, wait = c.byAccount.ReserveContext(ctx, accountKey(tr.account)); !ok {
			s.metrics.rateLimited.WithLabelValues("account").Inc()
			return credcache.Entry{}, retryLater("account", wait)
		}
	}
	failed := func() (credcache.Entry, *httpError) {
		wrong = true // the reserved tokens are kept
		return credcache.Entry{}, authFailed()
	}
	for i, a := range c.Authenticators {
		account, labels, err := authenticateAccount(ctx, a, tr.account, tr.password)
		switch {
		case err == nil:
			if herr := checkCanonical(tr.account, account); herr != nil {
				herr.err = fmt.Errorf("authenticator #%d (%s): %w", i+1, a.Name(), herr.err)
				return credcache.Entry{}, herr
			}
			e := credcache.Entry{Account: account, Labels: labels, Authenticator: a.Name()}
			c.cache.Put(tr.account, tr.password, e)
			return e, nil
		case errors.Is(err, authn.ErrNoMatch):
			continue
		case errors.Is(err, authn.ErrWrongPass):
			return failed()
		case errors.Is(err, authn.ErrUnavailable):
			return credcache.Entry{}, unavailable(fmt.Errorf("authenticator #%d (%s): %w", i+1, a.Name(), err))
		default:
			return credcache.Entry{}, internalError(fmt.Errorf("authenticator #%d (%s): %w", i+1, a.Name(), err))
		}
	}
	return failed()
}

// authenticateAccount asks a, and returns the account as a spells it:
// the name as given when a matches names exactly.
func authenticateAccount(ctx context.Context, a authn.Authenticator, account string, password secret.Secret) (string, authn.Labels, error) {
	if aa, ok := a.(authn.AccountAuthenticator); ok {
		return aa.AuthenticateAccount(ctx, account, password)
	}
	labels, err := a.Authenticate(ctx, account, password)
	return account, labels, err
}

// checkCanonical refuses a name an authenticator returned for a login
// that it cannot be: empty for a named login (that would be the
// anonymous account) or a name the token endpoint would refuse.
func checkCanonical(typed, canonical string) *httpError {
	var err error
	switch {
	case typed != "" && canonical == "":
		err = errors.New("accepted a login but returned an empty account name")
	case typed == "" && canonical != "":
		err = errors.New("returned an account name for the anonymous login")
	default:
		if cerr := authn.CheckAccountName(canonical); cerr != nil {
			err = fmt.Errorf("returned an unusable account name: %w", cerr)
		}
	}
	if err != nil {
		return internalError(err)
	}
	return nil
}

// accountKey is an account name as a failed-login bucket key: lower
// case, format characters (soft hyphen, zero-width space) dropped and
// runs of white space folded into one space, roughly as directories
// compare names. "UserA", "USERA" and "user\u00ada" thus share the budget
// of "usera" before any backend has said which account they are.
func accountKey(name string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(name) {
		switch {
		case unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// ipKey is the client address as a rate-limit key.
func ipKey(tr *tokenRequest) string {
	if tr.ip == nil {
		return ""
	}
	return tr.ip.String()
}

// fromRefresh checks a refresh token and returns the account's labels:
// current ones when its authenticator can look accounts up, else those
// recorded at login. Like a login, the check reserves a token in the
// per-address bucket first; a forged or malformed refresh token keeps it.
func (s *Server) fromRefresh(ctx context.Context, c *Chain, tr *tokenRequest) (credcache.Entry, *httpError) {
	byIP, ok, wait := c.byIP.ReserveContext(ctx, ipKey(tr))
	if !ok {
		s.metrics.rateLimited.WithLabelValues("ip").Inc()
		return credcache.Entry{}, retryLater("address", wait)
	}
	rc, err := verifyRefresh(c.RefreshKey, tr.refresh, tr.service, tr.clientID, s.now())
	if err != nil {
		if !errors.Is(err, errRefreshSignature) && !errors.Is(err, errRefreshMalformed) {
			byIP.Release()
		}
		return credcache.Entry{}, badRequest("invalid_grant", "%v", err)
	}
	byIP.Release()
	tr.account = rc.Account
	e := credcache.Entry{Account: rc.Account, Labels: rc.Labels, Authenticator: rc.Authenticator}
	a := authenticatorNamed(c, rc.Authenticator)
	if a == nil {
		return credcache.Entry{}, badRequest("invalid_grant", "the authenticator that accepted this login is no longer configured; log in again")
	}
	if added, ok := s.accounts.addedAt(rc.Authenticator, rc.Account); ok && rc.IssuedAt < added.Unix() {
		return credcache.Entry{}, badRequest("invalid_grant", "the account was removed and added again since this refresh token was issued; log in again")
	}
	cred, herr := credentialBinding(ctx, c, rc.Authenticator, rc.Account)
	if herr != nil {
		return credcache.Entry{}, herr
	}
	if !hmac.Equal([]byte(cred), []byte(rc.Credential)) {
		return credcache.Entry{}, badRequest("invalid_grant", "the account's password changed since this refresh token was issued; log in again")
	}
	if lk, ok := a.(LabelLookup); ok {
		labels, err := lk.Lookup(ctx, rc.Account)
		switch {
		case err == nil:
			e.Labels = labels
		case errors.Is(err, errors.ErrUnsupported):
			// Keep the labels recorded at login.
		case errors.Is(err, authn.ErrNoMatch):
			return credcache.Entry{}, badRequest("invalid_grant", "the account no longer exists; log in again")
		case errors.Is(err, authn.ErrUnavailable):
			return credcache.Entry{}, unavailable(err)
		default:
			return credcache.Entry{}, internalError(fmt.Errorf("look up %s: %w", rc.Authenticator, err))
		}
	}
	return e, nil
}

// authenticatorNamed returns the chain's authenticator called name, or nil.
func authenticatorNamed(c *Chain, name string) authn.Authenticator {
	idx := slices.IndexFunc(c.Authenticators, func(a authn.Authenticator) bool { return a.Name() == name })
	if idx < 0 {
		return nil
	}
	return c.Authenticators[idx]
}

// credentialBinding returns what a refresh token for account records of
// its credential: an HMAC, under the refresh key, of the version the
// authenticator named reports (for static users, the bcrypt hash), or ""
// when that authenticator cannot report one. An account that is gone
// gives invalid_grant.
func credentialBinding(ctx context.Context, c *Chain, authenticator, account string) (string, *httpError) {
	cv, ok := authenticatorNamed(c, authenticator).(CredentialVersion)
	if !ok {
		return "", nil
	}
	v, err := cv.CredentialVersion(ctx, account)
	switch {
	case errors.Is(err, authn.ErrNoMatch):
		return "", badRequest("invalid_grant", "the account no longer exists; log in again")
	case err != nil:
		return "", internalError(fmt.Errorf("credential of %s account: %w", authenticator, err))
	}
	return credentialMAC(c.RefreshKey, authenticator, account, v), nil
}

// authorize asks the authorizers about every scope. Each scope yields one
// entry; a denial (or no authorizer answering) grants no actions.
func (s *Server) authorize(ctx context.Context, c *Chain, tr *tokenRequest, labels authn.Labels) ([]token.ResourceActions, error) {
	access := make([]token.ResourceActions, 0, len(tr.scopes))
	for _, sc := range tr.scopes {
		req := &authz.Request{
			Account: tr.account, Type: sc.Type, Name: sc.Name, Service: tr.service,
			IP: tr.ip, Actions: slices.Clone(sc.Actions), Labels: labels,
		}
		granted := []string{}
	chain:
		for i, a := range c.Authorizers {
			got, err := a.Authorize(ctx, req)
			switch {
			case err == nil:
				// Never grant more than was asked, whatever the authorizer says.
				for _, act := range got {
					if slices.Contains(sc.Actions, act) && !slices.Contains(granted, act) {
						granted = append(granted, act)
					}
				}
				slices.Sort(granted)
				break chain
			case errors.Is(err, authz.ErrNoMatch):
				continue
			default:
				return nil, fmt.Errorf("authorizer #%d (%s) on %s: %w", i+1, a.Name(), sc, err)
			}
		}
		access = append(access, token.ResourceActions{Type: sc.Type, Class: sc.Class, Name: sc.Name, Actions: granted})
	}
	return access, nil
}
