// Package auth is the registry's access control: it decides whether a
// request may touch the resources it needs, from a bearer token issued by a
// Docker token server (auth.token) or from Basic credentials checked against
// an htpasswd file (auth.htpasswd), and builds the WWW-Authenticate
// challenge that tells a client how to get in.
package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Access is one resource a request needs and the actions it needs on it.
type Access struct {
	Type    string   // "repository" or "registry"
	Name    string   // repository name, or "catalog"
	Actions []string // pull, push, delete, or "*"
}

// String formats a as a token scope: "repository:NAME:pull,push".
func (a Access) String() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// User is who a request was authorized as.
type User struct {
	Name string
}

// Controller authorizes requests. need is empty for endpoints that only
// require a valid identity (GET /v2/). Besides nil, CheckAccess returns a
// *Challenge (401), a *RateLimited (429) or any other error (the access
// control itself failed).
type Controller interface {
	CheckAccess(ctx context.Context, r *http.Request, need []Access) (User, error)
}

// Challenge is the error a Controller returns when a request lacks valid
// credentials or the access it needs. The registry answers 401 with the
// Header as WWW-Authenticate.
type Challenge struct {
	Header  string // the WWW-Authenticate value
	Reason  string // "invalid_token", "insufficient_scope" or "" (no credentials)
	Message string // for the client: what is missing (never a secret)
	Cause   error  // for the log only
}

func (c *Challenge) Error() string {
	msg := "access denied: " + c.Message
	if c.Cause != nil {
		msg += ": " + c.Cause.Error()
	}
	return msg
}

func (c *Challenge) Unwrap() error { return c.Cause }

// IsChallenge reports whether err is (or wraps) a *Challenge and returns it.
func IsChallenge(err error) (*Challenge, bool) {
	var c *Challenge
	ok := errors.As(err, &c)
	return c, ok
}

// RateLimited is the error a Controller returns when too many logins
// failed for the account or from the client's address. The registry
// answers 429 TOOMANYREQUESTS with a Retry-After header; the password was
// not checked.
type RateLimited struct {
	Limit      string        // "account" or "address": which limit was reached
	RetryAfter time.Duration // until the next attempt is allowed
}

func (e *RateLimited) Error() string {
	return "too many failed logins for this " + e.Limit + "; retry later"
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up and at
// least 1, for the Retry-After header.
func (e *RateLimited) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// IsRateLimited reports whether err is (or wraps) a *RateLimited and
// returns it.
func IsRateLimited(err error) (*RateLimited, bool) {
	var e *RateLimited
	ok := errors.As(err, &e)
	return e, ok
}

// quote writes v as an RFC 9110 quoted-string.
func quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		// Control characters cannot appear in a header; drop them.
		if c < 0x20 || c == 0x7f {
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// BearerChallenge builds `Bearer realm="…",service="…",scope="a b",error="…"`.
// Every needed scope goes into the one scope parameter, space-separated, as
// Docker clients and the OCI conformance suite expect.
func BearerChallenge(realm, service string, need []Access, reason string) string {
	var b strings.Builder
	b.WriteString("Bearer realm=")
	b.WriteString(quote(realm))
	b.WriteString(",service=")
	b.WriteString(quote(service))
	if len(need) > 0 {
		scopes := make([]string, len(need))
		for i, a := range need {
			scopes[i] = a.String()
		}
		b.WriteString(",scope=")
		b.WriteString(quote(strings.Join(scopes, " ")))
	}
	if reason != "" {
		b.WriteString(",error=")
		b.WriteString(quote(reason))
	}
	return b.String()
}

// BasicChallenge builds `Basic realm="…"`.
func BasicChallenge(realm string) string {
	return "Basic realm=" + quote(realm) + `,charset="UTF-8"`
}

// Grants reports whether granted (the actions a credential holds on a
// resource) covers every action in want. "*" grants everything.
func Grants(granted, want []string) bool {
	have := make(map[string]bool, len(granted))
	for _, a := range granted {
		if a == "*" {
			return true
		}
		have[a] = true
	}
	for _, a := range want {
		if !have[a] {
			return false
		}
	}
	return true
}
