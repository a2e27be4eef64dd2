// Package token implements the Docker registry token format: the scope
// grammar clients send to the token server, the JWT claims the token server
// issues, signing (RS256 and ES256/384/512 with an x5c chain and a libtrust or
// RFC 7638 key ID), and verification as registry 2.x and 3.x do it.
package token

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/reference"
)

// Scope is one resource a client asks access to, as in
// "repository:library/alpine:pull,push" or "repository(plugin):vieux/sshfs:pull".
type Scope struct {
	// Type is the resource type: "repository", "registry", ...
	Type string
	// Class is the optional resource class in parentheses after the type,
	// e.g. "plugin" in "repository(plugin)". Empty when not given.
	Class string
	// Name is the resource name: a repository name, possibly with a registry
	// host and port prefix, or "catalog" for type "registry".
	Name string
	// Actions are the requested actions, de-duplicated and sorted.
	Actions []string
}

// String formats s in the grammar ParseScope reads.
func (s Scope) String() string {
	var b strings.Builder
	b.WriteString(s.Type)
	if s.Class != "" {
		b.WriteByte('(')
		b.WriteString(s.Class)
		b.WriteByte(')')
	}
	b.WriteByte(':')
	b.WriteString(s.Name)
	b.WriteByte(':')
	b.WriteString(strings.Join(s.Actions, ","))
	return b.String()
}

var (
	typeRE   = regexp.MustCompile(`^[a-z0-9]+$`)
	actionRE = regexp.MustCompile(`^(?:\*|[a-z0-9]+(?:[_-][a-z0-9]+)*)$`)
)

// ErrInvalidScope is wrapped by every error ParseScope returns.
var ErrInvalidScope = errors.New("invalid scope")

func scopeError(s, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidScope, s, fmt.Sprintf(format, args...))
}

// ParseScope parses one scope of the form type[(class)]:name:actions. The
// name may itself hold a registry host and port ("localhost:5000/alpine").
// Actions are split on "," and returned de-duplicated and sorted.
func ParseScope(s string) (Scope, error) {
	first := strings.IndexByte(s, ':')
	last := strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return Scope{}, scopeError(s, "want type:name:actions")
	}
	typ, name, actions := s[:first], s[first+1:last], s[last+1:]

	var sc Scope
	if open := strings.IndexByte(typ, '('); open >= 0 {
		if !strings.HasSuffix(typ, ")") {
			return Scope{}, scopeError(s, "resource class must be in parentheses after the type, as in repository(plugin)")
		}
		sc.Class = typ[open+1 : len(typ)-1]
		typ = typ[:open]
		if !typeRE.MatchString(sc.Class) {
			return Scope{}, scopeError(s, "resource class %q must be lower-case letters and digits", sc.Class)
		}
	}
	if !typeRE.MatchString(typ) {
		return Scope{}, scopeError(s, "resource type %q must be lower-case letters and digits", typ)
	}
	sc.Type = typ

	switch {
	case name == "":
		return Scope{}, scopeError(s, "empty resource name")
	case typ == "registry":
		if name != "catalog" {
			return Scope{}, scopeError(s, "the only registry resource is \"catalog\", not %q", name)
		}
	default:
		if err := reference.ValidateScopeName(name); err != nil {
			return Scope{}, scopeError(s, "not a valid repository name: %s", reference.Reason(err))
		}
	}
	sc.Name = name

	if actions == "" {
		return Scope{}, scopeError(s, "no actions (want e.g. pull or pull,push)")
	}
	for _, a := range strings.Split(actions, ",") {
		if a == "" {
			return Scope{}, scopeError(s, "empty action in %q", actions)
		}
		if !actionRE.MatchString(a) {
			return Scope{}, scopeError(s, "invalid action %q (want lower-case words such as pull, push, delete, or *)", a)
		}
		sc.Actions = append(sc.Actions, a)
	}
	slices.Sort(sc.Actions)
	sc.Actions = slices.Compact(sc.Actions)
	return sc, nil
}

// ParseScopes parses the values of the scope parameter of a token request.
// Each value may hold several scopes separated by spaces; empty values and
// extra spaces are ignored. The first invalid scope ends parsing with an
// error.
func ParseScopes(values []string) ([]Scope, error) {
	var out []Scope
	for _, v := range values {
		for _, f := range strings.Fields(v) {
			sc, err := ParseScope(f)
			if err != nil {
				return nil, err
			}
			out = append(out, sc)
		}
	}
	return out, nil
}
