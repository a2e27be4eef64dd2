//go:build integration

// Package ldap_test runs the LDAP authenticator against a real OpenLDAP
// slapd started on 127.0.0.1 by the test harness.
package ldap_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authn/ldap"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// seedConfig is the seed's ldap_auth section pointed at the test slapd:
// LDAPS, the proxy account, the posixAccount filter, groups from gidNumber.
func seedConfig(l *testenv.LDAP) ldap.Config {
	return ldap.Config{
		Addr:         l.TLSAddr,
		TLS:          ldap.TLSAlways,
		CACertFile:   l.CAFile,
		BindDN:       l.BindDN,
		BindPassword: secret.Secret(l.BindPassword),
		Base:         l.Base,
		Filter:       l.Filter,
		Labels:       map[string]ldap.LabelConfig{"groups": {Attribute: "gidNumber"}},
	}
}

func newAuth(t *testing.T, cfg ldap.Config) (*ldap.Authenticator, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	a, err := ldap.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		a.Close()
		if t.Failed() {
			t.Logf("authenticator log:\n%s", logs.String())
		}
	})
	return a, logs
}

func authenticate(a *ldap.Authenticator, account, password string) (authn.Labels, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return a.Authenticate(ctx, account, secret.Secret(password))
}

func TestTransportModes(t *testing.T) {
	l := testenv.StartSlapd(t)
	tests := []struct {
		name   string
		mutate func(*ldap.Config)
	}{
		{"ldaps with CA verification", func(*ldap.Config) {}},
		{"ldaps skip verify", func(c *ldap.Config) { c.CACertFile = ""; c.InsecureSkipVerify = true }},
		{"ldaps URL", func(c *ldap.Config) { c.Addr = l.TLSURL; c.TLS = "" }},
		{"starttls with CA verification", func(c *ldap.Config) { c.Addr = l.Addr; c.TLS = ldap.TLSStartTLS }},
		{"starttls skip verify", func(c *ldap.Config) {
			c.Addr, c.TLS, c.CACertFile, c.InsecureSkipVerify = l.URL, ldap.TLSStartTLS, "", true
		}},
		{"plain", func(c *ldap.Config) { c.Addr = l.Addr; c.TLS = ldap.TLSNone; c.CACertFile = "" }},
		{"plain URL", func(c *ldap.Config) { c.Addr = l.URL; c.TLS = ""; c.CACertFile = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := seedConfig(l)
			tc.mutate(&cfg)
			a, _ := newAuth(t, cfg)
			if err := a.Ready(context.Background()); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			got, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if diff := cmp.Diff(authn.Labels{"groups": {"6000"}}, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if _, err := authenticate(a, testenv.LDAPUserOps, "wrong"); !errors.Is(err, authn.ErrWrongPass) {
				t.Errorf("wrong password: got %v, want ErrWrongPass", err)
			}
		})
	}
}

// A certificate the client cannot verify makes the directory unavailable
// (503), named in the error, and never falls back to an unverified connection.
func TestCertificateVerificationFails(t *testing.T) {
	l := testenv.StartSlapd(t)
	for _, tc := range []struct {
		name   string
		mutate func(*ldap.Config)
	}{
		{"ldaps without the CA", func(c *ldap.Config) { c.CACertFile = "" }},
		{"starttls without the CA", func(c *ldap.Config) { c.Addr, c.TLS, c.CACertFile = l.Addr, ldap.TLSStartTLS, "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := seedConfig(l)
			tc.mutate(&cfg)
			a, logs := newAuth(t, cfg)
			err := a.Ready(context.Background())
			if !errors.Is(err, authn.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Ready: got %v, want ErrUnavailable about the certificate", err)
			}
			if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); !errors.Is(err, authn.ErrUnavailable) {
				t.Fatalf("Authenticate: got %v, want ErrUnavailable", err)
			}
			if !strings.Contains(logs.String(), "127.0.0.1") {
				t.Errorf("log does not name the server:\n%s", logs.String())
			}
		})
	}
}

func TestOutcomes(t *testing.T) {
	l := testenv.StartSlapd(t)
	a, logs := newAuth(t, seedConfig(l))
	pw := l.UserPassword
	tests := []struct {
		name, account, password string
		want                    authn.Labels
		wantErr                 error
	}{
		{"ops user", testenv.LDAPUserOps, pw, authn.Labels{"groups": {"6000"}}, nil},
		{"devops user", testenv.LDAPUserDevOps, pw, authn.Labels{"groups": {"7000"}}, nil},
		{"user in no group", testenv.LDAPUserNoGroup, pw, authn.Labels{"groups": {"9999"}}, nil},
		{"non-ASCII uid", testenv.LDAPUserUnicode, pw, authn.Labels{"groups": {"6000"}}, nil},
		{"wrong password", testenv.LDAPUserOps, "password2", nil, authn.ErrWrongPass},
		{"unknown user", "nobody", pw, nil, authn.ErrNoMatch},
		{"user the filter excludes", testenv.LDAPUserNotPosix, pw, nil, authn.ErrNoMatch},
		{"empty password", testenv.LDAPUserOps, "", nil, authn.ErrNoMatch},
		{"empty account", "", pw, nil, authn.ErrNoMatch},
		{"anonymous", "", "", nil, authn.ErrNoMatch},
		{"case of the uid is the directory's business", "USERA", pw, authn.Labels{"groups": {"6000"}}, nil},
		{"two entries match", testenv.LDAPUserTwin, pw, nil, authn.ErrWrongPass},
		{"injection: star", "*", pw, nil, authn.ErrNoMatch},
		{"injection: prefix star", "user*", pw, nil, authn.ErrNoMatch},
		{"injection: close and reopen", "usera)(uid=*", pw, nil, authn.ErrNoMatch},
		{"injection: or everything", "*)(|(uid=*", pw, nil, authn.ErrNoMatch},
		{"injection: close paren", "usera)", pw, nil, authn.ErrNoMatch},
		{"injection: NUL byte", "usera\x00", pw, nil, authn.ErrNoMatch},
		{"injection: NUL then filter", "usera\x00)(uid=*", pw, nil, authn.ErrNoMatch},
		{"injection: escaped NUL", `usera\00`, pw, nil, authn.ErrNoMatch},
		{"injection: backslash hex", `\75sera`, pw, nil, authn.ErrNoMatch},
		{"very long account", strings.Repeat("a", 4096), pw, nil, authn.ErrNoMatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := authenticate(a, tc.account, tc.password)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
	if !strings.Contains(logs.String(), "more than one entry") || !strings.Contains(logs.String(), "uid=twin") {
		t.Errorf("no error log naming the ambiguous filter:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), pw) || strings.Contains(logs.String(), l.BindPassword) {
		t.Errorf("a password reached the log:\n%s", logs.String())
	}
}

func TestGroupLabels(t *testing.T) {
	l := testenv.StartSlapd(t)
	tests := []struct {
		name    string
		labels  map[string]ldap.LabelConfig
		groups  *ldap.GroupSearch
		account string
		want    authn.Labels
	}{
		{
			name:    "memberOf with parse_cn",
			labels:  map[string]ldap.LabelConfig{"groups": {Attribute: "memberOf", ParseCN: true}},
			account: testenv.LDAPUserOps,
			want:    authn.Labels{"groups": {"ops"}},
		},
		{
			name:    "attribute name in another case, lower_case",
			labels:  map[string]ldap.LabelConfig{"groups": {Attribute: "MEMBEROF", LowerCase: true}},
			account: testenv.LDAPUserDevOps,
			want:    authn.Labels{"groups": {"cn=devops,ou=groups,o=company1.com,dc=domain,dc=com"}},
		},
		{
			name: "several labels",
			labels: map[string]ldap.LabelConfig{
				"gid":  {Attribute: "gidNumber"},
				"mail": {Attribute: "mail"},
			},
			account: testenv.LDAPUserDevOps,
			want:    authn.Labels{"gid": {"7000"}, "mail": {"userb@company1.com"}},
		},
		{
			name:    "no memberOf: no label",
			labels:  map[string]ldap.LabelConfig{"groups": {Attribute: "memberOf", ParseCN: true}},
			account: testenv.LDAPUserNoGroup,
			want:    authn.Labels{},
		},
		{
			name:    "posixGroup search by memberUid",
			groups:  &ldap.GroupSearch{Base: l.PosixGroupsBase, Filter: "(&(objectClass=posixGroup)(memberUid=${account}))"},
			account: testenv.LDAPUserOps,
			want:    authn.Labels{"groups": {"ops"}},
		},
		{
			name:    "groupOfNames search by member DN",
			groups:  &ldap.GroupSearch{Base: l.GroupsBase, Filter: "(&(objectClass=groupOfNames)(member=${dn}))", Label: "teams"},
			account: testenv.LDAPUserDevOps,
			want:    authn.Labels{"teams": {"devops"}},
		},
		{
			name:    "group search for a non-ASCII user",
			groups:  &ldap.GroupSearch{Base: l.GroupsBase, Filter: "(member=${dn})"},
			account: testenv.LDAPUserUnicode,
			want:    authn.Labels{"groups": {"ops"}},
		},
		{
			name:    "group search adds to an attribute label",
			labels:  map[string]ldap.LabelConfig{"groups": {Attribute: "gidNumber"}},
			groups:  &ldap.GroupSearch{Base: l.Base, Filter: "(|(memberUid=${account})(member=${dn}))"},
			account: testenv.LDAPUserOps,
			want:    authn.Labels{"groups": {"6000", "ops"}},
		},
		{
			name:    "group search finds nothing",
			groups:  &ldap.GroupSearch{Base: l.PosixGroupsBase, Filter: "(memberUid=${account})"},
			account: testenv.LDAPUserNoGroup,
			want:    authn.Labels{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := seedConfig(l)
			cfg.Labels = tc.labels
			cfg.GroupSearch = tc.groups
			a, _ := newAuth(t, cfg)
			got, err := authenticate(a, tc.account, l.UserPassword)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			// A wrong password never reaches the group search.
			if _, err := authenticate(a, tc.account, "wrong"); !errors.Is(err, authn.ErrWrongPass) {
				t.Errorf("wrong password: got %v", err)
			}
		})
	}
}

func TestInitialBindAsUser(t *testing.T) {
	l := testenv.StartSlapd(t)
	cfg := seedConfig(l)
	cfg.InitialBindAsUser = true
	cfg.BindDN = "uid=${account},ou=people," + l.Base
	cfg.BindPassword = ""
	a, _ := newAuth(t, cfg)
	if err := a.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	tests := []struct {
		name, account, password string
		want                    authn.Labels
		wantErr                 error
	}{
		{"ops user", testenv.LDAPUserOps, l.UserPassword, authn.Labels{"groups": {"6000"}}, nil},
		{"devops user right after", testenv.LDAPUserDevOps, l.UserPassword, authn.Labels{"groups": {"7000"}}, nil},
		{"wrong password", testenv.LDAPUserOps, "nope", nil, authn.ErrWrongPass},
		{"unknown user", "nobody", l.UserPassword, nil, authn.ErrWrongPass},
		{"DN injection", "usera,ou=people", l.UserPassword, nil, authn.ErrWrongPass},
		{"bound but not found by the filter", testenv.LDAPUserNotPosix, l.UserPassword, nil, authn.ErrNoMatch},
		{"empty password", testenv.LDAPUserOps, "", nil, authn.ErrNoMatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := authenticate(a, tc.account, tc.password)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadServiceAccount(t *testing.T) {
	l := testenv.StartSlapd(t)
	for _, tc := range []struct {
		name, dn, password string
	}{
		{"wrong password", l.BindDN, "not-the-proxy-password"},
		{"unknown DN", "cn=nobody,ou=profile,dc=domain,dc=com", "whatever-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := seedConfig(l)
			cfg.BindDN = tc.dn
			cfg.BindPassword = secret.Secret(tc.password)
			a, err := ldap.New(context.Background(), cfg, nil)
			if err == nil {
				a.Close()
				t.Fatal("New accepted a service account the directory refuses")
			}
			if !strings.Contains(err.Error(), tc.dn) {
				t.Errorf("error does not name the bind DN %q: %v", tc.dn, err)
			}
			if strings.Contains(err.Error(), tc.password) {
				t.Errorf("error contains the password: %v", err)
			}
			if errors.Is(err, authn.ErrUnavailable) {
				t.Errorf("bad credentials reported as unavailable: %v", err)
			}
		})
	}
}

// The directory goes away and comes back: requests fail fast with
// ErrUnavailable meanwhile, and the same Authenticator recovers.
func TestOutageAndRecovery(t *testing.T) {
	l := testenv.StartSlapd(t)
	cfg := seedConfig(l)
	cfg.DialTimeout = 2 * time.Second
	cfg.RequestTimeout = 2 * time.Second
	a, logs := newAuth(t, cfg)
	// Warm the pools.
	for range 3 {
		if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); err != nil {
			t.Fatalf("before the outage: %v", err)
		}
	}

	l.Stop()
	for i := range 3 {
		start := time.Now()
		_, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword)
		elapsed := time.Since(start)
		if !errors.Is(err, authn.ErrUnavailable) {
			t.Fatalf("request %d during the outage: got %v, want ErrUnavailable", i, err)
		}
		if elapsed > cfg.DialTimeout {
			t.Errorf("request %d during the outage took %s, more than the dial timeout", i, elapsed)
		}
	}
	if err := a.Ready(context.Background()); !errors.Is(err, authn.ErrUnavailable) {
		t.Errorf("Ready during the outage: got %v, want ErrUnavailable", err)
	}
	if !strings.Contains(logs.String(), "server=ldaps://"+l.TLSAddr) || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("no log line naming the server and the reason:\n%s", logs.String())
	}

	l.Restart()
	if err := a.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after the restart: %v", err)
	}
	got, err := authenticate(a, testenv.LDAPUserDevOps, l.UserPassword)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if diff := cmp.Diff(authn.Labels{"groups": {"7000"}}, got); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	// A restart while connections sit in the pool: the stale ones are
	// replaced without the client noticing.
	for range 3 {
		if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); err != nil {
			t.Fatal(err)
		}
	}
	l.Restart()
	if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); err != nil {
		t.Fatalf("first request after a quick restart: %v", err)
	}
}

// A hung directory (SIGSTOP) makes requests fail within the configured
// timeouts, not hang; it recovers once the directory answers again.
func TestSlowDirectory(t *testing.T) {
	l := testenv.StartSlapd(t)
	cfg := seedConfig(l)
	cfg.DialTimeout = time.Second
	cfg.RequestTimeout = 1500 * time.Millisecond
	a, logs := newAuth(t, cfg)
	if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); err != nil {
		t.Fatal(err)
	}

	l.Pause()
	start := time.Now()
	_, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword)
	elapsed := time.Since(start)
	if !errors.Is(err, authn.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if elapsed < cfg.RequestTimeout-100*time.Millisecond || elapsed > cfg.RequestTimeout+2*time.Second {
		t.Errorf("a request to the pooled connection failed after %s, want about the request timeout %s", elapsed, cfg.RequestTimeout)
	}
	// Nothing pooled now: a new connection waits for the TLS handshake,
	// bounded by the dial timeout.
	start = time.Now()
	err = a.Ready(context.Background())
	elapsed = time.Since(start)
	if !errors.Is(err, authn.ErrUnavailable) {
		t.Fatalf("Ready: got %v, want ErrUnavailable", err)
	}
	if elapsed > cfg.DialTimeout+2*time.Second {
		t.Errorf("Ready took %s, more than the dial timeout %s", elapsed, cfg.DialTimeout)
	}
	// The caller's deadline holds too.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start = time.Now()
	_, err = a.Authenticate(ctx, testenv.LDAPUserOps, secret.Secret(l.UserPassword))
	cancel()
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("a 300ms context deadline returned after %s", elapsed)
	}
	if !errors.Is(err, authn.ErrUnavailable) {
		t.Errorf("context deadline: got %v, want ErrUnavailable", err)
	}
	if !strings.Contains(logs.String(), "timed out") {
		t.Errorf("no log line saying the directory timed out:\n%s", logs.String())
	}

	l.Resume()
	if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); err != nil {
		t.Fatalf("after resuming: %v", err)
	}
}

// Many concurrent logins share the pools and all get their own answer.
func TestConcurrent(t *testing.T) {
	l := testenv.StartSlapd(t)
	cfg := seedConfig(l)
	cfg.PoolSize = 3
	a, _ := newAuth(t, cfg)
	users := map[string]string{testenv.LDAPUserOps: "6000", testenv.LDAPUserDevOps: "7000", testenv.LDAPUserNoGroup: "9999"}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 8 {
		wg.Go(func() {
			for j := range 25 {
				for user, gid := range users {
					pw := l.UserPassword
					if (i+j)%5 == 0 {
						pw = "wrong"
					}
					got, err := authenticate(a, user, pw)
					switch {
					case pw == "wrong" && !errors.Is(err, authn.ErrWrongPass):
						errs <- errors.New(user + " with a wrong password: " + errString(err))
					case pw != "wrong" && err != nil:
						errs <- errors.New(user + ": " + err.Error())
					case pw != "wrong" && !cmp.Equal(got, authn.Labels{"groups": {gid}}):
						errs <- errors.New(user + ": wrong labels " + cmp.Diff(authn.Labels{"groups": {gid}}, got))
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// slapdConns reads slapd's stats log and returns, per connection, the
// DNs it bound as and whether it searched.
func slapdConns(log string) map[string]*connUse {
	conns := map[string]*connUse{}
	for _, line := range strings.Split(log, "\n") {
		_, rest, ok := strings.Cut(line, " conn=")
		if !ok {
			continue
		}
		id, rest, _ := strings.Cut(rest, " ")
		u := conns[id]
		if u == nil {
			u = &connUse{}
			conns[id] = u
		}
		switch {
		case strings.Contains(rest, " BIND dn=\"") && strings.Contains(rest, "method=128"):
			_, dn, _ := strings.Cut(rest, "dn=\"")
			dn, _, _ = strings.Cut(dn, "\"")
			u.binds = append(u.binds, dn)
		case strings.Contains(rest, " SRCH base="):
			u.searches++
		}
	}
	return conns
}

type connUse struct {
	binds    []string
	searches int
}

// Connections that search are bound as the service account only, user
// binds happen on other connections, and connections are reused.
func TestServiceConnectionsStayService(t *testing.T) {
	l := testenv.StartSlapd(t)
	cfg := seedConfig(l)
	cfg.PoolSize = 2
	cfg.GroupSearch = &ldap.GroupSearch{Base: l.GroupsBase, Filter: "(member=${dn})"}
	a, _ := newAuth(t, cfg)
	const logins = 40
	for i := range logins {
		pw := l.UserPassword
		if i%3 == 0 {
			pw = "wrong"
		}
		for _, u := range []string{testenv.LDAPUserOps, testenv.LDAPUserDevOps} {
			_, err := authenticate(a, u, pw)
			if (pw == "wrong") != errors.Is(err, authn.ErrWrongPass) || (pw != "wrong" && err != nil) {
				t.Fatalf("%s: %v", u, err)
			}
		}
	}
	// Nothing is cached, so every login bound as its user once; wait until
	// slapd's log shows all of those binds.
	testenv.Eventually(t, 10*time.Second, "slapd to log every user bind", func() bool {
		binds := 0
		for _, u := range slapdConns(l.Log()) {
			for _, dn := range u.binds {
				if dn != l.BindDN && dn != l.AdminDN {
					binds++
				}
			}
		}
		return binds >= 2*logins
	})
	var searchConns, bindConns int
	for id, u := range slapdConns(l.Log()) {
		if len(u.binds) == 0 {
			continue
		}
		if u.searches > 0 {
			searchConns++
			for _, dn := range u.binds {
				if dn != l.BindDN {
					t.Errorf("conn=%s searched and was also bound as %q", id, dn)
				}
			}
		} else if u.binds[0] != l.AdminDN {
			bindConns++
		}
	}
	t.Logf("%d searching connections, %d user-bind connections", searchConns, bindConns)
	// Pooling: a handful of connections served 80 logins.
	if searchConns == 0 || searchConns > cfg.PoolSize+1 {
		t.Errorf("%d connections searched, want 1..%d", searchConns, cfg.PoolSize+1)
	}
	if bindConns == 0 || bindConns > cfg.PoolSize+1 {
		t.Errorf("%d connections bound users, want 1..%d", bindConns, cfg.PoolSize+1)
	}
}

func TestReload(t *testing.T) {
	l := testenv.StartSlapd(t)
	cfg := seedConfig(l)
	dir := t.TempDir()
	caFile := dir + "/ca.pem"
	ca, err := os.ReadFile(l.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CACertFile = caFile
	a, _ := newAuth(t, cfg)
	if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); err != nil {
		t.Fatal(err)
	}
	// A broken CA file is refused and the old one stays in use.
	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "ca_certificate") {
		t.Errorf("Reload with a broken CA file: %v", err)
	}
	if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); err != nil {
		t.Errorf("after a refused reload: %v", err)
	}
	// A CA that did not sign the server's certificate takes effect on reload.
	other := testenv.StartSlapd(t)
	otherCA, err := os.ReadFile(other.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, otherCA, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if _, err := authenticate(a, testenv.LDAPUserOps, l.UserPassword); !errors.Is(err, authn.ErrUnavailable) {
		t.Errorf("with a CA that does not match: got %v, want ErrUnavailable", err)
	}
}

func TestLookup(t *testing.T) {
	l := testenv.StartSlapd(t)
	cfg := seedConfig(l)
	cfg.GroupSearch = &ldap.GroupSearch{Base: l.PosixGroupsBase, Filter: "(memberUid=${account})", Label: "teams"}
	a, _ := newAuth(t, cfg)
	tests := []struct {
		name, account string
		want          authn.Labels
		wantErr       error
	}{
		{"ops", testenv.LDAPUserOps, authn.Labels{"groups": {"6000"}, "teams": {"ops"}}, nil},
		{"no group", testenv.LDAPUserNoGroup, authn.Labels{"groups": {"9999"}}, nil},
		{"gone", "nobody", nil, authn.ErrNoMatch},
		{"not matched by the filter", testenv.LDAPUserNotPosix, nil, authn.ErrNoMatch},
		{"injection", "*", nil, authn.ErrNoMatch},
		{"empty", "", nil, authn.ErrNoMatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Lookup(context.Background(), tc.account)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := a.Lookup(context.Background(), testenv.LDAPUserTwin); err == nil || errors.Is(err, authn.ErrNoMatch) {
		t.Errorf("ambiguous account: got %v, want an error other than ErrNoMatch", err)
	}
	l.Stop()
	if _, err := a.Lookup(context.Background(), testenv.LDAPUserOps); !errors.Is(err, authn.ErrUnavailable) {
		t.Errorf("directory down: got %v, want ErrUnavailable", err)
	}
}
