// Package authn defines how Gatehouse checks who a client is.
//
// Authenticators are tried in order. Each answers with labels (success),
// ErrNoMatch (not mine: ask the next one), ErrWrongPass (stop: 401),
// an error wrapping ErrUnavailable (a backend is down: 503) or any other
// error (500).
package authn

import (
	"context"
	"errors"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Labels are facts about an account (for example LDAP groups) that the
// authorizer can match on. Keys are label names; values are lists.
type Labels map[string][]string

// Clone returns a deep copy of l.
func (l Labels) Clone() Labels {
	if l == nil {
		return nil
	}
	out := make(Labels, len(l))
	for k, v := range l {
		out[k] = append([]string(nil), v...)
	}
	return out
}

var (
	// ErrNoMatch means the authenticator does not know the account; the next one is asked.
	ErrNoMatch = errors.New("authn: no match")
	// ErrWrongPass means the account is known and the password is wrong.
	ErrWrongPass = errors.New("authn: wrong password")
	// ErrUnavailable means a backend could not be reached; clients should retry later.
	ErrUnavailable = errors.New("authn: backend unavailable")
)

// Authenticator checks an account and password.
type Authenticator interface {
	// Authenticate returns the account's labels, or one of the errors above.
	// An anonymous request has an empty account and password.
	Authenticate(ctx context.Context, account string, password secret.Secret) (Labels, error)
	// Name identifies the authenticator in logs and metrics ("static", "ldap", "ext").
	Name() string
	// Close releases connections and other resources.
	Close() error
}
