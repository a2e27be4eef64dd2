package authserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	authnext "github.com/gatehouse-registry/gatehouse/internal/authn/ext"
	"github.com/gatehouse-registry/gatehouse/internal/authn/ldap"
	"github.com/gatehouse-registry/gatehouse/internal/authn/static"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
	"github.com/gatehouse-registry/gatehouse/internal/authz/acl"
	authzext "github.com/gatehouse-registry/gatehouse/internal/authz/ext"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// Build turns a loaded auth_config.yml into a Chain: authenticators in
// docker_auth's order (static users, ext_auth, LDAP), authorizers likewise
// (acl, ext_authz), the token signer from token.certificate and token.key,
// and the server settings that may change on reload. On error nothing is
// left open.
func Build(ctx context.Context, cfg *authconfig.Config, log *slog.Logger) (_ *Chain, err error) {
	c := &Chain{
		Issuer:       cfg.Token.Issuer,
		Expiration:   cfg.Token.Lifetime(),
		PathPrefix:   cfg.Server.PathPrefix,
		HSTS:         cfg.Server.HSTS,
		JWKSPath:     cfg.Token.JWKSPath,
		RealIPHeader: cfg.Server.RealIPHeader,
		RealIPPos:    cfg.Server.RealIPPos,
		// In the file, 0 turns a feature off; in a Chain, 0 means the
		// default and a negative value off.
		CacheTTL:        offIfZero(cfg.Server.CredentialCacheTTL),
		AccountFailures: offIfZero(cfg.Server.RateLimit.FailedLoginsPerAccount),
		IPFailures:      offIfZero(cfg.Server.RateLimit.FailedLoginsPerIP),
		FailureWindow:   cfg.Server.RateLimit.Window,
		TokenCacheTTL:   offIfZero(cfg.Server.TokenCache.TTL),
		TokenCacheSize:  cfg.Server.TokenCache.MaxEntries,
	}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()

	if r := cfg.Server.RateLimit.Redis; r != nil {
		if c.SharedLimits, err = sharedLimits(ctx, r, log); err != nil {
			return nil, err
		}
	}

	if cfg.Users != nil {
		users := staticUsers(cfg.Users)
		a, err := static.New(users)
		if err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		c.Authenticators = append(c.Authenticators, staticAuthn{a, users})
	}
	if cfg.ExtAuth != nil {
		a, err := authnext.New(extConfig(cfg.ExtAuth))
		if err != nil {
			return nil, fmt.Errorf("ext_auth: %w", err)
		}
		c.Authenticators = append(c.Authenticators, a)
	}
	if cfg.LDAPAuth != nil {
		a, err := ldap.New(ctx, ldapConfig(cfg.LDAPAuth), log)
		if err != nil {
			return nil, fmt.Errorf("ldap_auth: %w", err)
		}
		c.Authenticators = append(c.Authenticators, ldapAuthn{a})
	}

	if cfg.ACL != nil {
		a, err := acl.Compile(cfg.ACL)
		if err != nil {
			return nil, fmt.Errorf("acl: %w", err)
		}
		c.Authorizers = append(c.Authorizers, a)
	}
	if cfg.ExtAuthz != nil {
		a, err := authzext.New(extConfig(cfg.ExtAuthz))
		if err != nil {
			return nil, fmt.Errorf("ext_authz: %w", err)
		}
		c.Authorizers = append(c.Authorizers, a)
	}

	kp, err := tlsutil.LoadKeyPair(cfg.Token.Certificate, cfg.Token.Key)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	for _, w := range kp.Warnings {
		log.Warn("token certificate", "file", cfg.Token.Certificate, "warning", w)
	}
	opts := token.SignerOptions{X5C: cfg.Token.X5C, KeyID: token.KeyIDLibtrust}
	if cfg.Token.DisableLegacyKeyID {
		opts.KeyID = token.KeyIDThumbprint
	}
	signer, err := token.NewSigner(kp.Key, kp.Certificates(), opts)
	if err != nil {
		return nil, err
	}
	c.Signer = signer
	if rt := cfg.Token.RefreshLifetime(); rt > 0 {
		c.RefreshExpiration = rt
		if c.RefreshKey, err = RefreshKey(kp.Key); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// staticUsers converts the users section into the static authenticator's
// user list; the labels are copies.
func staticUsers(us authconfig.Users) static.Users {
	users := make(static.Users, len(us))
	for name, u := range us {
		users[name] = static.User{Password: u.Password, Labels: authn.Labels(u.Labels).Clone()}
	}
	return users
}

// extConfig converts the ext_auth or ext_authz section into the Config
// of the external authenticator or authorizer (one type for both).
func extConfig(c *authconfig.ExtCommand) authnext.Config {
	return authnext.Config{Command: c.Command, Args: c.Args, Timeout: c.Timeout}
}

// ldapConfig converts the ldap_auth section (with its bind password
// already read by the config loader) into the LDAP authenticator's Config.
func ldapConfig(c *authconfig.LDAPAuth) ldap.Config {
	cfg := ldap.Config{
		Addr:               c.Addr,
		TLS:                c.TLS,
		InsecureSkipVerify: c.InsecureTLSSkipVerify,
		CACertFile:         c.CACertificate,
		BindDN:             c.BindDN,
		BindPassword:       c.BindPassword,
		InitialBindAsUser:  c.InitialBindAsUser,
		Base:               c.Base,
		Filter:             c.Filter,
		AccountAttribute:   c.AccountAttribute,
		DialTimeout:        c.DialTimeout,
		RequestTimeout:     c.RequestTimeout,
		PoolSize:           c.PoolSize,
	}
	if len(c.Labels) > 0 {
		cfg.Labels = make(map[string]ldap.LabelConfig, len(c.Labels))
		for name, l := range c.Labels {
			cfg.Labels[name] = ldap.LabelConfig{Attribute: l.Attribute, ParseCN: l.ParseCN, LowerCase: l.LowerCase}
		}
	}
	if g := c.GroupSearch; g != nil {
		cfg.GroupSearch = &ldap.GroupSearch{Base: g.Base, Filter: g.Filter, Label: g.Label}
	}
	return cfg
}

func offIfZero[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// staticAuthn adds LabelLookup, CredentialVersion and AccountLister to
// the static users, so a refresh token follows the current file: a
// removed user can no longer refresh, changed labels apply at once, and a
// changed password hash, or a user removed and added again, revokes the
// user's refresh tokens.
type staticAuthn struct {
	*static.Authenticator
	users static.Users
}

func (s staticAuthn) Lookup(_ context.Context, account string) (authn.Labels, error) {
	u, ok := s.users[account]
	if !ok {
		return nil, authn.ErrNoMatch
	}
	return u.Labels.Clone(), nil
}

// CredentialVersion is the user's bcrypt hash: a new password, or the same
// one hashed again (a new salt), is a new version.
func (s staticAuthn) CredentialVersion(_ context.Context, account string) (secret.Secret, error) {
	u, ok := s.users[account]
	if !ok {
		return "", authn.ErrNoMatch
	}
	return u.Password, nil
}

func (s staticAuthn) Accounts() []string {
	out := make([]string, 0, len(s.users))
	for name := range s.users {
		out = append(out, name)
	}
	return out
}

// ldapAuthn maps "lookup impossible in this bind mode" to
// errors.ErrUnsupported, so refresh keeps the labels recorded at login.
// An account the directory now spells differently from the refresh
// token (the entry was renamed, or the filter finds another entry) is
// gone.
type ldapAuthn struct{ *ldap.Authenticator }

func (l ldapAuthn) Lookup(ctx context.Context, account string) (authn.Labels, error) {
	canonical, labels, err := l.LookupAccount(ctx, account)
	if errors.Is(err, ldap.ErrLookupUnsupported) {
		return nil, fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
	}
	if err == nil && canonical != account {
		return nil, authn.ErrNoMatch
	}
	return labels, err
}

var (
	_ LabelLookup                = staticAuthn{}
	_ CredentialVersion          = staticAuthn{}
	_ AccountLister              = staticAuthn{}
	_ LabelLookup                = ldapAuthn{}
	_ authn.AccountAuthenticator = ldapAuthn{}
	_ Ready                      = ldapAuthn{}
	_ authz.Authorizer           = (*acl.ACL)(nil)
	_ authn.Authenticator        = staticAuthn{}
)
