// Package authz defines how Gatehouse decides what an authenticated account may do.
package authz

import (
	"context"
	"errors"
	"net"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
)

// ErrNoMatch means the authorizer has no opinion; the next one is asked.
// When no authorizer answers, nothing is granted.
var ErrNoMatch = errors.New("authz: no match")

// Request is one scope of a token request, with who asks for it.
type Request struct {
	Account string
	Type    string // "repository", "registry", ...
	Name    string // "library/alpine", "catalog"
	Service string
	IP      net.IP // nil when unknown
	Actions []string
	Labels  authn.Labels
}

// Authorizer decides which of the requested actions are granted.
type Authorizer interface {
	// Authorize returns the granted actions, always a subset of req.Actions
	// (an empty, non-nil slice for a denial), or ErrNoMatch, or an error.
	Authorize(ctx context.Context, req *Request) ([]string, error)
	Name() string
	Close() error
}
