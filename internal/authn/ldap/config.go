package ldap

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// TLS modes for Config.TLS.
const (
	// TLSAlways connects with TLS from the first byte (LDAPS, usually port 636).
	TLSAlways = "always"
	// TLSStartTLS connects in plain text and upgrades with the StartTLS operation.
	TLSStartTLS = "starttls"
	// TLSNone sends everything, passwords included, in plain text.
	TLSNone = "none"
)

// Defaults applied by New when a field is zero (see Config.withDefaults),
// and the bounds Validate enforces. The config checker reads them from here.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultPoolSize       = 4
	DefaultGroupLabel     = "groups"
	// MaxPoolSize is the largest PoolSize accepted.
	MaxPoolSize = 256
	// maxAccountLen bounds the account names sent to the directory; longer
	// names are answered with ErrNoMatch without a round trip.
	maxAccountLen = 512
	// maxGroups bounds the entries a group search may return.
	maxGroups = 1000
)

// Config configures the LDAP authenticator. Its fields follow docker_auth's
// ldap_auth keys; the file's own type lives with the file format, and the
// auth server's composition converts it to this one.
type Config struct {
	// Addr is host:port, or an ldap:// or ldaps:// URL (the scheme implies
	// the TLS mode; an explicit TLS that contradicts it is an error).
	Addr string
	// TLS is "always", "starttls" or "none". Empty means: from the URL
	// scheme, else "always" for port 636 (as docker_auth does), else "none".
	TLS string
	// InsecureSkipVerify turns off certificate verification (TLS still encrypts).
	InsecureSkipVerify bool
	// CACertFile is a PEM bundle of CAs to verify the server with, instead of
	// the system roots. It is read by New and Reload, not per connection.
	CACertFile string
	// BindDN is the service account searches run as. With InitialBindAsUser
	// it is a template holding ${account}. Empty means anonymous searches.
	// It is sent as the bind name as is, so Active Directory's
	// user@domain form works too.
	BindDN string
	// BindPassword is the service account's password (the caller reads it
	// from a file or the environment).
	BindPassword secret.Secret
	// InitialBindAsUser binds as BindDN with ${account} replaced (DN-escaped)
	// and the user's password, then searches as that user.
	InitialBindAsUser bool
	// Base is the DN the user search starts from (subtree scope).
	Base string
	// Filter finds the user; ${account} is replaced by the filter-escaped account.
	Filter string
	// AccountAttribute names the attribute whose value is the account's
	// name after a login (a Gatehouse extension). Empty means the first
	// attribute Filter compares with ${account}, e.g. uid in
	// (&(uid=${account})(objectClass=posixAccount)). Directories match
	// names case-insensitively; the auth server uses the name from this
	// attribute for the ACL, the token's sub and refresh tokens, so
	// "UserA" and "usera" are one account.
	AccountAttribute string
	// Labels maps a label name to the attribute its values come from.
	Labels map[string]LabelConfig
	// GroupSearch, when set, adds the cn of every group found to a label
	// (a Gatehouse extension).
	GroupSearch *GroupSearch
	// DialTimeout bounds connecting, including the TLS handshake (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds each LDAP operation (default 10s).
	RequestTimeout time.Duration
	// PoolSize is the number of connections kept open per pool (default 4).
	PoolSize int
}

// LabelConfig maps one LDAP attribute to a label.
type LabelConfig struct {
	// Attribute is the attribute name; matched case-insensitively.
	Attribute string
	// ParseCN replaces each value (a DN, e.g. from memberOf) with its first CN.
	ParseCN bool
	// LowerCase lower-cases each value.
	LowerCase bool
}

// GroupSearch is a second search whose results are groups of the user.
type GroupSearch struct {
	// Base is where groups are searched (subtree scope).
	Base string
	// Filter may hold ${account} and ${dn} (the user's DN), both filter-escaped,
	// for example (memberUid=${account}) or (member=${dn}).
	Filter string
	// Label receives the cn of every group found (default "groups").
	Label string
}

// endpoint is Config.Addr resolved.
type endpoint struct {
	hostPort   string // host:port to dial
	serverName string // host for certificate verification
	tls        string // TLSAlways, TLSStartTLS or TLSNone
}

func (e endpoint) String() string {
	switch e.tls {
	case TLSAlways:
		return "ldaps://" + e.hostPort
	case TLSStartTLS:
		return "ldap://" + e.hostPort + " (starttls)"
	default:
		return "ldap://" + e.hostPort
	}
}

// parseAddr resolves addr and the configured TLS mode into an endpoint.
func parseAddr(addr, mode string) (endpoint, error) {
	switch mode {
	case "", TLSAlways, TLSStartTLS, TLSNone:
	default:
		return endpoint{}, fmt.Errorf("tls: unknown mode %q (use always, starttls or none)", mode)
	}
	if addr == "" {
		return endpoint{}, errors.New("addr: missing (host:port or an ldap:// or ldaps:// URL)")
	}
	var scheme, hostPort string
	if i := strings.Index(addr, "://"); i >= 0 {
		u, err := url.Parse(addr)
		if err != nil {
			return endpoint{}, fmt.Errorf("addr: %q is not a valid URL: %w", addr, err)
		}
		scheme = strings.ToLower(u.Scheme)
		if scheme != "ldap" && scheme != "ldaps" {
			return endpoint{}, fmt.Errorf("addr: scheme %q is not supported (use ldap:// or ldaps://)", u.Scheme)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return endpoint{}, fmt.Errorf("addr: %q must be only scheme://host[:port]", addr)
		}
		hostPort = u.Host
		if u.Port() == "" {
			port := "389"
			if scheme == "ldaps" {
				port = "636"
			}
			hostPort = net.JoinHostPort(u.Hostname(), port)
		}
	} else {
		hostPort = addr
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return endpoint{}, fmt.Errorf("addr: %q is not host:port: %w", addr, err)
	}
	if host == "" {
		return endpoint{}, fmt.Errorf("addr: %q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return endpoint{}, fmt.Errorf("addr: %q has an invalid port", addr)
	}
	switch {
	case scheme == "ldaps" && (mode == TLSStartTLS || mode == TLSNone):
		return endpoint{}, fmt.Errorf("addr: ldaps:// conflicts with tls: %s (use tls: always or an ldap:// URL)", mode)
	case scheme == "ldap" && mode == TLSAlways:
		return endpoint{}, errors.New("addr: ldap:// conflicts with tls: always (use an ldaps:// URL or tls: starttls)")
	case mode == "" && scheme == "ldaps":
		mode = TLSAlways
	case mode == "" && scheme == "ldap":
		mode = TLSNone
	case mode == "" && port == "636":
		mode = TLSAlways
	case mode == "":
		mode = TLSNone
	}
	return endpoint{hostPort: net.JoinHostPort(host, port), serverName: host, tls: mode}, nil
}

// Validate reports every problem with cfg, joined; nil means New accepts
// it (New still reads the CA file and may fail on that).
func (cfg Config) Validate() error {
	_, err := parseAddr(cfg.Addr, cfg.TLS)
	errs := []error{err}
	if cfg.Base == "" {
		errs = append(errs, errors.New("base: missing (the DN users are searched under)"))
	} else if err := checkDN(cfg.Base); err != nil {
		errs = append(errs, fmt.Errorf("base: %w", err))
	}
	if cfg.Filter == "" {
		errs = append(errs, errors.New("filter: missing, e.g. (&(uid=${account})(objectClass=posixAccount))"))
	} else if !strings.Contains(cfg.Filter, "${account}") {
		errs = append(errs, fmt.Errorf("filter: %q does not contain ${account}, so every user would find the same entry", cfg.Filter))
	} else if err := checkFilter(cfg.Filter); err != nil {
		errs = append(errs, fmt.Errorf("filter: %w", err))
	}
	if cfg.AccountAttribute != "" && !validAttribute(cfg.AccountAttribute) {
		errs = append(errs, fmt.Errorf("account_attribute: %q is not an attribute name", cfg.AccountAttribute))
	}
	if cfg.InitialBindAsUser {
		if !strings.Contains(cfg.BindDN, "${account}") {
			errs = append(errs, errors.New("bind_dn: with initial_bind_as_user it must contain ${account}"))
		}
		if !cfg.BindPassword.IsEmpty() {
			errs = append(errs, errors.New("bind_password: not used with initial_bind_as_user (the user's password is used)"))
		}
	} else {
		if cfg.BindDN == "" && !cfg.BindPassword.IsEmpty() {
			errs = append(errs, errors.New("bind_dn: missing while a bind password is set"))
		}
		if cfg.BindDN != "" && cfg.BindPassword.IsEmpty() {
			errs = append(errs, fmt.Errorf("bind_password: empty for bind_dn %q (an empty password would be an unauthenticated bind)", cfg.BindDN))
		}
	}
	for name, l := range cfg.Labels {
		if name == "" {
			errs = append(errs, errors.New("labels: a label has an empty name"))
		}
		if l.Attribute == "" {
			errs = append(errs, fmt.Errorf("labels.%s.attribute: missing", name))
		}
	}
	if g := cfg.GroupSearch; g != nil {
		if g.Base == "" {
			errs = append(errs, errors.New("group_search.base: missing"))
		} else if err := checkDN(g.Base); err != nil {
			errs = append(errs, fmt.Errorf("group_search.base: %w", err))
		}
		if g.Filter == "" {
			errs = append(errs, errors.New("group_search.filter: missing, e.g. (member=${dn}) or (memberUid=${account})"))
		} else if err := checkFilter(g.Filter); err != nil {
			errs = append(errs, fmt.Errorf("group_search.filter: %w", err))
		}
	}
	if cfg.DialTimeout < 0 || cfg.RequestTimeout < 0 || cfg.PoolSize < 0 {
		errs = append(errs, errors.New("dial_timeout, request_timeout and pool_size must not be negative"))
	}
	if cfg.PoolSize > MaxPoolSize {
		errs = append(errs, fmt.Errorf("pool_size: %d is more than %d", cfg.PoolSize, MaxPoolSize))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of cfg with every zero field that has a
// default filled in. The caller's GroupSearch is not changed.
func (cfg Config) withDefaults() Config {
	if gs := cfg.GroupSearch; gs != nil && gs.Label == "" {
		g := *gs
		g.Label = DefaultGroupLabel
		cfg.GroupSearch = &g
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	return cfg
}

// validate checks cfg and returns a copy with defaults filled in, and the
// resolved endpoint.
func (cfg Config) validate() (Config, endpoint, error) {
	err := cfg.Validate()
	ep, _ := parseAddr(cfg.Addr, cfg.TLS) // its error is part of err
	return cfg.withDefaults(), ep, err
}
