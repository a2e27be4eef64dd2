package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
)

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Config file tools"}
	c.AddCommand(&cobra.Command{
		Use:   "check FILE...",
		Short: "Check config files and report every error",
		Long: `Check each file as the command that reads it would: a docker_auth auth_config.yml
(gatehouse auth-server) or a distribution config.yml (gatehouse registry serve).
The format is told from the file's top-level keys. Every problem is printed as
file:line:col: message (fix: ...); warnings are printed the same way and do not
fail the check. Files named inside (certificates, keys, password files) must exist.
Exit status: 0 when every file is clean, 1 when any has a problem.`,
		Example: `  gatehouse config check auth_config.yml
  gatehouse config check auth_config.yml config.yml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := false
			w := &errWriter{w: cmd.OutOrStdout()}
			for _, file := range args {
				if !checkConfigFile(w, file) {
					bad = true
				}
			}
			if w.err != nil {
				return fail(exitInternal, fmt.Errorf("config check: %w", w.err))
			}
			if bad {
				return silentExit{code: exitFailure}
			}
			return nil
		},
	})
	return c
}

// Config formats config check tells apart.
const (
	formatUnknown      = ""
	formatDockerAuth   = "docker_auth auth_config.yml"
	formatDistribution = "distribution config.yml"
)

// Top-level keys that identify each format. docker_auth's list includes the
// sections Gatehouse refuses, so such a file is still recognised.
var (
	dockerAuthKeys = []string{"server", "token", "users", "acl", "ldap_auth", "ext_auth", "ext_authz",
		"google_auth", "github_auth", "oidc_auth", "gitlab_auth", "mongo_auth", "xorm_auth", "plugin_authn",
		"acl_mongo", "acl_xorm", "casbin_authz", "plugin_authz"}
	distributionKeys = []string{"version", "storage", "http", "log", "loglevel", "auth", "redis", "health",
		"notifications", "middleware", "proxy", "validation", "reporting", "compatibility", "catalog"}
)

// detectFormat tells the format from the top-level keys of data. When it
// cannot, why says so.
func detectFormat(data []byte) (format, why string) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return formatUnknown, "it is not a YAML mapping of sections"
	}
	var da, dist []string
	top := root.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i].Value
		switch {
		case containsKey(dockerAuthKeys, k):
			da = append(da, k)
		case containsKey(distributionKeys, k):
			dist = append(dist, k)
		}
	}
	switch {
	case len(da) > 0 && len(dist) == 0:
		return formatDockerAuth, ""
	case len(dist) > 0 && len(da) == 0:
		return formatDistribution, ""
	case len(da) > 0:
		return formatUnknown, fmt.Sprintf("it has keys of both formats (docker_auth: %s; distribution: %s)", strings.Join(da, ", "), strings.Join(dist, ", "))
	}
	return formatUnknown, "it has none of the top-level keys of either format (docker_auth: server, token, users, acl, ...; distribution: version, storage, http, ...)"
}

func containsKey(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// errWriter keeps the first write error, so printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// checkConfigFile checks one file, prints what it finds to w and reports
// whether the file is clean.
func checkConfigFile(w *errWriter, file string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		w.printf("%s: cannot read: %v\n", file, configReadReason(err))
		return false
	}
	format, why := detectFormat(data)
	var warnings config.Problems
	switch format {
	case formatDockerAuth:
		var cfg *authconfig.Config
		cfg, err = authconfig.Parse(file, data)
		if cfg != nil {
			warnings = cfg.Warnings
		}
	case formatDistribution:
		var cfg *regconfig.Config
		cfg, err = regconfig.Load(file)
		if cfg != nil {
			for _, msg := range cfg.Warnings {
				warnings = append(warnings, config.Problem{File: file, Msg: msg})
			}
		}
	default:
		// Show a YAML syntax error as such; otherwise say what is missing.
		var root yaml.Node
		if yerr := yaml.Unmarshal(data, &root); yerr != nil {
			_, ps := config.Load(file, data, &struct{}{}, nil)
			printConfigProblems(w, ps)
			return false
		}
		w.printf("%s: cannot tell the format: %s (fix: gatehouse checks docker_auth's auth_config.yml and distribution's config.yml)\n", file, why)
		return false
	}
	out := make(config.Problems, 0, len(warnings))
	for _, p := range warnings {
		p.Msg = "warning: " + p.Msg
		out = append(out, p)
	}
	var ps config.Problems
	if err != nil && !errors.As(err, &ps) {
		ps = config.Problems{{File: file, Msg: err.Error()}}
	}
	printConfigProblems(w, append(out, ps...))
	if err != nil {
		return false
	}
	w.printf("%s: OK (%s)\n", file, format)
	return true
}

// printConfigProblems prints ps in line order.
func printConfigProblems(w *errWriter, ps config.Problems) {
	ps = append(config.Problems(nil), ps...)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
	for _, p := range ps {
		w.printf("%s\n", p.String())
	}
}

// configReadReason drops the path an error repeats.
func configReadReason(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
