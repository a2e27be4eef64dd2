package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// response is what the checks keep of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
	at     time.Time // local time the answer arrived
}

// get sends a GET with the given Authorization value (none when empty).
func (r *run) get(ctx context.Context, u string, authorization secret.Secret) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if !authorization.IsEmpty() {
		req.Header.Set("Authorization", authorization.Reveal())
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only body.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body, at: r.now()}, nil
}

// dateOffset returns the server's clock minus the local clock, from the
// Date header.
func (resp *response) dateOffset() (time.Duration, bool) {
	d, err := http.ParseTime(resp.header.Get("Date"))
	if err != nil {
		return 0, false
	}
	// Date has one-second resolution: compare with the local time truncated
	// the same way.
	return d.Sub(resp.at.Truncate(time.Second)), true
}

// requestFailure explains a request that got no HTTP answer.
func (r *run) requestFailure(what string, err error) Result {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return failf("is the server running? It accepted a connection a moment ago", "%s: connection refused", what)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return failf("the server is slow or hangs; see its log (a storage backend or LDAP server that does not answer?)",
			"%s: no answer within %s", what, r.timeout)
	}
	return failf("see the error; a proxy (HTTPS_PROXY) may be in the way", "%s: %v", what, err)
}

// serverMessage extracts what a server said in an error answer: the
// distribution error list, an OAuth2 error, or the text body.
func serverMessage(body []byte) string {
	var reg struct {
		Errors []struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &reg) == nil && len(reg.Errors) > 0 {
		parts := make([]string, 0, len(reg.Errors))
		for _, e := range reg.Errors {
			p := e.Code + ": " + e.Message
			if d := strings.TrimSpace(string(e.Detail)); d != "" && d != "null" {
				p += " (detail " + clip(d, 200) + ")"
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "; ")
	}
	var oauth struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oauth) == nil && oauth.Error != "" {
		if oauth.Description != "" {
			return oauth.Error + ": " + oauth.Description
		}
		return oauth.Error
	}
	return clip(strings.TrimSpace(string(body)), 300)
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// v2 returns the registry URL of /v2/ + path, where path may end in a
// query.
func (r *run) v2(path string) string {
	u := *r.base
	p, q, _ := strings.Cut(path, "?")
	u.Path = "/v2/" + p
	u.RawQuery = q
	return u.String()
}

// checkChallenge asks GET /v2/ without credentials and reads the challenge.
func (r *run) checkChallenge(ctx context.Context) Result {
	resp, err := r.get(ctx, r.v2(""), "")
	if err != nil {
		return r.requestFailure("GET "+r.v2(""), err)
	}
	if off, ok := resp.dateOffset(); ok {
		r.regOffset, r.regDated = off, true
	}
	switch resp.status {
	case http.StatusOK:
		r.noAuth = true
		return ok("GET /v2/ answered 200: the registry asks for no credentials, so anyone who reaches it can pull and push")
	case http.StatusUnauthorized:
	case http.StatusNotFound:
		return failf("point doctor at the registry's address (http.addr in config.yml), not at the auth server or a proxy path that does not forward /v2/",
			"GET /v2/ answered 404: no registry API at %s%s", r.base, apiNote(resp))
	default:
		return failf("see the registry's log; a reverse proxy in front of it may answer instead",
			"GET /v2/ answered %d, want 401 (or 200 without auth): %s", resp.status, serverMessage(resp.body))
	}
	values := resp.header.Values("Www-Authenticate")
	if len(values) == 0 {
		return failf("a reverse proxy in front of the registry may drop the WWW-Authenticate header; pass it through",
			"GET /v2/ answered 401 without a WWW-Authenticate challenge")
	}
	chals, err := ParseChallenges(values)
	if err != nil {
		return failf("the registry's auth settings produce a challenge clients cannot read; check auth.token.realm and service for quotes or commas", "%v", err)
	}
	for _, c := range chals {
		if c.Is("Bearer") {
			return r.bearer(c)
		}
	}
	for _, c := range chals {
		if c.Is("Basic") {
			r.basic = true
			return ok("Basic realm=%q: the registry checks passwords itself (htpasswd); there is no token server", c.Params["realm"])
		}
	}
	return failf("configure auth.token (or auth.htpasswd) in the registry's config.yml",
		"the challenge %q offers neither Bearer nor Basic", strings.Join(values, ", "))
}

func apiNote(resp *response) string {
	if resp.header.Get("Docker-Distribution-Api-Version") == "" {
		return " (no Docker-Distribution-API-Version header either)"
	}
	return ""
}

func (r *run) bearer(c Challenge) Result {
	realm := c.Params["realm"]
	if realm == "" {
		return failf("set auth.token.realm in the registry's config.yml to the token server's URL (https://AUTH-HOST:5001/auth)",
			"the Bearer challenge has no realm")
	}
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return failf("auth.token.realm must be an absolute http(s) URL that clients can reach, such as https://auth.example.com:5001/auth",
			"the realm %q is not an absolute http(s) URL", realm)
	}
	r.service = c.Params["service"]
	u.Host = withPort(u)
	r.realm = u
	detail := fmt.Sprintf("Bearer realm=%q service=%q", realm, r.service)
	if r.service == "" {
		detail += " (no service: tokens will carry an empty audience)"
	}
	if u.Scheme == "http" && r.base.Scheme == "https" {
		detail += "; the realm is plain HTTP although the registry uses TLS: passwords cross the network unencrypted"
	}
	return ok("%s", detail)
}

func (r *run) checkRealmDNS(ctx context.Context) Result {
	if r.realm == nil {
		return skip("%s", r.noTokenReason())
	}
	return r.checkDNS(ctx, r.realm, "realm")
}

func (r *run) checkRealmTLS(ctx context.Context) Result {
	if r.realm == nil {
		return skip("%s", r.noTokenReason())
	}
	return r.checkTLS(ctx, r.realm, "realm")
}

func (r *run) noTokenReason() string {
	if r.noAuth {
		return "the registry asks for no authentication"
	}
	return "the registry uses Basic authentication (htpasswd), not tokens"
}

// basicAuth is the Authorization value for the user's credentials.
func (r *run) basicAuth() secret.Secret {
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(r.opts.User, r.opts.Password.Reveal())
	return secret.Secret(req.Header.Get("Authorization"))
}

// checkToken asks the realm for a token as a registry client does.
func (r *run) checkToken(ctx context.Context) Result {
	if r.realm == nil {
		return skip("%s", r.noTokenReason())
	}
	u := *r.realm
	q := u.Query()
	q.Set("service", r.service)
	q.Del("scope")
	for _, s := range r.scopes {
		q.Add("scope", s)
	}
	var auth secret.Secret
	who := "anonymous"
	if r.opts.User != "" {
		q.Set("account", r.opts.User)
		auth = r.basicAuth()
		who = r.opts.User
	}
	u.RawQuery = q.Encode()
	resp, err := r.get(ctx, u.String(), auth)
	if err != nil {
		return r.requestFailure("GET realm "+r.realm.Redacted(), err)
	}
	if off, ok := resp.dateOffset(); ok {
		r.authOffset, r.authDated = off, true
	}
	msg := serverMessage(resp.body)
	switch {
	case resp.status == http.StatusOK:
	case resp.status == http.StatusUnauthorized && r.opts.User == "":
		return failf("pass -u USER; to allow anonymous pulls, give the auth server an anonymous user (\"\" in users:) and an ACL entry for it",
			"the auth server refuses anonymous requests (HTTP 401: %s)", msg)
	case resp.status == http.StatusUnauthorized:
		return failf("check the user name and password; static users live under users: in auth_config.yml (gatehouse users passwd), LDAP users in the directory (see the auth server's log for the bind result)",
			"the auth server refused the credentials of %s: wrong user or password (HTTP 401: %s)", who, msg)
	case resp.status == http.StatusTooManyRequests:
		wait := resp.header.Get("Retry-After")
		return failf("wait "+orUnknown(wait)+" s and try again with the right password; repeated failed logins are rate limited",
			"the auth server rate-limits %s (HTTP 429, Retry-After %s): %s", who, orUnknown(wait), msg)
	case resp.status == http.StatusNotFound:
		return failf("auth.token.realm must be the token endpoint itself, such as https://AUTH-HOST:5001/auth",
			"the realm %s answered 404: not a token endpoint (%s)", r.realm.Redacted(), msg)
	case resp.status == http.StatusBadRequest:
		return failf("see the message; a scope given with --scope or --repo may be malformed",
			"the auth server rejected the request (HTTP 400: %s)", msg)
	case resp.status == http.StatusServiceUnavailable:
		return failf("the auth server's backend (LDAP, an external program) is down or unreachable; see the auth server's log",
			"the auth server is unavailable (HTTP 503: %s)", msg)
	default:
		return failf("see the auth server's log", "the auth server answered %d: %s", resp.status, msg)
	}
	var answer struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(resp.body, &answer); err != nil || (answer.Token == "" && answer.AccessToken == "") {
		return failf("auth.token.realm must be the token endpoint (docker_auth and Gatehouse serve /auth)",
			"the realm %s answered 200 but not with a token (%s)", r.realm.Redacted(), clip(string(resp.body), 120))
	}
	tok := answer.Token
	if tok == "" {
		tok = answer.AccessToken
	}
	r.tok = secret.Secret(tok)
	r.tokAt = resp.at
	r.expiresIn = answer.ExpiresIn
	info, err := decodeToken(tok)
	if err != nil {
		return failf("the realm must be a Docker token server (docker_auth, gatehouse auth-server)",
			"the token from %s is not a JWT the registry can read: %v", r.realm.Redacted(), err)
	}
	r.info = info
	detail := fmt.Sprintf("%s got a token from %s for %s", who, r.realm.Redacted(), strings.Join(r.scopes, " "))
	if answer.ExpiresIn > 0 {
		detail += fmt.Sprintf(" (expires_in %d s)", answer.ExpiresIn)
	}
	return ok("%s", detail)
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// checkTrust sends the token (or the Basic credentials) to GET /v2/.
func (r *run) checkTrust(ctx context.Context) Result {
	switch {
	case r.noAuth:
		return skip("the registry asks for no authentication")
	case r.basic && r.opts.User == "":
		return skip("Basic authentication and no -u USER given")
	}
	auth := r.basicAuth()
	if !r.basic {
		auth = secret.Secret("Bearer " + r.tok.Reveal())
	}
	resp, err := r.get(ctx, r.v2(""), auth)
	if err != nil {
		return r.requestFailure("GET /v2/ with the token", err)
	}
	if resp.status == http.StatusOK {
		if r.basic {
			return ok("GET /v2/ with %s's password: 200", r.opts.User)
		}
		return ok("GET /v2/ with the token: 200, the registry trusts the auth server's tokens")
	}
	if r.basic {
		if resp.status == http.StatusUnauthorized {
			return failf("check the user and password, and that the user is in the registry's auth.htpasswd.path file (bcrypt entries only)",
				"the registry refused %s's password (HTTP 401: %s)", r.opts.User, serverMessage(resp.body))
		}
		return failf("see the registry's log", "GET /v2/ with a password answered %d: %s", resp.status, serverMessage(resp.body))
	}
	said := registrySaid(resp)
	if resp.status != http.StatusUnauthorized {
		return failf("see the registry's log", "GET /v2/ with the token answered %d (%s)", resp.status, said)
	}
	return failf(r.trustFix(), "the registry does not trust the token: GET /v2/ with it answered 401 (%s)", said)
}

// registrySaid renders a registry's refusal: the challenge's error and
// error_description, and the JSON error list.
func registrySaid(resp *response) string {
	var parts []string
	if chals, err := ParseChallenges(resp.header.Values("Www-Authenticate")); err == nil {
		for _, c := range chals {
			if e := c.Params["error"]; e != "" {
				parts = append(parts, fmt.Sprintf("error=%q", e))
			}
			if d := c.Params["error_description"]; d != "" {
				parts = append(parts, fmt.Sprintf("error_description=%q", d))
			}
		}
	}
	if m := serverMessage(resp.body); m != "" {
		parts = append(parts, "registry says "+m)
	}
	if len(parts) == 0 {
		return "no reason given"
	}
	return strings.Join(parts, "; ")
}

// trustFix lists, from the token seen, what the registry may hold against
// it. Registries do not say which check failed, so every candidate the
// token leaves open is named, most common first.
func (r *run) trustFix() string {
	info := r.info
	var c []string
	c = append(c, fmt.Sprintf("issuer: the token's iss is %q; the registry's auth.token.issuer must be exactly that (token.issuer in auth_config.yml)", info.claims.Issuer))
	c = append(c, "signing key: "+info.keyAdvice())
	c = append(c, fmt.Sprintf("audience: the token's aud is %q, the service the registry challenged with, so auth.token.service is not the cause unless a proxy rewrites the challenge", r.service))
	return "check, in this order: " + strings.Join(c, "; ") + ". The registry's log names the reason"
}

// checkPull reads the catalog, or the tags of --repo.
func (r *run) checkPull(ctx context.Context) Result {
	var auth secret.Secret
	switch {
	case r.basic && r.opts.User != "":
		auth = r.basicAuth()
	case r.realm != nil:
		auth = secret.Secret("Bearer " + r.tok.Reveal())
	}
	path, what := "_catalog?n=100", "the catalog"
	if r.opts.Repo != "" {
		path, what = r.opts.Repo+"/tags/list", "the tags of "+r.opts.Repo
	} else if r.info != nil && !r.info.grants("registry", "catalog", "*") {
		return skip("the token does not grant registry:catalog:* to %s (the ACL decides); give --repo NAME to check a pull", r.subject())
	}
	resp, err := r.get(ctx, r.v2(path), auth)
	if err != nil {
		return r.requestFailure("GET /v2/"+path, err)
	}
	if resp.status == http.StatusOK {
		var list struct {
			Repositories []string `json:"repositories"`
			Tags         []string `json:"tags"`
		}
		_ = json.Unmarshal(resp.body, &list) // counts only
		if r.opts.Repo != "" {
			return ok("GET /v2/%s: 200, %d tags", path, len(list.Tags))
		}
		return ok("GET /v2/_catalog: 200, %d repositories", len(list.Repositories))
	}
	said := registrySaid(resp)
	switch resp.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		if r.opts.Repo != "" && r.info != nil && !r.info.grants("repository", r.opts.Repo, "pull") {
			return failf(fmt.Sprintf("the ACL gives %s no pull on %s; check with gatehouse acl check --config auth_config.yml --account %s repository:%s:pull",
				r.subject(), r.opts.Repo, r.subject(), r.opts.Repo),
				"reading %s was refused (HTTP %d; %s): the token grants no pull on %s", what, resp.status, said, r.opts.Repo)
		}
		return failf("see the registry's log", "reading %s was refused (HTTP %d; %s)", what, resp.status, said)
	case http.StatusNotFound:
		return failf("check the repository name (as in docker pull HOST/NAME, without the host)",
			"reading %s: HTTP 404 (%s)", what, said)
	}
	return failf("see the registry's log (storage errors are logged there)", "reading %s: HTTP %d (%s)", what, resp.status, said)
}

func (r *run) subject() string {
	if r.opts.User == "" {
		return "the anonymous user"
	}
	return r.opts.User
}
