// Package ldap authenticates users against an LDAP directory (OpenLDAP,
// Active Directory, 389-ds, ...), accepting the keys of docker_auth's
// ldap_auth section.
//
// The flow per request: a pooled connection bound as the service account
// searches Base for Filter (the account filter-escaped); exactly one entry
// must match; the user's password is then checked by binding as that entry's
// DN on a separate connection, so a pooled service connection is never left
// bound as a user. Labels come from the entry's attributes and, optionally,
// from a group search. Empty accounts and passwords are refused before any
// network traffic, so an unauthenticated bind can never pass for a login.
//
// The account's name after a login is the entry's own spelling of it (see
// Config.AccountAttribute), returned by AuthenticateAccount: a directory
// matches "UserA" and "usera" to one entry, and the auth server must see
// one account.
//
// Results: labels on success, authn.ErrNoMatch when the filter finds no one,
// authn.ErrWrongPass for a wrong password (or an ambiguous filter), an error
// wrapping authn.ErrUnavailable when the directory cannot be reached in time.
// Nothing is cached here: the auth server caches verified credentials for
// every authenticator.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Authenticator checks accounts and passwords against an LDAP directory.
// It is safe for concurrent use.
type Authenticator struct {
	cfg   Config
	ep    endpoint
	log   *slog.Logger
	attrs []string // attributes requested in the user search
	// accountAttrs name the attributes the account's own spelling of its
	// name is read from, in order of preference.
	accountAttrs []string
	tlsCfg       atomic.Pointer[tls.Config]
	dialer       *dialer
	// svc holds connections bound as the service account; they only search.
	svc *pool
	// users holds connections used to check user passwords. Every use starts
	// with a bind, which replaces whatever identity the connection had.
	users *pool
}

// New checks cfg, reads the CA file and connects once to check the service
// account. A configuration error or credentials the directory refuses make
// New fail (the error names the bind DN, never the password). A directory
// that cannot be reached is only logged: Gatehouse starts, reports not ready
// (see Ready) and answers 503 until the directory is back.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Authenticator, error) {
	return newAuthenticator(ctx, cfg, logger, true)
}

func newAuthenticator(ctx context.Context, cfg Config, logger *slog.Logger, pooled bool) (*Authenticator, error) {
	cfg, ep, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("ldap_auth: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, ep: ep, log: logger.With("authn", "ldap", "server", ep.String())}
	a.accountAttrs = accountAttributes(cfg.Filter)
	if cfg.AccountAttribute != "" {
		a.accountAttrs = []string{cfg.AccountAttribute}
	}
	if len(a.accountAttrs) == 0 {
		a.log.Warn("ldap: the filter compares no attribute with ${account} (as in (uid=${account})), so account names are used as typed: " +
			"\"UserA\" and \"usera\" would be two accounts to the ACL; set account_attribute")
	}
	a.attrs = searchAttributes(cfg.Labels, a.accountAttrs)
	if ep.tls == TLSNone {
		if cfg.CACertFile != "" || cfg.InsecureSkipVerify {
			a.log.Warn("ldap: ca_certificate and insecure_tls_skip_verify have no effect with tls: none")
		}
		a.log.Warn("ldap: tls is none, passwords cross the network in plain text")
	} else if cfg.InsecureSkipVerify {
		a.log.Warn("ldap: insecure_tls_skip_verify is set, the directory's certificate is not verified")
	}
	tc, err := a.loadTLS()
	if err != nil {
		return nil, fmt.Errorf("ldap_auth: %w", err)
	}
	a.tlsCfg.Store(tc)
	a.dialer = &dialer{ep: ep, dialTimeout: cfg.DialTimeout, requestTimeout: cfg.RequestTimeout, tlsConfig: a.tlsCfg.Load}
	wait := cfg.RequestTimeout
	a.svc = newPool("service", cfg.PoolSize, wait, pooled, a.dialService)
	a.users = newPool("user", cfg.PoolSize, wait, pooled, a.dialer.dial)

	if !cfg.InitialBindAsUser {
		c, err := a.svc.get(ctx)
		switch {
		case err == nil:
			a.svc.put(c, true)
		case isTransport(err):
			a.log.Error("ldap: directory unreachable at startup; not ready until it answers", "err", err)
		default:
			_ = a.Close()
			return nil, fmt.Errorf("ldap_auth: %w", err)
		}
	}
	return a, nil
}

// loadTLS builds the TLS client configuration, reading CACertFile.
func (a *Authenticator) loadTLS() (*tls.Config, error) {
	tc := &tls.Config{
		ServerName:         a.ep.serverName,
		InsecureSkipVerify: a.cfg.InsecureSkipVerify, //nolint:gosec // an operator's explicit choice, warned about in the log
		MinVersion:         tls.VersionTLS12,
	}
	if a.cfg.CACertFile != "" {
		pem, err := os.ReadFile(a.cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("ca_certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_certificate: %s holds no PEM certificate", a.cfg.CACertFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Reload re-reads the CA file and closes idle connections, so new ones
// verify the server with the new CAs. On error the old settings stay.
func (a *Authenticator) Reload(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tc, err := a.loadTLS()
	if err != nil {
		return fmt.Errorf("ldap_auth: %w", err)
	}
	a.tlsCfg.Store(tc)
	a.svc.drain()
	a.users.drain()
	return nil
}

// Name implements authn.Authenticator.
func (a *Authenticator) Name() string { return "ldap" }

// Close closes all connections. Later calls to Authenticate fail.
func (a *Authenticator) Close() error {
	a.svc.close()
	a.users.close()
	return nil
}

// dialService opens a connection and binds it as the service account.
func (a *Authenticator) dialService(ctx context.Context) (*goldap.Conn, error) {
	c, err := a.dialer.dial(ctx)
	if err != nil {
		return nil, err
	}
	if a.cfg.BindDN == "" {
		return c, nil
	}
	err = netErr("service bind", withContext(ctx, c, func() error { return c.Bind(a.cfg.BindDN, a.cfg.BindPassword.Reveal()) }))
	if err == nil {
		return c, nil
	}
	_ = c.Close()
	if isTransport(err) {
		return nil, err
	}
	if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		return nil, &serviceBindError{dn: a.cfg.BindDN, server: a.ep.String(), err: errors.New("invalid credentials (check bind_password_file or bind_password_env)")}
	}
	return nil, &serviceBindError{dn: a.cfg.BindDN, server: a.ep.String(), err: unwrapLDAP(err)}
}

// serviceBindError is the directory refusing the service account.
type serviceBindError struct {
	dn, server string
	err        error
}

func (e *serviceBindError) Error() string {
	return fmt.Sprintf("%s refused the service account bind_dn %q: %v", e.server, e.dn, e.err)
}

func (e *serviceBindError) Unwrap() error { return e.err }

// Ready reports whether the directory answers: it takes a service
// connection (binding if needed) and reads the base entry. The auth server
// calls it from /readyz.
func (a *Authenticator) Ready(ctx context.Context) error {
	err := a.retry(ctx, a.ready)
	if err != nil {
		return a.classify(err)
	}
	return nil
}

func (a *Authenticator) ready(ctx context.Context) error {
	if a.cfg.InitialBindAsUser {
		// No service account: connecting (and the TLS handshake) is the check.
		c, err := a.dialer.dial(ctx)
		if err != nil {
			return netErr("connect", err)
		}
		_ = c.Close()
		return nil
	}
	c, err := a.svc.get(ctx)
	if err != nil {
		return err
	}
	req := goldap.NewSearchRequest(a.cfg.Base, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1,
		a.timeLimit(), false, "(objectClass=*)", []string{"1.1"}, nil)
	err = netErr("search", withContext(ctx, c, func() error { _, err := c.Search(req); return err }))
	if err != nil {
		err = tried(c, fmt.Errorf("reading base %q: %w", a.cfg.Base, err))
	}
	a.svc.put(c, !isTransport(err))
	return err
}

// Authenticate implements authn.Authenticator.
func (a *Authenticator) Authenticate(ctx context.Context, account string, password secret.Secret) (authn.Labels, error) {
	_, labels, err := a.AuthenticateAccount(ctx, account, password)
	return labels, err
}

// AuthenticateAccount implements authn.AccountAuthenticator: it answers
// as Authenticate does and also returns the account's name as the
// directory spells it (see Config.AccountAttribute).
func (a *Authenticator) AuthenticateAccount(ctx context.Context, account string, password secret.Secret) (string, authn.Labels, error) {
	if account == "" || password.IsEmpty() {
		return "", nil, authn.ErrNoMatch
	}
	if len(account) > maxAccountLen {
		return "", nil, authn.ErrNoMatch
	}
	var id identity
	err := a.retry(ctx, func(ctx context.Context) error {
		var err error
		if a.cfg.InitialBindAsUser {
			id, err = a.authAsUser(ctx, account, password)
		} else {
			id, err = a.authWithService(ctx, account, password)
		}
		return err
	})
	if err != nil {
		return "", nil, a.classify(err)
	}
	return id.account, id.labels, nil
}

// identity is an account as the directory knows it.
type identity struct {
	account string // the entry's own spelling of the name
	labels  authn.Labels
}

// errNoAccountName is an entry without the attribute naming the account.
var errNoAccountName = errors.New("the entry has no single value of the account attribute")

// accountName returns the entry's spelling of the account: the value of
// the first account attribute that has exactly one value, or that has a
// value equal to account ignoring case. Without account attributes (see
// New's warning), account is returned as typed.
func (a *Authenticator) accountName(entry *goldap.Entry, account string) (string, error) {
	if len(a.accountAttrs) == 0 {
		return account, nil
	}
	for _, attr := range a.accountAttrs {
		vals := entry.GetEqualFoldAttributeValues(attr)
		if len(vals) == 1 && vals[0] != "" {
			return vals[0], nil
		}
		for _, v := range vals {
			if v != "" && strings.EqualFold(v, account) {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("entry %q: %w (%s); set account_attribute to a single-valued attribute", entry.DN, errNoAccountName, strings.Join(a.accountAttrs, ", "))
}

// attempt marks a transport error on a connection taken from the idle
// list, which may simply be stale (the server restarted): worth one retry.
type attempt struct {
	err    error
	reused bool
}

// tried wraps a non-nil err from an operation on c in an attempt. Call it
// before giving c back to its pool.
func tried(c *conn, err error) error {
	if err == nil {
		return nil
	}
	return &attempt{err: err, reused: c.reused}
}

func (e *attempt) Error() string { return e.err.Error() }
func (e *attempt) Unwrap() error { return e.err }

// retry runs fn, and once more after a transport error on a reused
// connection that was not a timeout (a slow server gets no second wait).
// Idle connections are dropped after such an error: they are likely stale too.
func (a *Authenticator) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	err := fn(ctx)
	var at *attempt
	if err == nil || !errors.As(err, &at) || !isTransport(err) {
		return err
	}
	a.svc.drain()
	a.users.drain()
	if !at.reused || isTimeout(err) || ctx.Err() != nil {
		return err
	}
	a.log.Debug("ldap: pooled connection failed, retrying on a new one", "err", err)
	return fn(ctx)
}

// errAmbiguous is the filter matching more than one entry.
var errAmbiguous = errors.New("filter matched more than one entry")

// classify turns an internal error into what the auth server acts on, and
// logs what an operator needs to know.
func (a *Authenticator) classify(err error) error {
	switch {
	case errors.Is(err, authn.ErrNoMatch), errors.Is(err, authn.ErrWrongPass):
		return err
	case errors.Is(err, errClosed):
		return err
	case errors.Is(err, context.Canceled):
		return err
	case isTransport(err), goldap.IsErrorAnyOf(err, goldap.LDAPResultBusy, goldap.LDAPResultUnavailable,
		goldap.LDAPResultTimeLimitExceeded, goldap.LDAPResultAdminLimitExceeded):
		reason := "unreachable"
		if isTimeout(err) {
			reason = "timed out"
		}
		a.log.Warn("ldap: directory "+reason, "err", err)
		return fmt.Errorf("ldap: %s %s: %w: %w", a.ep, reason, err, authn.ErrUnavailable)
	default:
		var sb *serviceBindError
		if errors.As(err, &sb) {
			a.log.Error("ldap: service account refused", "bind_dn", sb.dn, "err", sb.err)
			return fmt.Errorf("ldap: %w", err)
		}
		a.log.Error("ldap: directory error", "err", err)
		return fmt.Errorf("ldap: %s: %w", a.ep, err)
	}
}

// authWithService is the normal flow: search as the service account, then
// bind as the user on a connection of the user pool.
func (a *Authenticator) authWithService(ctx context.Context, account string, password secret.Secret) (identity, error) {
	sc, err := a.svc.get(ctx)
	if err != nil {
		return identity{}, err
	}
	entry, err := a.findUser(ctx, sc, account)
	err = tried(sc, err)
	a.svc.put(sc, !isTransport(err))
	if err != nil {
		return identity{}, err
	}

	uc, err := a.users.get(ctx)
	if err != nil {
		return identity{}, err
	}
	err = a.bindUser(ctx, uc, entry.DN, password)
	err = tried(uc, err)
	a.users.put(uc, !isTransport(err))
	if err != nil {
		return identity{}, err
	}

	name, err := a.accountName(entry, account)
	if err != nil {
		return identity{}, err
	}
	labels := extractLabels(a.log, a.cfg.Labels, entry)
	if a.cfg.GroupSearch != nil {
		gc, err := a.svc.get(ctx)
		if err != nil {
			return identity{}, err
		}
		groups, err := a.searchGroups(ctx, gc, name, entry.DN)
		err = tried(gc, err)
		a.svc.put(gc, !isTransport(err))
		if err != nil {
			return identity{}, err
		}
		labels = addValues(labels, a.cfg.GroupSearch.Label, groups)
	}
	return identity{account: name, labels: labels}, nil
}

// ErrLookupUnsupported is Lookup's answer with initial_bind_as_user: there
// is no service account to search with.
var ErrLookupUnsupported = errors.New("ldap: looking accounts up needs a service account (initial_bind_as_user is set)")

// Lookup returns the current labels of account without checking a
// password; the auth server uses it when it refreshes a token, so labels
// follow the directory. An account the filter no longer finds gives
// ErrNoMatch; one it finds twice gives an error.
func (a *Authenticator) Lookup(ctx context.Context, account string) (authn.Labels, error) {
	_, labels, err := a.LookupAccount(ctx, account)
	return labels, err
}

// LookupAccount is Lookup that also returns the account's name as the
// directory spells it, as AuthenticateAccount does.
func (a *Authenticator) LookupAccount(ctx context.Context, account string) (string, authn.Labels, error) {
	if account == "" || len(account) > maxAccountLen {
		return "", nil, authn.ErrNoMatch
	}
	if a.cfg.InitialBindAsUser {
		return "", nil, ErrLookupUnsupported
	}
	var id identity
	err := a.retry(ctx, func(ctx context.Context) error {
		sc, err := a.svc.get(ctx)
		if err != nil {
			return err
		}
		entry, err := a.findUser(ctx, sc, account)
		if err == nil {
			id.account, err = a.accountName(entry, account)
		}
		if err == nil {
			id.labels = extractLabels(a.log, a.cfg.Labels, entry)
			if a.cfg.GroupSearch != nil {
				var groups []string
				groups, err = a.searchGroups(ctx, sc, id.account, entry.DN)
				id.labels = addValues(id.labels, a.cfg.GroupSearch.Label, groups)
			}
		}
		err = tried(sc, err)
		a.svc.put(sc, !isTransport(err))
		return err
	})
	if errors.Is(err, errAmbiguous) {
		return "", nil, fmt.Errorf("ldap: %w", errAmbiguous)
	}
	if err != nil {
		return "", nil, a.classify(err)
	}
	return id.account, id.labels, nil
}

// authAsUser is initial_bind_as_user: bind as the templated DN with the
// user's password, then search as that user on the same connection.
func (a *Authenticator) authAsUser(ctx context.Context, account string, password secret.Secret) (identity, error) {
	uc, err := a.users.get(ctx)
	if err != nil {
		return identity{}, err
	}
	id, err := func() (identity, error) {
		if err := a.bindUser(ctx, uc, buildBindDN(a.cfg.BindDN, account), password); err != nil {
			return identity{}, err
		}
		entry, err := a.findUser(ctx, uc, account)
		if err != nil {
			return identity{}, err
		}
		name, err := a.accountName(entry, account)
		if err != nil {
			return identity{}, err
		}
		labels := extractLabels(a.log, a.cfg.Labels, entry)
		if a.cfg.GroupSearch != nil {
			groups, err := a.searchGroups(ctx, uc, name, entry.DN)
			if err != nil {
				return identity{}, err
			}
			labels = addValues(labels, a.cfg.GroupSearch.Label, groups)
		}
		return identity{account: name, labels: labels}, nil
	}()
	err = tried(uc, err)
	a.users.put(uc, !isTransport(err))
	if err != nil {
		return identity{}, err
	}
	return id, nil
}

// bindUser checks the user's password by binding as dn.
func (a *Authenticator) bindUser(ctx context.Context, c *conn, dn string, password secret.Secret) error {
	err := netErr("bind", withContext(ctx, c, func() error { return c.Bind(dn, password.Reveal()) }))
	switch {
	case err == nil:
		return nil
	case goldap.IsErrorAnyOf(err, goldap.LDAPResultInvalidCredentials, goldap.LDAPResultInappropriateAuthentication):
		return authn.ErrWrongPass
	case isTransport(err):
		return err
	default:
		return fmt.Errorf("bind as %q: %w", dn, err)
	}
}

// findUser searches for the account's entry: exactly one must match.
func (a *Authenticator) findUser(ctx context.Context, c *conn, account string) (*goldap.Entry, error) {
	filter := buildFilter(a.cfg.Filter, account, "")
	req := goldap.NewSearchRequest(a.cfg.Base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2,
		a.timeLimit(), false, filter, a.attrs, nil)
	var res *goldap.SearchResult
	err := netErr("search", withContext(ctx, c, func() error {
		var err error
		res, err = c.Search(req)
		return err
	}))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) || (err == nil && len(res.Entries) > 1) {
		a.log.Error("ldap: the filter matched more than one entry; refusing the login (make the filter unique)",
			"base", a.cfg.Base, "filter", filter)
		return nil, fmt.Errorf("%w: %w", authn.ErrWrongPass, errAmbiguous)
	}
	if err != nil {
		if isTransport(err) {
			return nil, err
		}
		return nil, fmt.Errorf("search %s under %q: %w", filter, a.cfg.Base, err)
	}
	if len(res.Entries) == 0 {
		return nil, authn.ErrNoMatch
	}
	entry := res.Entries[0]
	if entry.DN == "" {
		// Binding with an empty DN would be an anonymous bind.
		a.log.Error("ldap: the search returned an entry without a DN; refusing the login", "filter", filter)
		return nil, authn.ErrNoMatch
	}
	return entry, nil
}

// searchGroups runs the group search and returns the cn of each group.
func (a *Authenticator) searchGroups(ctx context.Context, c *conn, account, dn string) ([]string, error) {
	gs := a.cfg.GroupSearch
	filter := buildFilter(gs.Filter, account, dn)
	req := goldap.NewSearchRequest(gs.Base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, maxGroups,
		a.timeLimit(), false, filter, []string{"cn"}, nil)
	var res *goldap.SearchResult
	err := netErr("group search", withContext(ctx, c, func() error {
		var err error
		res, err = c.Search(req)
		return err
	}))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		a.log.Warn("ldap: group search hit its size limit; using the groups returned", "limit", maxGroups, "filter", filter)
		err = nil
	}
	if err != nil {
		if isTransport(err) {
			return nil, err
		}
		return nil, fmt.Errorf("group search %s under %q: %w", filter, gs.Base, err)
	}
	return groupNames(a.log, res.Entries), nil
}

// groupNames returns each group's cn attribute, or else the first CN of its DN.
func groupNames(log *slog.Logger, entries []*goldap.Entry) []string {
	var out []string
	for _, e := range entries {
		if cn := e.GetEqualFoldAttributeValue("cn"); cn != "" {
			out = append(out, cn)
			continue
		}
		cn, err := firstCN(e.DN)
		if err != nil {
			log.Warn("ldap: group without a cn skipped", "dn", e.DN, "err", err)
			continue
		}
		out = append(out, cn)
	}
	return out
}

func (a *Authenticator) timeLimit() int {
	return int(math.Ceil(a.cfg.RequestTimeout.Seconds()))
}

// labelAttributes lists the attributes to request, or "1.1" (no
// attributes, RFC 4511) when no label needs any.
func labelAttributes(labels map[string]LabelConfig) []string {
	return searchAttributes(labels, nil)
}

// searchAttributes lists the attributes the user search requests: those
// of the labels and the account attributes, or "1.1" (no attributes,
// RFC 4511) when there are none.
func searchAttributes(labels map[string]LabelConfig, accountAttrs []string) []string {
	seen := map[string]bool{}
	var attrs []string
	add := func(attr string) {
		k := strings.ToLower(attr)
		if !seen[k] {
			seen[k] = true
			attrs = append(attrs, attr)
		}
	}
	for _, l := range labels {
		add(l.Attribute)
	}
	for _, attr := range accountAttrs {
		add(attr)
	}
	if len(attrs) == 0 {
		return []string{"1.1"}
	}
	sort.Strings(attrs)
	return attrs
}

// extractLabels builds labels from an entry's attributes. Attribute names
// are compared case-insensitively (directories answer "memberOf" to a
// request for "memberof"). With ParseCN a value that is not a DN with a CN
// is skipped with a warning.
func extractLabels(log *slog.Logger, cfg map[string]LabelConfig, entry *goldap.Entry) authn.Labels {
	names := make([]string, 0, len(cfg))
	for name := range cfg {
		names = append(names, name)
	}
	sort.Strings(names)
	labels := authn.Labels{}
	for _, name := range names {
		l := cfg[name]
		var values []string
		for _, v := range entry.GetEqualFoldAttributeValues(l.Attribute) {
			if l.ParseCN {
				cn, err := firstCN(v)
				if err != nil {
					log.Warn("ldap: value skipped, parse_cn needs a DN with a CN", "label", name, "attribute", l.Attribute, "value", v, "err", err)
					continue
				}
				v = cn
			}
			if l.LowerCase {
				v = strings.ToLower(v)
			}
			values = append(values, v)
		}
		labels = addValues(labels, name, values)
	}
	return labels
}

// addValues appends values to labels[name], skipping duplicates.
func addValues(labels authn.Labels, name string, values []string) authn.Labels {
	if len(values) == 0 {
		return labels
	}
	if labels == nil {
		labels = authn.Labels{}
	}
	cur := labels[name]
	for _, v := range values {
		if !slices.Contains(cur, v) {
			cur = append(cur, v)
		}
	}
	labels[name] = cur
	return labels
}

// withContext runs op on c, closing c if ctx ends first (go-ldap's
// operations take no context; closing makes them return at once).
func withContext(ctx context.Context, c interface{ Close() error }, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	err := op()
	if !stop() {
		if err == nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// transportError is a failure to talk to the server (connect, TLS, a
// dropped connection, no answer in time), as opposed to an LDAP result the
// server sent.
type transportError struct {
	op  string
	err error
}

func (e *transportError) Error() string { return e.op + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// netErr wraps err in a transportError when go-ldap or the network
// reported it rather than the server.
func netErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case goldap.ErrorNetwork, goldap.ErrorUnexpectedMessage, goldap.ErrorUnexpectedResponse, goldap.ErrorMalformedPacket,
			goldap.LDAPResultServerDown, goldap.LDAPResultConnectError:
		default:
			return err
		}
	}
	return &transportError{op: op, err: err}
}

// isTransport reports whether err is (or wraps) a transportError.
func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// isTimeout reports whether err is a timeout (the server did not answer in time).
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// go-ldap reports its request timeout as "connection timed out" and
	// flattens a read deadline into "... i/o timeout".
	msg := err.Error()
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "timed out") || strings.Contains(msg, "i/o timeout")
}

var (
	_ authn.Authenticator        = (*Authenticator)(nil)
	_ authn.AccountAuthenticator = (*Authenticator)(nil)
)
