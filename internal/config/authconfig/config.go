// Package authconfig reads cesanta/docker_auth's auth_config.yml strictly:
// typed structs for every key docker_auth has in the sections Gatehouse
// supports, a few Gatehouse extensions, and validation that reports every
// problem at once with its file:line and a fix. Sections Gatehouse does not
// implement are refused by name instead of being ignored.
package authconfig

import (
	"crypto/tls"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authz/acl"
	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Defaults for keys of the auth server itself that are absent from the
// file. They are filled in by Parse, so consumers read plain values. The
// backends' defaults (LDAP group label, ext timeouts) are the backends'
// own constants; Parse fills them in from there.
const (
	DefaultNet                    = "tcp"
	DefaultCredentialCacheTTL     = 5 * time.Minute
	DefaultTokenCacheTTL          = time.Minute
	DefaultTokenCacheEntries      = 4096
	DefaultLogFormat              = "text"
	DefaultLogLevel               = "info"
	DefaultMetricsPath            = "/metrics"
	DefaultRefreshTokenExpiration = 30 * 24 * 60 * 60 // seconds: 30 days
	DefaultFailedLoginsPerAccount = ratelimit.DefaultAccountFailures
	DefaultFailedLoginsPerIP      = ratelimit.DefaultIPFailures
	DefaultRateLimitWindow        = ratelimit.DefaultWindow
)

// Config is a docker_auth auth_config.yml. A nil pointer section, a nil
// Users map or a nil ACL means that section is absent from the file;
// `users: {}` and `acl: []` are present and empty.
type Config struct {
	Server   Server      `yaml:"server"`
	Token    Token       `yaml:"token"`
	Users    Users       `yaml:"users"`
	LDAPAuth *LDAPAuth   `yaml:"ldap_auth"`
	ExtAuth  *ExtCommand `yaml:"ext_auth"`
	ACL      acl.Rules   `yaml:"acl"`
	ExtAuthz *ExtCommand `yaml:"ext_authz"`

	// File is the path the config was read from.
	File string `yaml:"-"`
	// Doc is the parsed YAML, for positioning messages about values found
	// later (for example when the auth server compiles the ACL).
	Doc *config.Doc `yaml:"-"`
	// Warnings are things that work but deserve a look (TLS 1.0, plain
	// HTTP, skipped certificate checks). They are not errors.
	Warnings config.Problems `yaml:"-"`
}

// Server is the `server` section: where and how the auth server listens.
type Server struct {
	// Addr is host:port for tcp, or a socket path for unix. Required.
	Addr string `yaml:"addr"`
	// Net is "tcp" (default) or "unix".
	Net string `yaml:"net"`
	// PathPrefix is prepended to every route; it starts with "/".
	PathPrefix string `yaml:"path_prefix"`
	// Certificate and Key are PEM files for TLS; both or neither. They also
	// sign tokens when the token section names no key of its own.
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
	// HSTS adds a Strict-Transport-Security header to every response.
	HSTS bool `yaml:"hsts"`
	// TLSMinVersion is TLS10, TLS11, TLS12 or TLS13 (or the protocol
	// number, as docker_auth accepts). Resolved into MinVersion.
	TLSMinVersion string `yaml:"tls_min_version"`
	// TLSCipherSuites are Go cipher suite names (or numbers). Resolved
	// into CipherSuites.
	TLSCipherSuites []string `yaml:"tls_cipher_suites"`
	// TLSCurvePreferences are P256, P384, P521 or X25519 (or numbers).
	// Resolved into CurvePreferences.
	TLSCurvePreferences []string `yaml:"tls_curve_preferences"`
	// RealIPHeader names the header holding the client address (behind a proxy).
	RealIPHeader string `yaml:"real_ip_header"`
	// RealIPPos picks an entry of RealIPHeader's comma-separated list;
	// negative counts from the end (-1 is the last, closest proxy's view).
	RealIPPos int `yaml:"real_ip_pos"`

	// RateLimit limits failed logins (Gatehouse extension).
	RateLimit RateLimit `yaml:"rate_limit"`
	// CredentialCacheTTL is how long a successful password check is
	// remembered, so bcrypt and LDAP are not asked on every token request
	// (Gatehouse extension; default 5m, 0 disables).
	CredentialCacheTTL time.Duration `yaml:"credential_cache_ttl"`
	// TokenCache hands an access token out again to identical requests
	// for a short while instead of signing a new one (Gatehouse
	// extension; on by default).
	TokenCache TokenCache `yaml:"token_cache"`
	// LogFormat is "text" (default) or "json" (Gatehouse extension).
	LogFormat string `yaml:"log_format"`
	// LogLevel is "debug", "info" (default), "warn" or "error" (Gatehouse extension).
	LogLevel string `yaml:"log_level"`
	// Metrics serves Prometheus metrics on a listener of its own
	// (Gatehouse extension; off unless metrics.addr is set).
	Metrics Metrics `yaml:"metrics"`

	// MinVersion is TLSMinVersion resolved (0: Go's default, TLS 1.2).
	MinVersion uint16 `yaml:"-"`
	// CipherSuites is TLSCipherSuites resolved (nil: Go's defaults).
	CipherSuites []uint16 `yaml:"-"`
	// CurvePreferences is TLSCurvePreferences resolved (nil: Go's defaults).
	CurvePreferences []tls.CurveID `yaml:"-"`
}

// RateLimit bounds failed logins per account and per client address within
// a sliding window (Gatehouse extension). A limit of 0 turns that limit off.
type RateLimit struct {
	// FailedLoginsPerAccount is the number of failed logins an account may
	// have per Window before further attempts are refused (default 10).
	FailedLoginsPerAccount int `yaml:"failed_logins_per_account"`
	// FailedLoginsPerIP is the same per client address (default 50).
	FailedLoginsPerIP int `yaml:"failed_logins_per_ip"`
	// Window is the period the counts cover (default 5m).
	Window time.Duration `yaml:"window"`
	// Redis, when set, shares the counts between auth-server replicas
	// (Gatehouse extension). While it is unreachable each replica limits
	// alone.
	Redis *RateLimitRedis `yaml:"redis"`
}

// TokenCache configures the issued-token cache (Gatehouse extension): an
// access token signed for a request is handed out again, for up to TTL,
// to requests with the same account, authenticator, labels, credential,
// service and granted access, and only while at least 90% of its
// lifetime is left.
type TokenCache struct {
	// TTL is how long a token may be handed out again after it was
	// signed (default 1m; 0 turns the cache off). A tenth of
	// token.expiration is the most that is used.
	TTL time.Duration `yaml:"ttl"`
	// MaxEntries bounds the number of tokens held (default 4096).
	MaxEntries int `yaml:"max_entries"`
}

// RateLimitRedis is the Redis the failed-login counts are shared through.
type RateLimitRedis struct {
	// Addr is host:port. Required.
	Addr string `yaml:"addr"`
	// Username is the ACL user (Redis 6+); empty: the default user.
	Username string `yaml:"username"`
	// PasswordFile holds the password (trimmed).
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password
	// (exclusive with PasswordFile).
	PasswordEnv string `yaml:"password_env"`
	// DB is the database number (default 0).
	DB int `yaml:"db"`
	// TLS connects with TLS.
	TLS RedisTLS `yaml:"tls"`
	// DialTimeout bounds connecting (0: Timeout).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Timeout bounds each call made for a login (0: 200ms); past it the
	// replica's own limiter decides.
	Timeout time.Duration `yaml:"timeout"`

	// Password is read by Load/Parse from PasswordFile or PasswordEnv.
	Password secret.Secret `yaml:"-"`
}

// RedisTLS configures TLS to Redis. Setting CA or Certificate turns it on.
type RedisTLS struct {
	// Enabled turns TLS on with the system's CAs.
	Enabled bool `yaml:"enabled"`
	// CA is a PEM bundle of CAs to verify the server with.
	CA string `yaml:"ca"`
	// Certificate and Key are a client certificate (both or neither).
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
}

// On reports whether TLS is used.
func (t RedisTLS) On() bool { return t.Enabled || t.CA != "" || t.Certificate != "" }

// Metrics configures the Prometheus endpoint (Gatehouse extension).
type Metrics struct {
	// Addr is host:port of the metrics listener; empty turns metrics off.
	Addr string `yaml:"addr"`
	// Path is the HTTP path of the metrics (default /metrics).
	Path string `yaml:"path"`
}

// Token is the `token` section: how tokens are issued and signed.
type Token struct {
	// Issuer is the `iss` claim; the registry's auth.token.issuer must equal it. Required.
	Issuer string `yaml:"issuer"`
	// Expiration is the token lifetime in seconds (> 0). Required.
	Expiration int64 `yaml:"expiration"`
	// Certificate and Key sign tokens (PEM; RSA or ECDSA). Parse fills them
	// from server.certificate and server.key when both are empty here.
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
	// DisableLegacyKeyID switches `kid` from the libtrust key ID (registry
	// 2.x) to the RFC 7638 thumbprint (registry 3.x).
	DisableLegacyKeyID bool `yaml:"disable_legacy_key_id"`

	// X5C puts the certificate chain in the token header, which registry
	// 2.x and 3.x both check first (Gatehouse extension; default true).
	X5C bool `yaml:"x5c"`
	// RefreshTokenExpiration is the lifetime in seconds of refresh tokens
	// issued for offline_token=true (Gatehouse extension; default 30 days,
	// 0 turns refresh tokens off).
	RefreshTokenExpiration int64 `yaml:"refresh_token_expiration"`
	// JWKSPath, when set, is the route (under server.path_prefix) that
	// serves the token public keys as a JWKS (Gatehouse extension; off by default).
	JWKSPath string `yaml:"jwks_path"`
}

// Lifetime returns Expiration as a duration.
func (t Token) Lifetime() time.Duration { return time.Duration(t.Expiration) * time.Second }

// RefreshLifetime returns RefreshTokenExpiration as a duration.
func (t Token) RefreshLifetime() time.Duration {
	return time.Duration(t.RefreshTokenExpiration) * time.Second
}

// Users is the static user table; the key "" is the anonymous user.
type Users map[string]User

// User is one static user.
type User struct {
	// Password is a bcrypt hash ($2a$, $2b$ or $2y$). Required except for
	// the anonymous user "". Kept as a Secret so it never reaches a log.
	Password secret.Secret `yaml:"password"`
	// Labels feed the ACL (match.labels and ${labels:x}).
	Labels map[string][]string `yaml:"labels"`
}

// LDAPAuth is the `ldap_auth` section. The LDAP authenticator consumes it.
type LDAPAuth struct {
	// Addr is host:port, or an ldap:// or ldaps:// URL (Gatehouse accepts URLs).
	Addr string `yaml:"addr"`
	// TLS is "always" (LDAPS), "starttls", "none" or "" (from the URL
	// scheme, else always for port 636, else none).
	TLS string `yaml:"tls"`
	// InsecureTLSSkipVerify turns off certificate verification.
	InsecureTLSSkipVerify bool `yaml:"insecure_tls_skip_verify"`
	// CACertificate is a PEM bundle of CAs to verify the server with.
	CACertificate string `yaml:"ca_certificate"`
	// BindDN is the service account (a ${account} template with InitialBindAsUser).
	BindDN string `yaml:"bind_dn"`
	// BindPasswordFile holds the service account password (trimmed).
	BindPasswordFile string `yaml:"bind_password_file"`
	// BindPasswordEnv names an environment variable holding the service
	// account password (Gatehouse extension; exclusive with BindPasswordFile).
	BindPasswordEnv string `yaml:"bind_password_env"`
	// InitialBindAsUser binds as BindDN with ${account} and the user's
	// password, then searches as that user.
	InitialBindAsUser bool `yaml:"initial_bind_as_user"`
	// Base is the DN users are searched under (subtree). Required.
	Base string `yaml:"base"`
	// Filter finds the user; it must contain ${account}. Required.
	Filter string `yaml:"filter"`
	// AccountAttribute names the entry attribute whose value is the
	// account's name after login (Gatehouse extension; default: the first
	// attribute the filter compares with ${account}).
	AccountAttribute string `yaml:"account_attribute"`
	// Labels maps a label name to the attribute its values come from.
	Labels map[string]LDAPLabel `yaml:"labels"`

	// GroupSearch adds the cn of the user's groups to a label (Gatehouse extension).
	GroupSearch *GroupSearch `yaml:"group_search"`
	// DialTimeout bounds connecting, TLS included (Gatehouse extension;
	// 0: the authenticator's default).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// RequestTimeout bounds each LDAP operation (Gatehouse extension;
	// 0: the authenticator's default).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// PoolSize is the number of service connections kept open (Gatehouse
	// extension; 0: the authenticator's default).
	PoolSize int `yaml:"pool_size"`

	// BindPassword is read by Load/Parse from BindPasswordFile or
	// BindPasswordEnv. It is empty when neither is set or when the config
	// was parsed without an Env that can read them.
	BindPassword secret.Secret `yaml:"-"`
}

// LDAPLabel maps one LDAP attribute to a label.
type LDAPLabel struct {
	// Attribute is the LDAP attribute whose values become the label's. Required.
	Attribute string `yaml:"attribute"`
	// ParseCN turns each value (a DN, e.g. from memberOf) into its first CN.
	ParseCN bool `yaml:"parse_cn"`
	// LowerCase lower-cases the values.
	LowerCase bool `yaml:"lower_case"`
}

// GroupSearch is a second LDAP search for the user's groups (Gatehouse extension).
type GroupSearch struct {
	// Base is the DN groups are searched under. Required.
	Base string `yaml:"base"`
	// Filter may hold ${account} and ${dn}, e.g. (member=${dn}). Required.
	Filter string `yaml:"filter"`
	// Label receives the cn of each group found (default ldap.DefaultGroupLabel, "groups").
	Label string `yaml:"label"`
}

// ExtCommand is `ext_auth` or `ext_authz`: an external program run per request.
type ExtCommand struct {
	// Command is the program; it must be found (PATH lookup) at load time.
	Command string `yaml:"command"`
	// Args are passed to Command.
	Args []string `yaml:"args"`
	// Timeout bounds each run (Gatehouse extension; default 10s, the ext
	// backends' DefaultTimeout).
	Timeout time.Duration `yaml:"timeout"`
}
