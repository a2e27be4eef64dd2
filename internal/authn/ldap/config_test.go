package ldap

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		name, addr, tls string
		want            endpoint
		wantErr         string
	}{
		{"host:port plain by default", "ldap.example.com:389", "", endpoint{"ldap.example.com:389", "ldap.example.com", TLSNone}, ""},
		{"port 636 means ldaps (docker_auth)", "ldap.example.com:636", "", endpoint{"ldap.example.com:636", "ldap.example.com", TLSAlways}, ""},
		{"seed: tls always on 1636", "10.10.122.250:1636", "always", endpoint{"10.10.122.250:1636", "10.10.122.250", TLSAlways}, ""},
		{"starttls", "ldap.example.com:389", "starttls", endpoint{"ldap.example.com:389", "ldap.example.com", TLSStartTLS}, ""},
		{"ldaps URL default port", "ldaps://dc1.corp.example", "", endpoint{"dc1.corp.example:636", "dc1.corp.example", TLSAlways}, ""},
		{"ldap URL default port", "ldap://dc1.corp.example", "", endpoint{"dc1.corp.example:389", "dc1.corp.example", TLSNone}, ""},
		{"ldap URL with starttls", "ldap://dc1:3389/", "starttls", endpoint{"dc1:3389", "dc1", TLSStartTLS}, ""},
		{"ldaps URL with tls always", "LDAPS://dc1:3636", "always", endpoint{"dc1:3636", "dc1", TLSAlways}, ""},
		{"IPv6 literal", "[::1]:636", "", endpoint{"[::1]:636", "::1", TLSAlways}, ""},
		{"IPv6 URL", "ldaps://[::1]", "", endpoint{"[::1]:636", "::1", TLSAlways}, ""},
		{"ldaps URL conflicts with starttls", "ldaps://dc1", "starttls", endpoint{}, "conflicts"},
		{"ldaps URL conflicts with none", "ldaps://dc1", "none", endpoint{}, "conflicts"},
		{"ldap URL conflicts with always", "ldap://dc1", "always", endpoint{}, "conflicts"},
		{"unknown tls mode", "dc1:389", "ssl", endpoint{}, `unknown mode "ssl"`},
		{"tls mode is case-sensitive like docker_auth", "dc1:389", "Always", endpoint{}, "unknown mode"},
		{"empty", "", "", endpoint{}, "missing"},
		{"no port", "dc1", "", endpoint{}, "not host:port"},
		{"bad port", "dc1:ldap", "", endpoint{}, "invalid port"},
		{"port out of range", "dc1:70000", "", endpoint{}, "invalid port"},
		{"no host", ":389", "", endpoint{}, "no host"},
		{"other scheme", "http://dc1:389", "", endpoint{}, "not supported"},
		{"ldapi", "ldapi:///var/run/slapd/ldapi", "", endpoint{}, "not supported"},
		{"URL with a DN", "ldap://dc1/dc=example,dc=com", "", endpoint{}, "only scheme://host"},
		{"URL with credentials", "ldap://user:pw@dc1", "", endpoint{}, "only scheme://host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAddr(tc.addr, tc.tls)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(endpoint{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func validConfig() Config {
	return Config{
		Addr:         "ldap.example.com:1636",
		TLS:          TLSAlways,
		BindDN:       "cn=proxy,ou=profile,dc=domain,dc=com",
		BindPassword: "proxypw",
		Base:         "o=company1.com,dc=domain,dc=com",
		Filter:       "(&(uid=${account})(objectClass=posixAccount))",
		Labels:       map[string]LabelConfig{"groups": {Attribute: "gidNumber"}},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr []string // substrings; all must appear
	}{
		{"valid", func(*Config) {}, nil},
		{"anonymous search", func(c *Config) { c.BindDN, c.BindPassword = "", "" }, nil},
		{"initial bind as user", func(c *Config) {
			c.InitialBindAsUser, c.BindDN, c.BindPassword = true, "uid=${account},ou=people,dc=domain,dc=com", ""
		}, nil},
		{"AD UPN template", func(c *Config) { c.InitialBindAsUser, c.BindDN, c.BindPassword = true, "${account}@corp.example", "" }, nil},
		{"group search", func(c *Config) {
			c.GroupSearch = &GroupSearch{Base: "ou=groups,dc=domain,dc=com", Filter: "(member=${dn})"}
		}, nil},
		{"missing everything", func(c *Config) { *c = Config{} }, []string{"addr: missing", "base: missing", "filter: missing"}},
		{"unknown tls", func(c *Config) { c.TLS = "yes" }, []string{`tls: unknown mode "yes"`}},
		{"filter without account", func(c *Config) { c.Filter = "(objectClass=posixAccount)" }, []string{"does not contain ${account}"}},
		{"filter not a filter", func(c *Config) { c.Filter = "uid=${account}" }, []string{"parentheses"}},
		{"filter unbalanced", func(c *Config) { c.Filter = "(&(uid=${account})" }, []string{"not a valid LDAP filter"}},
		{"bad base", func(c *Config) { c.Base = "not a dn" }, []string{"base:", "not a valid DN"}},
		{"bind DN without password", func(c *Config) { c.BindPassword = "" }, []string{"unauthenticated bind", "cn=proxy"}},
		{"password without bind DN", func(c *Config) { c.BindDN = "" }, []string{"bind_dn: missing"}},
		{"initial bind without placeholder", func(c *Config) { c.InitialBindAsUser = true; c.BindPassword = "" }, []string{"must contain ${account}"}},
		{"initial bind with a password", func(c *Config) {
			c.InitialBindAsUser, c.BindDN = true, "uid=${account},dc=domain,dc=com"
		}, []string{"not used with initial_bind_as_user"}},
		{"label without attribute", func(c *Config) { c.Labels = map[string]LabelConfig{"groups": {}} }, []string{"labels.groups.attribute: missing"}},
		{"group search incomplete", func(c *Config) { c.GroupSearch = &GroupSearch{} }, []string{"group_search.base: missing", "group_search.filter: missing"}},
		{"group search bad filter", func(c *Config) { c.GroupSearch = &GroupSearch{Base: "dc=x", Filter: "(member=${dn}"} }, []string{"group_search.filter"}},
		{"negative timeout", func(c *Config) { c.RequestTimeout = -time.Second }, []string{"must not be negative"}},
		{"pool too large", func(c *Config) { c.PoolSize = MaxPoolSize + 1 }, []string{"pool_size: 257 is more than 256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.mutate(&cfg)
			_, _, err := cfg.validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), cfg.BindPassword.Reveal()) && !cfg.BindPassword.IsEmpty() {
				t.Errorf("error reveals the bind password: %v", err)
			}
		})
	}
}

func TestValidateDefaults(t *testing.T) {
	cfg := validConfig()
	cfg.GroupSearch = &GroupSearch{Base: "ou=groups,dc=domain,dc=com", Filter: "(member=${dn})"}
	got, _, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	want := struct {
		Dial, Request time.Duration
		Pool          int
		Label         string
	}{DefaultDialTimeout, DefaultRequestTimeout, DefaultPoolSize, DefaultGroupLabel}
	gotD := struct {
		Dial, Request time.Duration
		Pool          int
		Label         string
	}{got.DialTimeout, got.RequestTimeout, got.PoolSize, got.GroupSearch.Label}
	if diff := cmp.Diff(want, gotD); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if cfg.GroupSearch.Label != "" {
		t.Error("validate changed the caller's GroupSearch")
	}
}

func TestSecretNotInConfigErrors(t *testing.T) {
	cfg := validConfig()
	cfg.BindPassword = secret.Secret("s3cr3t-value")
	cfg.Base = ""
	_, _, err := cfg.validate()
	if err == nil || strings.Contains(err.Error(), "s3cr3t-value") {
		t.Fatalf("got %v", err)
	}
}
