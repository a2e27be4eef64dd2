// Package static authenticates the users listed in the config file
// (docker_auth's `users:` section): bcrypt password hashes and labels.
//
// Unlike docker_auth, an unknown account costs the same bcrypt work as a
// known one with a wrong password, so response times do not tell which
// accounts exist.
package static

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// User is one entry of `users:`.
type User struct {
	// Password is a bcrypt hash ($2a$, $2b$ or $2y$), as made by
	// `gatehouse hash-password` or `htpasswd -nB`. It must be empty for the
	// anonymous user "" and set for everyone else.
	Password secret.Secret
	// Labels are handed to the authorizers on success.
	Labels authn.Labels
}

// Authenticator checks accounts against a fixed list of users. It is safe
// for concurrent use.
type Authenticator struct {
	users map[string]user
	// dummy is a hash of a random password, at the highest cost in use,
	// compared against when the account is unknown.
	dummy []byte
	// compare is bcrypt.CompareHashAndPassword; tests replace it.
	compare func(hash, password []byte) error
}

type user struct {
	hash   []byte // nil for the anonymous user
	labels authn.Labels
}

// New checks the users and builds an Authenticator. Every user but the
// anonymous "" needs a bcrypt hash (docker_auth accepts any password for a
// user without one; Gatehouse refuses such a list). All problems are
// reported at once.
func New(users Users) (*Authenticator, error) {
	a := &Authenticator{users: make(map[string]user, len(users)), compare: bcrypt.CompareHashAndPassword}
	names := make([]string, 0, len(users))
	for name := range users {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	cost := 0
	for _, name := range names {
		u := users[name]
		c, err := checkUser(name, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if name == "" {
			a.users[name] = user{labels: u.Labels.Clone()}
			continue
		}
		cost = max(cost, c)
		a.users[name] = user{hash: []byte(u.Password.Reveal()), labels: u.Labels.Clone()}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	if err != nil {
		return nil, fmt.Errorf("static: making the timing-equaliser hash: %w", err)
	}
	a.dummy = dummy
	return a, nil
}

// CheckHash accepts bcrypt hashes with the $2a$, $2b$ and $2y$ prefixes
// and returns their cost: the hashes New takes. The hash itself never
// appears in an error.
func CheckHash(h string) (int, error) {
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return 0, errors.New("the password is not a bcrypt hash ($2a$, $2b$ or $2y$); make one with `gatehouse hash-password` or `htpasswd -nB`")
	}
	c, err := bcrypt.Cost([]byte(h))
	if err != nil {
		return 0, errors.New("the password is a malformed bcrypt hash; make a new one with `gatehouse hash-password`")
	}
	return c, nil
}

// Authenticate implements authn.Authenticator.
//
// The anonymous request ("" and an empty password) succeeds only when ""
// is configured. An unknown account returns authn.ErrNoMatch (the next
// authenticator is asked) after comparing against a dummy hash; a wrong or
// empty password returns authn.ErrWrongPass. On success the labels are a
// copy the caller may keep.
func (a *Authenticator) Authenticate(ctx context.Context, account string, password secret.Secret) (authn.Labels, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, ok := a.users[account]
	if account == "" {
		// Anonymous: no bcrypt work, as no password is involved.
		if !ok {
			return nil, authn.ErrNoMatch
		}
		if !password.IsEmpty() {
			return nil, authn.ErrWrongPass
		}
		return u.labels.Clone(), nil
	}
	if !ok {
		_ = a.compare(a.dummy, []byte(password.Reveal()))
		return nil, authn.ErrNoMatch
	}
	// Compare even for an empty password so that the time taken does not
	// depend on it.
	err := a.compare(u.hash, []byte(password.Reveal()))
	if err != nil || password.IsEmpty() {
		return nil, authn.ErrWrongPass
	}
	return u.labels.Clone(), nil
}

// Name implements authn.Authenticator.
func (a *Authenticator) Name() string { return "static" }

// Close implements authn.Authenticator; there is nothing to release.
func (a *Authenticator) Close() error { return nil }

var _ authn.Authenticator = (*Authenticator)(nil)
