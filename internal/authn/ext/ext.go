// Package ext authenticates by asking an external program, with
// docker_auth's ext_auth protocol: the program reads "<account> <password>"
// on stdin and answers with its exit status: 0 accepts (stdout may hold
// {"labels": {...}}), 1 rejects the password, 2 does not know the account,
// anything else is an error.
package ext

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/extprog"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Config is the ext_auth section: the program, its arguments and the
// longest one run may take (0: DefaultTimeout). Its Validate reports every
// problem; New also checks that the command exists.
type Config = extprog.Config

// DefaultTimeout bounds one run when Config.Timeout is 0.
const DefaultTimeout = extprog.DefaultTimeout

// Authenticator runs the program once per authentication.
type Authenticator struct {
	prog *extprog.Program
}

// New checks that the command exists.
func New(cfg Config) (*Authenticator, error) {
	p, err := extprog.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ext_auth: %w", err)
	}
	return &Authenticator{prog: p}, nil
}

type response struct {
	Labels authn.Labels `json:"labels"`
}

// Authenticate implements authn.Authenticator. An account containing white
// space or control characters is not passed to the program (it would make
// "<account> <password>" ambiguous) and gets authn.ErrNoMatch. A program
// that times out yields an error wrapping authn.ErrUnavailable. The
// password never appears in an error: it is masked in the program's
// stderr, which errors quote.
func (a *Authenticator) Authenticate(ctx context.Context, account string, password secret.Secret) (authn.Labels, error) {
	if strings.IndexFunc(account, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nil, authn.ErrNoMatch
	}
	in := make([]byte, 0, len(account)+1+len(password.Reveal()))
	in = append(in, account...)
	in = append(in, ' ')
	in = append(in, password.Reveal()...)
	res, err := a.prog.Run(ctx, in)
	clear(in)
	if err != nil {
		if errors.Is(err, extprog.ErrTimeout) {
			return nil, fmt.Errorf("ext_auth: %w: %w", authn.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("ext_auth: %w", err)
	}
	switch res.Status {
	case 0:
		out := bytes.TrimSpace(res.Stdout)
		if len(out) == 0 {
			return nil, nil
		}
		var r response
		if err := json.Unmarshal(out, &r); err != nil {
			return nil, fmt.Errorf(`ext_auth: %s: stdout is not {"labels": {...}}: %w`, a.prog, err)
		}
		return r.Labels, nil
	case 1:
		return nil, authn.ErrWrongPass
	case 2:
		return nil, authn.ErrNoMatch
	default:
		return nil, fmt.Errorf("ext_auth: %s exited with status %d%s", a.prog, res.Status, stderrNote(res.Stderr, password))
	}
}

// stderrNote quotes the program's stderr for an error message, with the
// password masked in case the program echoed its input.
func stderrNote(stderr string, password secret.Secret) string {
	if stderr == "" {
		return ""
	}
	if pw := password.Reveal(); pw != "" {
		stderr = strings.ReplaceAll(stderr, pw, "***")
	}
	return fmt.Sprintf(": %q", stderr)
}

// Name implements authn.Authenticator.
func (a *Authenticator) Name() string { return "ext" }

// Close implements authn.Authenticator; there is nothing to release.
func (a *Authenticator) Close() error { return nil }

var _ authn.Authenticator = (*Authenticator)(nil)
