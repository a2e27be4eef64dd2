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
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

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

// AccountAuthenticator is implemented by authenticators whose backend has
// its own spelling of an account name: a directory matches "UserA",
// "USERA" and "usera" to one entry. AuthenticateAccount answers as
// Authenticate does and, on success, also returns the account's name as
// the backend spells it (for LDAP, the entry's uid). The auth server uses
// that name for everything after the password check: the ACL, the token's
// sub, refresh tokens and the credential cache. Authenticators that match
// names exactly (static users) need not implement it.
type AccountAuthenticator interface {
	AuthenticateAccount(ctx context.Context, account string, password secret.Secret) (canonical string, labels Labels, err error)
}

// CheckAccountName refuses account names no backend should be asked
// about: leading or trailing white space, control characters, and bytes
// that are not UTF-8. Such names either name the same entry as their
// trimmed form in a directory, or cannot be typed on purpose. The error
// names the problem, never the name.
func CheckAccountName(name string) error {
	if !utf8.ValidString(name) {
		return errors.New("the account name is not valid UTF-8")
	}
	if strings.TrimFunc(name, unicode.IsSpace) != name {
		return errors.New("the account name starts or ends with white space")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("the account name contains the control character %U", r)
		}
	}
	return nil
}
