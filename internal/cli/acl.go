package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
	"github.com/gatehouse-registry/gatehouse/internal/authz/acl"
	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

func newACLCmd() *cobra.Command {
	c := &cobra.Command{Use: "acl", Short: "ACL tools"}
	c.AddCommand(newACLCheckCmd())
	return c
}

type aclCheckFlags struct {
	config     string
	account    string
	labels     []string
	ip         string
	service    string
	failOnDeny bool
	verbose    bool
}

func newACLCheckCmd() *cobra.Command {
	var f aclCheckFlags
	c := &cobra.Command{
		Use:   "check --config FILE --account NAME [--label KEY=VALUE]... [--ip IP] [--service NAME] SCOPE...",
		Short: "Show what an account is granted and which rule decided",
		Long: `Evaluate the acl of an auth_config.yml for one account, as the auth server would,
and print for each scope the granted actions and the rule that decided.

Labels are not fetched from LDAP or anywhere else: give them with --label, once per
value (--label groups=devops --label groups=6000). --account "" checks the
anonymous user. Scopes are written as in a token request: type:name:actions.`,
		Example: `  gatehouse acl check --config auth_config.yml --account alice --label groups=6000 repository:team/app:pull,push
  gatehouse acl check --config auth_config.yml --account "" registry:catalog:*`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runACLCheck(cmd, &f, args)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.config, "config", "", "the auth_config.yml (required)")
	fl.StringVar(&f.account, "account", "", `the account asking ("" for anonymous)`)
	fl.StringArrayVar(&f.labels, "label", nil, "a label of the account, KEY=VALUE; repeat for more values or keys")
	fl.StringVar(&f.ip, "ip", "", "the client's IP address (default: unknown, so ip rules do not match)")
	fl.StringVar(&f.service, "service", "", "the service the token is for")
	fl.BoolVar(&f.failOnDeny, "fail-on-deny", false, "exit 1 when any scope is granted nothing")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "also print the deciding rule as written")
	_ = c.MarkFlagRequired("config")
	return c
}

func runACLCheck(cmd *cobra.Command, f *aclCheckFlags, args []string) error {
	labels, err := parseLabelFlags(f.labels)
	if err != nil {
		return fail(exitUsage, err)
	}
	var ip net.IP
	if f.ip != "" {
		if ip = net.ParseIP(f.ip); ip == nil {
			return fail(exitUsage, fmt.Errorf("acl check: --ip %q is not an IP address", f.ip))
		}
	}
	scopes := make([]token.Scope, len(args))
	for i, a := range args {
		if scopes[i], err = token.ParseScope(a); err != nil {
			return fail(exitUsage, fmt.Errorf("acl check: %w", err))
		}
	}

	a, extAuthz, err := loadACL(cmd.ErrOrStderr(), f.config)
	if err != nil {
		return err
	}

	out := cmd.OutOrStdout()
	denied := false
	for i, sc := range scopes {
		req := &authz.Request{
			Account: f.account, Type: sc.Type, Name: sc.Name, Service: f.service,
			IP: ip, Actions: sc.Actions, Labels: labels,
		}
		d := a.Explain(req)
		if len(d.Granted) == 0 {
			denied = true
		}
		if _, err := fmt.Fprintln(out, describeDecision(args[i], d, extAuthz)); err != nil {
			return err
		}
		if f.verbose && d.Index >= 0 {
			if _, err := fmt.Fprintf(out, "    %s\n", d.Entry); err != nil {
				return err
			}
		}
	}
	if denied && f.failOnDeny {
		return silentExit{code: exitFailure}
	}
	return nil
}

// describeDecision formats one line of acl check's output.
func describeDecision(scope string, d acl.Decision, extAuthz bool) string {
	if d.Index < 0 {
		if extAuthz {
			return fmt.Sprintf("%s  no rule matched: ext_authz decides", scope)
		}
		return fmt.Sprintf("%s  denied: no rule matched (denied by default)", scope)
	}
	rule := fmt.Sprintf("rule #%d", d.Index+1)
	if d.Comment != "" {
		rule += fmt.Sprintf(" %q", d.Comment)
	}
	return fmt.Sprintf("%s  granted [%s]  by %s (acl[%d])", scope, strings.Join(d.Granted, ","), rule, d.Index)
}

// loadACL reads the auth config and compiles its acl. Problems elsewhere in
// the file (a certificate missing on this machine, say) do not stop the
// check: they are summed up on stderr. Problems in the acl do, because the
// auth server would refuse to start (and the config loader may have
// dropped what it did not understand, such as an unknown match key).
func loadACL(stderr io.Writer, file string) (*acl.ACL, bool, error) {
	cfg, loadErr := authconfig.Load(file)
	if cfg == nil {
		return nil, false, fail(exitFailure, loadErr)
	}
	var inACL, outside config.Problems
	if loadErr != nil {
		var ps config.Problems
		if !errors.As(loadErr, &ps) {
			return nil, false, fail(exitFailure, loadErr)
		}
		first, last := sectionLines(cfg.Doc, "acl")
		for _, p := range ps {
			if p.Line >= first && p.Line <= last {
				inACL = append(inACL, p)
			} else {
				outside = append(outside, p)
			}
		}
	}
	if len(inACL) > 0 {
		return nil, false, fail(exitFailure, inACL)
	}
	if cfg.ACL == nil {
		if len(outside) > 0 {
			return nil, false, fail(exitFailure, outside)
		}
		return nil, false, fail(exitFailure, fmt.Errorf("acl check: %s has no acl section", file))
	}
	a, err := acl.Compile(cfg.ACL)
	if err != nil {
		return nil, false, fail(exitFailure, fmt.Errorf("acl check: %s: %w", file, err))
	}
	if len(outside) > 0 {
		_, _ = fmt.Fprintf(stderr, "note: %s has %d problem(s) outside the acl; run `gatehouse config check %s`\n", file, len(outside), file)
	}
	return a, cfg.ExtAuthz != nil, nil
}

// sectionLines returns the first and last line of a top-level section of
// doc, or an empty range when it is absent.
func sectionLines(doc *config.Doc, key string) (first, last int) {
	if doc == nil || doc.Root == nil || doc.Root.Kind != yaml.MappingNode {
		return 1, 0
	}
	c := doc.Root.Content
	for i := 0; i+1 < len(c); i += 2 {
		if c[i].Value != key {
			continue
		}
		first, last = c[i].Line, math.MaxInt
		if i+2 < len(c) {
			last = c[i+2].Line - 1
		}
		return first, last
	}
	return 1, 0
}

// parseLabelFlags turns repeated KEY=VALUE flags into labels; a key given
// several times gets several values, in order.
func parseLabelFlags(flags []string) (authn.Labels, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	labels := authn.Labels{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("acl check: --label %q: want KEY=VALUE, e.g. --label groups=devops", f)
		}
		labels[k] = append(labels[k], v)
	}
	return labels, nil
}
