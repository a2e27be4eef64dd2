// Package ext authorizes by asking an external program, with docker_auth's
// ext_authz protocol: the program reads the request as JSON on stdin
// (fields Account, Type, Name, Service, IP, Actions, Labels) and answers
// with its exit status: 0 grants every requested action, 1 grants none,
// anything else is an error. It never answers "no match".
package ext

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
	"github.com/gatehouse-registry/gatehouse/internal/extprog"
)

// Config is the ext_authz section: the program, its arguments and the
// longest one run may take (0: DefaultTimeout). Its Validate reports every
// problem; New also checks that the command exists.
type Config = extprog.Config

// DefaultTimeout bounds one run when Config.Timeout is 0.
const DefaultTimeout = extprog.DefaultTimeout

// Authorizer runs the program once per requested scope.
type Authorizer struct {
	prog *extprog.Program
}

// New checks that the command exists.
func New(cfg Config) (*Authorizer, error) {
	p, err := extprog.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ext_authz: %w", err)
	}
	return &Authorizer{prog: p}, nil
}

// request is what the program reads: docker_auth's AuthRequestInfo, with
// its Go field names as JSON keys.
type request struct {
	Account string
	Type    string
	Name    string
	Service string
	IP      net.IP
	Actions []string
	Labels  authn.Labels
}

// Authorize implements authz.Authorizer.
func (a *Authorizer) Authorize(ctx context.Context, req *authz.Request) ([]string, error) {
	if req == nil {
		return nil, errors.New("ext_authz: nil request")
	}
	in, err := json.Marshal(request{
		Account: req.Account, Type: req.Type, Name: req.Name, Service: req.Service,
		IP: req.IP, Actions: req.Actions, Labels: req.Labels,
	})
	if err != nil {
		return nil, fmt.Errorf("ext_authz: encoding the request: %w", err)
	}
	res, err := a.prog.Run(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("ext_authz: %w", err)
	}
	switch res.Status {
	case 0:
		return requested(req.Actions), nil
	case 1:
		return []string{}, nil
	default:
		note := ""
		if res.Stderr != "" {
			note = fmt.Sprintf(": %q", res.Stderr)
		}
		return nil, fmt.Errorf("ext_authz: %s exited with status %d%s", a.prog, res.Status, note)
	}
}

// requested returns the distinct, non-empty requested actions, sorted.
func requested(actions []string) []string {
	out := make([]string, 0, len(actions))
	for _, a := range actions {
		if a != "" {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Name implements authz.Authorizer.
func (a *Authorizer) Name() string { return "ext_authz" }

// Close implements authz.Authorizer; there is nothing to release.
func (a *Authorizer) Close() error { return nil }

var _ authz.Authorizer = (*Authorizer)(nil)
