package ldap

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

func TestExtractLabels(t *testing.T) {
	entry := goldap.NewEntry("uid=usera,ou=people,dc=x", map[string][]string{
		"gidNumber": {"6000"},
		"memberOf":  {"CN=Ops,OU=Groups,DC=x", "not a dn", "ou=nocn,dc=x", "cn=Dev\\, Team,dc=x", "CN=Ops,OU=Other,DC=x"},
		"mail":      {"UserA@Example.com"},
	})
	tests := []struct {
		name     string
		cfg      map[string]LabelConfig
		want     authn.Labels
		wantWarn int
	}{
		{"gidNumber", map[string]LabelConfig{"groups": {Attribute: "gidNumber"}}, authn.Labels{"groups": {"6000"}}, 0},
		{"attribute name in another case", map[string]LabelConfig{"groups": {Attribute: "GIDNUMBER"}}, authn.Labels{"groups": {"6000"}}, 0},
		{"parse_cn skips what is not a DN with a CN, dedupes", map[string]LabelConfig{"groups": {Attribute: "memberof", ParseCN: true}},
			authn.Labels{"groups": {"Ops", "Dev, Team"}}, 2},
		{"parse_cn and lower_case", map[string]LabelConfig{"groups": {Attribute: "memberOf", ParseCN: true, LowerCase: true}},
			authn.Labels{"groups": {"ops", "dev, team"}}, 2},
		{"lower_case only", map[string]LabelConfig{"mail": {Attribute: "mail", LowerCase: true}}, authn.Labels{"mail": {"usera@example.com"}}, 0},
		{"missing attribute gives no label", map[string]LabelConfig{"title": {Attribute: "title"}}, authn.Labels{}, 0},
		{"two labels from one attribute", map[string]LabelConfig{"a": {Attribute: "gidNumber"}, "b": {Attribute: "gidNumber"}},
			authn.Labels{"a": {"6000"}, "b": {"6000"}}, 0},
		{"no labels", nil, authn.Labels{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			got := extractLabels(slog.New(slog.NewTextHandler(&logs, nil)), tc.cfg, entry)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != tc.wantWarn {
				t.Errorf("%d warnings, want %d:\n%s", n, tc.wantWarn, logs.String())
			}
		})
	}
}

func TestLabelAttributes(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]LabelConfig
		want []string
	}{
		{"none asks for no attributes", nil, []string{"1.1"}},
		{"deduplicated case-insensitively, sorted", map[string]LabelConfig{
			"a": {Attribute: "memberOf"}, "b": {Attribute: "memberof"}, "c": {Attribute: "gidNumber"},
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := labelAttributes(tc.cfg)
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				return
			}
			if len(got) != 2 || got[0] != "gidNumber" || !strings.EqualFold(got[1], "memberOf") {
				t.Errorf("got %v, want [gidNumber memberOf]", got)
			}
		})
	}
}

func TestGroupNames(t *testing.T) {
	entries := []*goldap.Entry{
		goldap.NewEntry("cn=ops,ou=groups,dc=x", map[string][]string{"cn": {"ops"}}),
		goldap.NewEntry("cn=fromdn,ou=groups,dc=x", nil),
		goldap.NewEntry("ou=nocn,dc=x", nil),
		goldap.NewEntry("cn=x,dc=y", map[string][]string{"CN": {"Upper"}}),
	}
	var logs bytes.Buffer
	got := groupNames(slog.New(slog.NewTextHandler(&logs, nil)), entries)
	if diff := cmp.Diff([]string{"ops", "fromdn", "Upper"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "ou=nocn") {
		t.Errorf("no warning for the group without a cn:\n%s", logs.String())
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestAuthenticateWithoutDirectory(t *testing.T) {
	cfg := validConfig()
	cfg.Addr = closedPort(t)
	cfg.DialTimeout = time.Second
	var logs bytes.Buffer
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New must not fail when the directory is down: %v", err)
	}
	defer a.Close()
	if a.Name() != "ldap" {
		t.Errorf("Name() = %q", a.Name())
	}
	if !strings.Contains(logs.String(), cfg.Addr) {
		t.Errorf("startup log does not name the server:\n%s", logs.String())
	}

	// Refused before any network traffic.
	for _, tc := range []struct{ account, password string }{{"", ""}, {"usera", ""}, {"", "pw"}, {strings.Repeat("x", maxAccountLen+1), "pw"}} {
		if _, err := a.Authenticate(context.Background(), tc.account, secret.Secret(tc.password)); !errors.Is(err, authn.ErrNoMatch) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrNoMatch", tc.account, tc.password, err)
		}
	}

	start := time.Now()
	_, err = a.Authenticate(context.Background(), "usera", "pw")
	if !errors.Is(err, authn.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("a refused connection took %s", time.Since(start))
	}
	if !strings.Contains(err.Error(), cfg.Addr) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error does not say which server and why: %v", err)
	}
	if err := a.Ready(context.Background()); !errors.Is(err, authn.ErrUnavailable) {
		t.Errorf("Ready: %v, want ErrUnavailable", err)
	}

	a.Close()
	if _, err := a.Authenticate(context.Background(), "usera", "pw"); err == nil || errors.Is(err, authn.ErrUnavailable) {
		t.Errorf("after Close: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := validConfig()
	cfg.TLS = "tls1.2"
	if _, err := New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "ldap_auth: tls") {
		t.Errorf("got %v", err)
	}
	cfg = validConfig()
	cfg.CACertFile = t.TempDir() + "/missing.pem"
	if _, err := New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "ca_certificate") {
		t.Errorf("got %v", err)
	}
}

// A server that accepts connections and never answers: the request
// timeout bounds a search, the dial timeout bounds the TLS handshake.
func TestSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, mode := range []string{TLSNone, TLSAlways, TLSStartTLS} {
		t.Run(mode, func(t *testing.T) {
			cfg := validConfig()
			cfg.Addr, cfg.TLS = l.Addr().String(), mode
			cfg.DialTimeout, cfg.RequestTimeout = 300*time.Millisecond, 300*time.Millisecond
			start := time.Now()
			a, err := New(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			_, err = a.Authenticate(context.Background(), "usera", "pw")
			if !errors.Is(err, authn.ErrUnavailable) || !strings.Contains(err.Error(), "timed out") {
				t.Errorf("got %v, want ErrUnavailable (timed out)", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("New and Authenticate took %s with 300ms timeouts", d)
			}
		})
	}
}

func TestLookupNeedsServiceAccount(t *testing.T) {
	cfg := validConfig()
	cfg.Addr = closedPort(t)
	cfg.InitialBindAsUser, cfg.BindDN, cfg.BindPassword = true, "uid=${account},dc=x", ""
	a, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Lookup(context.Background(), "usera"); !errors.Is(err, ErrLookupUnsupported) {
		t.Errorf("got %v, want ErrLookupUnsupported", err)
	}
	if _, err := a.Lookup(context.Background(), ""); !errors.Is(err, authn.ErrNoMatch) {
		t.Errorf("empty account: got %v", err)
	}
}
