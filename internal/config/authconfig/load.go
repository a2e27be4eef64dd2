package authconfig

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"go.yaml.in/yaml/v3"

	authnext "github.com/gatehouse-registry/gatehouse/internal/authn/ext"
	"github.com/gatehouse-registry/gatehouse/internal/authn/ldap"
	authzext "github.com/gatehouse-registry/gatehouse/internal/authz/ext"
	"github.com/gatehouse-registry/gatehouse/internal/config"
)

// refused names the docker_auth sections Gatehouse reads but does not
// implement, with what to use instead. They are errors, never ignored.
var refused = map[string]string{
	"google_auth":        "browser OAuth logins are not implemented; use users, ldap_auth or ext_auth",
	"github_auth":        "browser OAuth logins are not implemented; use users, ldap_auth or ext_auth",
	"oidc_auth":          "browser OAuth logins are not implemented; use users, ldap_auth or ext_auth",
	"gitlab_auth":        "browser OAuth logins are not implemented; use users, ldap_auth or ext_auth",
	"mongo_auth":         "MongoDB users are not implemented; use users, ldap_auth or ext_auth",
	"xorm_auth":          "SQL (xorm) users are not implemented; use users, ldap_auth or ext_auth",
	"plugin_authn":       "Go plugins are not implemented; use ext_auth to run a program instead",
	"acl_mongo":          "ACLs in MongoDB are not implemented; use acl or ext_authz",
	"acl_xorm":           "ACLs in SQL (xorm) are not implemented; use acl or ext_authz",
	"casbin_authz":       "casbin is not implemented; use acl or ext_authz",
	"plugin_authz":       "Go plugins are not implemented; use ext_authz to run a program instead",
	"server.letsencrypt": "automatic LetsEncrypt certificates are not implemented (docker_auth's mode serves plain HTTP); set server.certificate and server.key (gatehouse certs init makes them)",
}

// Env is what checking a config may consult outside the file itself. A nil
// function turns the checks that need it off: Env{} validates the file alone.
type Env struct {
	// ReadFile reads the files the config names (certificates, keys, the
	// LDAP CA bundle and bind password file).
	ReadFile func(name string) ([]byte, error)
	// LookPath resolves ext_auth and ext_authz commands.
	LookPath func(file string) (string, error)
	// LookupEnv reads environment variables named by *_env keys.
	LookupEnv func(key string) (string, bool)
}

// OSEnv is the Env of the running process: its files, PATH and environment.
func OSEnv() Env {
	return Env{ReadFile: os.ReadFile, LookPath: exec.LookPath, LookupEnv: os.LookupEnv}
}

// Load reads and checks the auth_config.yml at path against the running
// process's files and environment. The error, if any, is a config.Problems
// listing every problem, sorted by line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Problems{{File: path, Msg: fmt.Sprintf("cannot read the auth config: %v", err)}}
	}
	return Parse(path, data)
}

// Parse checks data (named file in problems) against the running process's
// files and environment. See ParseEnv.
func Parse(file string, data []byte) (*Config, error) {
	return ParseEnv(file, data, OSEnv())
}

// ParseEnv decodes data strictly, validates it, checks the files, commands
// and environment variables it names through env, reads the secrets it
// points to, and fills in defaults. Every problem is returned at once as a
// config.Problems, sorted by line; the Config is returned even then, for
// callers that want to show what was understood.
func ParseEnv(file string, data []byte, env Env) (*Config, error) {
	cfg := &Config{File: file}
	doc, ps := config.Load(file, data, cfg, refused)
	cfg.Doc = doc
	if doc.Root != nil && doc.Root.Kind != yaml.MappingNode {
		return cfg, ps.Err()
	}
	if doc.Root != nil && dropDuplicateKeys(doc.Root) {
		// The strict loader reported each duplicate; the decoder refused the
		// mappings holding them. Decode again keeping the first of each key,
		// so the rest of the file is still checked.
		kept := ps[:0:0]
		for _, p := range ps {
			if !strings.Contains(p.Msg, "already defined at line") {
				kept = append(kept, p)
			}
		}
		ps = kept
		cfg = &Config{File: file, Doc: doc}
		_ = doc.Root.Decode(cfg) // type errors were reported by config.Load
	}
	v := &validator{doc: doc, cfg: cfg}
	ps = v.replaceMatchKeyProblems(ps)
	v.validate()
	v.checkEnv(env)
	cfg.Warnings = v.warnings
	cfg.Warnings.Sort()
	ps = append(ps, dropFollowOn(ps, v.problems)...)
	v.setDefaults()
	return cfg, ps.Err()
}

// dropDuplicateKeys removes the second and later occurrences of a key in
// every mapping under n, and reports whether it removed any.
func dropDuplicateKeys(n *yaml.Node) bool {
	if n == nil {
		return false
	}
	dropped := false
	if n.Kind == yaml.MappingNode {
		seen := map[string]bool{}
		content := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode && seen[k.Value] {
				dropped = true
				continue
			}
			seen[k.Value] = true
			content = append(content, k, n.Content[i+1])
		}
		n.Content = content
	}
	for _, c := range n.Content {
		if dropDuplicateKeys(c) {
			dropped = true
		}
	}
	return dropped
}

// dropFollowOn removes validation problems on lines where decoding already
// failed: a value of the wrong type decodes as zero, and "missing" or
// "must be > 0" about it would only repeat the first problem.
func dropFollowOn(decode, validation config.Problems) config.Problems {
	bad := map[int]bool{}
	for _, p := range decode {
		if p.Line > 0 {
			bad[p.Line] = true
		}
	}
	var out config.Problems
	for _, p := range validation {
		if !bad[p.Line] {
			out = append(out, p)
		}
	}
	return out
}

// setDefaults fills in what the file left out. Presence is read from the
// document, so an explicit 0 or false is kept.
func (v *validator) setDefaults() {
	c := v.cfg
	s := &c.Server
	if s.Net == "" {
		s.Net = DefaultNet
	}
	if !v.present("server.credential_cache_ttl") {
		s.CredentialCacheTTL = DefaultCredentialCacheTTL
	}
	if !v.present("server.token_cache.ttl") {
		s.TokenCache.TTL = DefaultTokenCacheTTL
	}
	if !v.present("server.token_cache.max_entries") {
		s.TokenCache.MaxEntries = DefaultTokenCacheEntries
	}
	if s.LogFormat == "" {
		s.LogFormat = DefaultLogFormat
	}
	if s.LogLevel == "" {
		s.LogLevel = DefaultLogLevel
	}
	if s.Metrics.Path == "" {
		s.Metrics.Path = DefaultMetricsPath
	}
	if !v.present("server.rate_limit.failed_logins_per_account") {
		s.RateLimit.FailedLoginsPerAccount = DefaultFailedLoginsPerAccount
	}
	if !v.present("server.rate_limit.failed_logins_per_ip") {
		s.RateLimit.FailedLoginsPerIP = DefaultFailedLoginsPerIP
	}
	if s.RateLimit.Window == 0 {
		s.RateLimit.Window = DefaultRateLimitWindow
	}
	t := &c.Token
	if t.Certificate == "" && t.Key == "" {
		t.Certificate, t.Key = s.Certificate, s.Key
	}
	if !v.present("token.x5c") {
		t.X5C = true
	}
	if !v.present("token.refresh_token_expiration") {
		t.RefreshTokenExpiration = DefaultRefreshTokenExpiration
	}
	if l := c.LDAPAuth; l != nil && l.GroupSearch != nil && l.GroupSearch.Label == "" {
		l.GroupSearch.Label = ldap.DefaultGroupLabel
	}
	if e := c.ExtAuth; e != nil && e.Timeout == 0 {
		e.Timeout = authnext.DefaultTimeout
	}
	if e := c.ExtAuthz; e != nil && e.Timeout == 0 {
		e.Timeout = authzext.DefaultTimeout
	}
}
