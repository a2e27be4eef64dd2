package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// Verifier checks a token's signature, issuer, audience and lifetime and
// returns its claims. *token.Verifier implements it.
type Verifier interface {
	Verify(tokenString string) (*token.Claims, error)
}

// TokenOptions configures a Token controller (auth.token in config.yml).
type TokenOptions struct {
	Realm            string // token server URL sent in challenges
	Service          string // sent in challenges; the verifier checks it as the audience
	AutoRedirect     bool   // build the realm from the request's host instead
	AutoRedirectPath string // path of the realm when AutoRedirect is on
	Verifier         Verifier
}

// Token authorizes requests carrying a bearer token from a Docker token
// server, checking the token's access claim against what the request needs.
type Token struct {
	opts TokenOptions
}

// NewToken returns a Token controller.
func NewToken(opts TokenOptions) (*Token, error) {
	if opts.Verifier == nil {
		return nil, errors.New("token auth: no verifier")
	}
	if opts.Realm == "" && !opts.AutoRedirect {
		return nil, errors.New("token auth: realm is required")
	}
	if opts.AutoRedirectPath == "" {
		opts.AutoRedirectPath = "/auth/token/"
	}
	return &Token{opts: opts}, nil
}

// realm returns the realm for r's challenge.
func (t *Token) realm(r *http.Request) string {
	if !t.opts.AutoRedirect {
		return t.opts.Realm
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host + t.opts.AutoRedirectPath
}

// CheckAccess verifies the bearer token and checks that its access claim
// grants every action in need. The challenge on failure names every scope
// the request needs.
func (t *Token) CheckAccess(_ context.Context, r *http.Request, need []Access) (User, error) {
	challenge := func(reason, msg string, cause error) error {
		return &Challenge{Header: BearerChallenge(t.realm(r), t.opts.Service, need, reason), Reason: reason, Message: msg, Cause: cause}
	}
	raw, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return User{}, challenge("", "authentication required", nil)
	}
	claims, err := t.opts.Verifier.Verify(raw)
	if err != nil {
		return User{}, challenge("invalid_token", "invalid or expired token", err)
	}
	for _, a := range need {
		if !granted(claims.Access, a) {
			return User{Name: claims.Subject}, challenge("insufficient_scope", "the token does not grant "+a.String(), nil)
		}
	}
	return User{Name: claims.Subject}, nil
}

// granted reports whether the access claim covers a.
func granted(access []token.ResourceActions, a Access) bool {
	var have []string
	for _, ra := range access {
		if ra.Type == a.Type && ra.Name == a.Name {
			have = append(have, ra.Actions...)
		}
	}
	return Grants(have, a.Actions)
}

// bearerToken extracts the token from an Authorization header.
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

var _ Controller = (*Token)(nil)
