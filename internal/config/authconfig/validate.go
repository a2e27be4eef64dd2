package authconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/authn/ldap"
	"github.com/gatehouse-registry/gatehouse/internal/authz/acl"
	"github.com/gatehouse-registry/gatehouse/internal/config"
)

const hashFix = "run `gatehouse hash-password` and put the hash it prints in password:"

// validator collects problems and warnings about one document.
type validator struct {
	doc      *config.Doc
	cfg      *Config
	problems config.Problems
	warnings config.Problems
}

func (v *validator) errAt(path, msg, fix string) {
	v.problems = append(v.problems, v.doc.At(path, msg, fix))
}

func (v *validator) warnAt(path, msg, fix string) {
	v.warnings = append(v.warnings, v.doc.At(path, msg, fix))
}

// errNode reports a problem at n, for keys that a dotted path cannot name
// (user names and label names may contain dots).
func (v *validator) errNode(n *yaml.Node, msg, fix string) {
	p := config.Problem{File: v.doc.File, Msg: msg, Fix: fix}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	v.problems = append(v.problems, p)
}

func (v *validator) present(path string) bool { return v.doc.Node(path) != nil }

// pairs returns the key and value nodes of the mapping at path.
func (v *validator) pairs(path string) [][2]*yaml.Node {
	n := v.doc.Node(path)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

// validate checks what can be checked from the file alone.
func (v *validator) validate() {
	v.server()
	v.token()
	v.users()
	v.ldap()
	v.ext("ext_auth", v.cfg.ExtAuth)
	v.ext("ext_authz", v.cfg.ExtAuthz)
	v.acl()
	c := v.cfg
	if c.Users == nil && c.LDAPAuth == nil && c.ExtAuth == nil {
		v.errAt("", "no authentication section: docker_auth and Gatehouse need at least one of users, ldap_auth or ext_auth",
			`add users: {"": {}} for anonymous access only, or users with bcrypt passwords (gatehouse hash-password), or ldap_auth`)
	}
	if c.ACL == nil && c.ExtAuthz == nil {
		v.errAt("", "no authorization section: docker_auth and Gatehouse need acl or ext_authz",
			`add acl: with rules such as - match: {account: "/.+/"} actions: ["pull"]; acl: [] denies everything`)
	}
}

func (v *validator) server() {
	s := &v.cfg.Server
	switch s.Net {
	case "", "tcp":
		if s.Addr == "" {
			v.errAt("server.addr", "server.addr is missing: the address to listen on", `addr: ":5001"`)
		} else if err := checkHostPort(s.Addr); err != nil {
			v.errAt("server.addr", fmt.Sprintf("server.addr %q: %v", s.Addr, err), `host:port, e.g. ":5001" or "127.0.0.1:5001"`)
		}
	case "unix":
		if s.Addr == "" {
			v.errAt("server.addr", "server.addr is missing: with net: unix it is the socket path", `addr: "/run/gatehouse/auth.sock"`)
		}
	default:
		v.errAt("server.net", fmt.Sprintf("server.net %q is not tcp or unix", s.Net), "net: tcp")
	}
	if s.PathPrefix != "" && !strings.HasPrefix(s.PathPrefix, "/") {
		v.errAt("server.path_prefix", fmt.Sprintf("server.path_prefix %q does not start with /", s.PathPrefix), "path_prefix: /"+s.PathPrefix)
	}
	if (s.Certificate == "") != (s.Key == "") {
		v.errAt("server", "server.certificate and server.key go together: set both for TLS, or neither for plain HTTP", "")
	}
	tlsOn := s.Certificate != "" && s.Key != ""
	if !tlsOn && s.Net != "unix" && s.Addr != "" {
		v.warnAt("server.addr", "the auth server will serve plain HTTP: passwords and tokens travel unencrypted unless a TLS proxy is in front",
			"set server.certificate and server.key (gatehouse certs init makes them)")
	}
	if s.HSTS && !tlsOn {
		v.warnAt("server.hsts", "server.hsts has no effect without server.certificate and server.key", "")
	}
	v.tlsSettings(tlsOn)
	if s.RealIPHeader != "" && !validHeaderName(s.RealIPHeader) {
		v.errAt("server.real_ip_header", fmt.Sprintf("server.real_ip_header %q is not a valid HTTP header name", s.RealIPHeader), "real_ip_header: X-Forwarded-For")
	}
	switch {
	case s.RealIPPos != 0 && s.RealIPHeader == "":
		v.warnAt("server.real_ip_pos", "server.real_ip_pos has no effect without server.real_ip_header", "")
	case s.RealIPPos > maxRealIPPos || s.RealIPPos < -maxRealIPPos:
		v.errAt("server.real_ip_pos", fmt.Sprintf("server.real_ip_pos %d is out of range (-%d..%d): no proxy chain is that long", s.RealIPPos, maxRealIPPos, maxRealIPPos),
			"real_ip_pos: -1 takes the address your nearest proxy saw")
	case s.RealIPHeader != "" && s.RealIPPos >= 0:
		v.warnAt("server.real_ip_pos", fmt.Sprintf("real_ip_pos %d counts from the start of %s, which the client can forge when proxies append to it", s.RealIPPos, s.RealIPHeader),
			"real_ip_pos: -1 takes the address your nearest proxy saw")
	}
	rl := s.RateLimit
	if rl.FailedLoginsPerAccount < 0 {
		v.errAt("server.rate_limit.failed_logins_per_account", "server.rate_limit.failed_logins_per_account must not be negative", "0 turns the limit off")
	}
	if rl.FailedLoginsPerIP < 0 {
		v.errAt("server.rate_limit.failed_logins_per_ip", "server.rate_limit.failed_logins_per_ip must not be negative", "0 turns the limit off")
	}
	if rl.Window < 0 || (rl.Window == 0 && v.present("server.rate_limit.window")) {
		v.errAt("server.rate_limit.window", "server.rate_limit.window must be a positive duration", `window: 5m`)
	}
	v.rateLimitRedis()
	if s.CredentialCacheTTL < 0 {
		v.errAt("server.credential_cache_ttl", "server.credential_cache_ttl must not be negative", "0 turns the cache off")
	}
	v.tokenCache()
	switch s.LogFormat {
	case "", "text", "json":
	default:
		v.errAt("server.log_format", fmt.Sprintf("server.log_format %q is not text or json", s.LogFormat), "log_format: text")
	}
	switch s.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		v.errAt("server.log_level", fmt.Sprintf("server.log_level %q is not debug, info, warn or error", s.LogLevel), "log_level: info")
	}
	if m := s.Metrics; m.Addr != "" {
		if err := checkHostPort(m.Addr); err != nil {
			v.errAt("server.metrics.addr", fmt.Sprintf("server.metrics.addr %q: %v", m.Addr, err), `addr: "127.0.0.1:9102"`)
		}
	} else if m.Path != "" {
		v.warnAt("server.metrics.path", "server.metrics.path has no effect without server.metrics.addr", "")
	}
	if p := s.Metrics.Path; p != "" && !strings.HasPrefix(p, "/") {
		v.errAt("server.metrics.path", fmt.Sprintf("server.metrics.path %q does not start with /", p), "path: /metrics")
	}
}

// tokenCache checks server.token_cache. Its TTL is weighed against
// token.expiration: a token is reused only while 90% of its lifetime is
// left, so a longer TTL is cut to a tenth of the lifetime, with a warning.
func (v *validator) tokenCache() {
	tc := v.cfg.Server.TokenCache
	if n := v.doc.Node("server.token_cache"); n != nil && n.Kind != yaml.MappingNode {
		return // the decoder has reported it
	}
	switch lifetime := v.cfg.Token.Lifetime(); {
	case tc.TTL < 0:
		v.errAt("server.token_cache.ttl", "server.token_cache.ttl must not be negative", "ttl: 0s turns the token cache off")
	case tc.TTL > 0 && lifetime > 0 && v.present("server.token_cache.ttl") && tc.TTL > lifetime/10:
		v.warnAt("server.token_cache.ttl", fmt.Sprintf("server.token_cache.ttl %s is more than a tenth of token.expiration (%s): a token is handed out again only while 90%% of its lifetime is left, so for at most %s",
			tc.TTL, lifetime, lifetime/10), fmt.Sprintf("ttl: %s", lifetime/10))
	}
	if tc.MaxEntries <= 0 && v.present("server.token_cache.max_entries") {
		v.errAt("server.token_cache.max_entries", fmt.Sprintf("server.token_cache.max_entries must be positive, not %d", tc.MaxEntries), "max_entries: 4096 (ttl: 0s turns the token cache off)")
	}
}

// rateLimitRedis checks server.rate_limit.redis.
func (v *validator) rateLimitRedis() {
	r := v.cfg.Server.RateLimit.Redis
	if r == nil {
		return
	}
	const p = "server.rate_limit.redis"
	if r.Addr == "" {
		v.errAt(p, p+".addr is missing", `addr: "redis:6379"`)
	} else if err := checkHostPort(r.Addr); err != nil {
		v.errAt(p+".addr", fmt.Sprintf("%s.addr %q: %v", p, r.Addr, err), `addr: "redis:6379"`)
	}
	if r.PasswordFile != "" && r.PasswordEnv != "" {
		v.errAt(p+".password_env", p+".password_file and password_env are both set", "keep one of them")
	}
	if r.PasswordEnv != "" && !envNameRe.MatchString(r.PasswordEnv) {
		v.errAt(p+".password_env", fmt.Sprintf("%s.password_env %q is not an environment variable name", p, r.PasswordEnv), "password_env: REDIS_PASSWORD")
	}
	if r.DB < 0 {
		v.errAt(p+".db", p+".db must not be negative", "db: 0")
	}
	if r.DialTimeout < 0 {
		v.errAt(p+".dial_timeout", p+".dial_timeout must not be negative", "dial_timeout: 200ms")
	}
	if r.Timeout < 0 {
		v.errAt(p+".timeout", p+".timeout must not be negative", "timeout: 200ms")
	}
	if (r.TLS.Certificate == "") != (r.TLS.Key == "") {
		v.errAt(p+".tls", p+".tls.certificate and key go together: set both for a client certificate, or neither", "")
	}
	if v.cfg.Server.RateLimit.FailedLoginsPerAccount == 0 && v.cfg.Server.RateLimit.FailedLoginsPerIP == 0 {
		v.warnAt(p, p+" has no effect: both failed-login limits are off", "")
	}
}

const maxRealIPPos = 16

var headerNameRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func validHeaderName(s string) bool { return headerNameRe.MatchString(s) }

// checkHostPort accepts host:port with a numeric port; the host may be empty.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port (%v)", strings.TrimPrefix(err.Error(), "address "+addr+": "))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func (v *validator) token() {
	t := &v.cfg.Token
	s := &v.cfg.Server
	if t.Issuer == "" {
		v.errAt("token.issuer", "token.issuer is missing: the registry's auth.token.issuer must equal it", `issuer: "Gatehouse auth"`)
	}
	if t.Expiration <= 0 {
		if v.present("token.expiration") {
			v.errAt("token.expiration", fmt.Sprintf("token.expiration must be a number of seconds > 0, not %d", t.Expiration), "expiration: 900")
		} else {
			v.errAt("token.expiration", "token.expiration is missing: the token lifetime in seconds", "expiration: 900")
		}
	}
	if (t.Certificate == "") != (t.Key == "") {
		v.errAt("token", "token.certificate and token.key go together: set both, or neither to sign with server.certificate and server.key", "")
	}
	if t.Certificate == "" && t.Key == "" && (s.Certificate == "" || s.Key == "") {
		v.errAt("token", "no token signing key: set token.certificate and token.key, or server.certificate and server.key",
			"run `gatehouse certs init --out DIR --host NAME` and point token.certificate and token.key at the files it writes")
	}
	if t.RefreshTokenExpiration < 0 {
		v.errAt("token.refresh_token_expiration", "token.refresh_token_expiration must not be negative", "0 turns refresh tokens off")
	} else if t.RefreshTokenExpiration > 0 && t.RefreshTokenExpiration < t.Expiration {
		v.warnAt("token.refresh_token_expiration", "token.refresh_token_expiration is shorter than token.expiration, so refresh tokens are of little use", "")
	}
	if p := t.JWKSPath; p != "" {
		switch {
		case !strings.HasPrefix(p, "/"):
			v.errAt("token.jwks_path", fmt.Sprintf("token.jwks_path %q does not start with /", p), "jwks_path: /.well-known/jwks.json")
		case p == "/" || p == "/auth" || p == "/auth/token":
			v.errAt("token.jwks_path", fmt.Sprintf("token.jwks_path %q is a route the auth server already serves", p), "jwks_path: /.well-known/jwks.json")
		}
	}
}

// bcryptPrefixes are the hash versions docker_auth and Gatehouse accept.
var bcryptPrefixes = []string{"$2a$", "$2b$", "$2y$"}

func (v *validator) users() {
	for _, kv := range v.pairs("users") {
		name := kv[0].Value
		u := v.cfg.Users[name]
		pw := u.Password.Reveal()
		pwNode := mapValue(kv[1], "password")
		at := kv[0]
		if pwNode != nil {
			at = pwNode
		}
		switch {
		case name == "" && pw != "":
			v.errNode(at, `users."": the anonymous user has no password (anonymous requests send none)`, `write "": {} or remove the password: line`)
		case name == "":
		case pw == "":
			v.errNode(at, fmt.Sprintf("users.%s has no password: docker_auth would accept any password for it; Gatehouse refuses", quoteKey(name)), hashFix)
		case !hasAnyPrefix(pw, bcryptPrefixes):
			// Never show the value: it may be a plain-text password.
			v.errNode(at, fmt.Sprintf("users.%s.password is not a bcrypt hash (it must start with $2a$, $2b$ or $2y$)", quoteKey(name)), hashFix)
		default:
			if cost, err := bcrypt.Cost([]byte(pw)); err != nil {
				v.errNode(at, fmt.Sprintf("users.%s.password is a malformed bcrypt hash", quoteKey(name)), hashFix)
			} else if cost < 10 {
				v.warnings = append(v.warnings, config.Problem{File: v.doc.File, Line: at.Line, Column: at.Column,
					Msg: fmt.Sprintf("users.%s.password has bcrypt cost %d; 10 or more resists offline guessing far better", quoteKey(name), cost), Fix: hashFix})
			}
		}
		for _, lkv := range pairsOf(mapValue(kv[1], "labels")) {
			if lkv[0].Value == "" {
				v.errNode(lkv[0], fmt.Sprintf("users.%s.labels has a label with an empty name", quoteKey(name)), "")
			}
		}
	}
}

// quoteKey shows a map key the way it would be written in YAML.
func quoteKey(k string) string {
	if k == "" || strings.ContainsAny(k, ".:# \"'{}[]") {
		return strconv.Quote(k)
	}
	return k
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// mapValue returns the value node for key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func pairsOf(n *yaml.Node) [][2]*yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

func (v *validator) ldap() {
	l := v.cfg.LDAPAuth
	if l == nil {
		return
	}
	mode, err := ldapMode(l.Addr, l.TLS)
	if err != nil {
		path := "ldap_auth.addr"
		var tme tlsModeError
		if errors.As(err, &tme) {
			path = "ldap_auth.tls"
		}
		v.errAt(path, "ldap_auth."+err.Error(), "")
	}
	if mode == "none" && err == nil {
		v.warnAt("ldap_auth.tls", "ldap_auth sends passwords to the directory unencrypted (tls: none)", "tls: always (LDAPS, port 636) or tls: starttls")
	}
	if l.InsecureTLSSkipVerify && mode != "none" {
		v.warnAt("ldap_auth.insecure_tls_skip_verify", "ldap_auth.insecure_tls_skip_verify turns off certificate checks: anyone on the path can read user passwords",
			"set ca_certificate to your directory's CA and remove insecure_tls_skip_verify")
	}
	if l.CACertificate != "" && mode == "none" {
		v.warnAt("ldap_auth.ca_certificate", "ldap_auth.ca_certificate has no effect without TLS", "")
	}
	if l.Base == "" {
		v.errAt("ldap_auth.base", "ldap_auth.base is missing: the DN users are searched under", `base: "ou=people,dc=example,dc=com"`)
	} else if _, err := goldap.ParseDN(l.Base); err != nil {
		v.errAt("ldap_auth.base", fmt.Sprintf("ldap_auth.base %q is not a valid DN: %v", l.Base, err), "")
	}
	if l.Filter == "" {
		v.errAt("ldap_auth.filter", "ldap_auth.filter is missing", `filter: "(&(uid=${account})(objectClass=posixAccount))"`)
	} else if !strings.Contains(l.Filter, "${account}") {
		v.errAt("ldap_auth.filter", fmt.Sprintf("ldap_auth.filter %q does not contain ${account}, so every login would find the same entry", l.Filter), `filter: "(&(uid=${account})(objectClass=posixAccount))"`)
	} else if err := checkFilter(l.Filter); err != nil {
		v.errAt("ldap_auth.filter", fmt.Sprintf("ldap_auth.filter %q: %v", l.Filter, err), "")
	}
	if l.AccountAttribute != "" && !ldapAttributeRe.MatchString(l.AccountAttribute) {
		v.errAt("ldap_auth.account_attribute", fmt.Sprintf("ldap_auth.account_attribute %q is not an LDAP attribute name", l.AccountAttribute), "account_attribute: uid (sAMAccountName on Active Directory)")
	}
	if l.BindPasswordFile != "" && l.BindPasswordEnv != "" {
		v.errAt("ldap_auth.bind_password_env", "ldap_auth.bind_password_file and bind_password_env are both set", "keep one of them")
	}
	hasPassword := l.BindPasswordFile != "" || l.BindPasswordEnv != ""
	if l.InitialBindAsUser {
		if !strings.Contains(l.BindDN, "${account}") {
			v.errAt("ldap_auth.bind_dn", "ldap_auth.bind_dn must contain ${account} with initial_bind_as_user", `bind_dn: "uid=${account},ou=people,dc=example,dc=com"`)
		}
		if hasPassword {
			v.errAt("ldap_auth.initial_bind_as_user", "ldap_auth.initial_bind_as_user binds with the user's own password; the bind password is not used", "remove bind_password_file / bind_password_env")
		}
	} else {
		if l.BindDN != "" && !hasPassword {
			v.errAt("ldap_auth.bind_dn", "ldap_auth.bind_dn is set without a password: an empty password is an unauthenticated bind",
				"set bind_password_file (a file holding the password) or bind_password_env (the name of an environment variable)")
		}
		if l.BindDN == "" && hasPassword {
			v.errAt("ldap_auth", "ldap_auth has a bind password but no bind_dn", `bind_dn: "cn=reader,dc=example,dc=com"`)
		}
	}
	if l.BindPasswordEnv != "" && !envNameRe.MatchString(l.BindPasswordEnv) {
		v.errAt("ldap_auth.bind_password_env", fmt.Sprintf("ldap_auth.bind_password_env %q is not an environment variable name", l.BindPasswordEnv), "bind_password_env: LDAP_BIND_PASSWORD")
	}
	for _, kv := range v.pairs("ldap_auth.labels") {
		name := kv[0].Value
		if name == "" {
			v.errNode(kv[0], "ldap_auth.labels has a label with an empty name", "")
		}
		if l.Labels[name].Attribute == "" {
			v.errNode(kv[0], fmt.Sprintf("ldap_auth.labels.%s has no attribute: which LDAP attribute fills this label?", quoteKey(name)), "attribute: memberOf (with parse_cn: true), or gidNumber")
		}
	}
	if g := l.GroupSearch; g != nil {
		if g.Base == "" {
			v.errAt("ldap_auth.group_search.base", "ldap_auth.group_search.base is missing: the DN groups are searched under", `base: "ou=groups,dc=example,dc=com"`)
		} else if _, err := goldap.ParseDN(g.Base); err != nil {
			v.errAt("ldap_auth.group_search.base", fmt.Sprintf("ldap_auth.group_search.base %q is not a valid DN: %v", g.Base, err), "")
		}
		if g.Filter == "" {
			v.errAt("ldap_auth.group_search.filter", "ldap_auth.group_search.filter is missing", `filter: "(member=${dn})" or "(memberUid=${account})"`)
		} else if err := checkFilter(g.Filter); err != nil {
			v.errAt("ldap_auth.group_search.filter", fmt.Sprintf("ldap_auth.group_search.filter %q: %v", g.Filter, err), "")
		}
	}
	if l.DialTimeout < 0 {
		v.errAt("ldap_auth.dial_timeout", "ldap_auth.dial_timeout must not be negative", "dial_timeout: 5s")
	}
	if l.RequestTimeout < 0 {
		v.errAt("ldap_auth.request_timeout", "ldap_auth.request_timeout must not be negative", "request_timeout: 10s")
	}
	if l.PoolSize < 0 || l.PoolSize > ldap.MaxPoolSize {
		v.errAt("ldap_auth.pool_size", fmt.Sprintf("ldap_auth.pool_size %d is out of range (0..%d)", l.PoolSize, ldap.MaxPoolSize), "pool_size: "+strconv.Itoa(ldap.DefaultPoolSize))
	}
}

var (
	envNameRe       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	ldapAttributeRe = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*$`)
)

// checkFilter compiles an LDAP filter template with its placeholders filled.
func checkFilter(f string) error {
	f = strings.NewReplacer("${account}", "x", "${dn}", "cn=x").Replace(f)
	if _, err := goldap.CompileFilter(f); err != nil {
		return fmt.Errorf("not a valid LDAP filter: %w", err)
	}
	return nil
}

// tlsModeError is an error about the tls key rather than addr.
type tlsModeError struct{ msg string }

func (e tlsModeError) Error() string { return e.msg }

// ldapMode resolves the TLS mode from addr and tls as the LDAP
// authenticator does: an ldap:// or ldaps:// scheme implies it, else port
// 636 means always, else none.
func ldapMode(addr, mode string) (string, error) {
	switch mode {
	case "", "always", "starttls", "none":
	default:
		return "", tlsModeError{fmt.Sprintf("tls %q is not always, starttls or none", mode)}
	}
	if addr == "" {
		return "", errors.New("addr is missing: host:port or an ldap:// or ldaps:// URL")
	}
	scheme, hostPort := "", addr
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return "", fmt.Errorf("addr %q is not a valid URL", addr)
		}
		scheme = strings.ToLower(u.Scheme)
		if scheme != "ldap" && scheme != "ldaps" {
			return "", fmt.Errorf("addr %q: scheme %q is not ldap:// or ldaps://", addr, u.Scheme)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("addr %q must be only scheme://host[:port]", addr)
		}
		hostPort = u.Host
		if u.Port() == "" {
			port := "389"
			if scheme == "ldaps" {
				port = "636"
			}
			hostPort = net.JoinHostPort(u.Hostname(), port)
		}
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || host == "" {
		return "", fmt.Errorf("addr %q is not host:port or an ldap:// or ldaps:// URL", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("addr %q: port %q is not a number from 1 to 65535", addr, port)
	}
	switch {
	case scheme == "ldaps" && (mode == "starttls" || mode == "none"):
		return "", tlsModeError{fmt.Sprintf("tls %s conflicts with the ldaps:// addr", mode)}
	case scheme == "ldap" && mode == "always":
		return "", tlsModeError{"tls always conflicts with the ldap:// addr (use ldaps:// or tls: starttls)"}
	case mode != "":
		return mode, nil
	case scheme == "ldaps", scheme == "" && port == "636":
		return "always", nil
	}
	return "none", nil
}

func (v *validator) ext(section string, e *ExtCommand) {
	if e == nil {
		return
	}
	if e.Command == "" {
		v.errAt(section+".command", section+".command is missing: the program to run", "command: /usr/local/bin/my-auth")
	}
	if e.Timeout < 0 {
		v.errAt(section+".timeout", section+".timeout must not be negative", "timeout: 10s")
	}
}

// acl checks the ACL with the engine the auth server uses, so every
// pattern, CIDR and placeholder problem is found now, at its line.
func (v *validator) acl() {
	if len(v.cfg.ACL) == 0 {
		return
	}
	err := v.cfg.ACL.Validate()
	var ces acl.CompileErrors
	if err == nil || !errors.As(err, &ces) {
		if err != nil {
			v.errAt("acl", "acl: "+err.Error(), "")
		}
		return
	}
	for _, ce := range ces {
		path := "acl." + strconv.Itoa(ce.Index) + "." + ce.Field
		v.errAt(path, path+": "+ce.Msg, ce.Fix)
	}
}
