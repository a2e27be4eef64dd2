package static

import (
	"errors"
	"fmt"
	"sort"
)

// Users is the user list New takes, keyed by account; "" is the anonymous
// user.
type Users map[string]User

// Validate reports every problem with the users, joined, in account
// order: the same problems New refuses.
func (us Users) Validate() error {
	names := make([]string, 0, len(us))
	for name := range us {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		if _, err := checkUser(name, us[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkUser checks one user and returns the bcrypt cost of its hash (0
// for the anonymous user).
func checkUser(name string, u User) (int, error) {
	hash := u.Password.Reveal()
	switch {
	case name == "" && hash != "":
		return 0, errors.New(`users: the anonymous user "" must not have a password (anonymous clients send none)`)
	case name == "":
		return 0, nil
	case hash == "":
		return 0, fmt.Errorf("users: %q has no password; set a bcrypt hash from `gatehouse hash-password`", name)
	}
	c, err := CheckHash(hash)
	if err != nil {
		return 0, fmt.Errorf("users: %q: %w", name, err)
	}
	return c, nil
}
