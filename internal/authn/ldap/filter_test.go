package ldap

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestBuildFilter(t *testing.T) {
	const tmpl = "(&(uid=${account})(objectClass=posixAccount))"
	tests := []struct {
		name, template, account, dn, want string
	}{
		{"plain", tmpl, "usera", "", "(&(uid=usera)(objectClass=posixAccount))"},
		{"star", tmpl, "*", "", `(&(uid=\2a)(objectClass=posixAccount))`},
		{"parentheses", tmpl, "a)(uid=*", "", `(&(uid=a\29\28uid=\2a)(objectClass=posixAccount))`},
		{"NUL", tmpl, "usera\x00", "", `(&(uid=usera\00)(objectClass=posixAccount))`},
		{"backslash", tmpl, `a\2a`, "", `(&(uid=a\5c2a)(objectClass=posixAccount))`},
		{"UTF-8 as escaped octets", "(uid=${account})", "jürgen", "", `(uid=j\c3\bcrgen)`},
		{"dn and account", "(|(memberUid=${account})(member=${dn}))", "a*", "uid=a*,dc=x",
			`(|(memberUid=a\2a)(member=uid=a\2a,dc=x))`},
		{"account holding a placeholder is not expanded again", "(&(uid=${account})(member=${dn}))", "${dn}", "cn=x",
			"(&(uid=${dn})(member=cn=x))"},
		{"several occurrences", "(|(uid=${account})(mail=${account}))", "b", "", "(|(uid=b)(mail=b))"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildFilter(tc.template, tc.account, tc.dn); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBuildBindDN(t *testing.T) {
	tests := []struct{ account, want string }{
		{"usera", "uid=usera,ou=people,dc=x"},
		{"a,ou=admins", `uid=a\,ou=admins,ou=people,dc=x`},
		{"a+cn=b", `uid=a\+cn=b,ou=people,dc=x`},
		{"nul\x00", `uid=nul\00,ou=people,dc=x`},
		{" lead", `uid=\ lead,ou=people,dc=x`},
	}
	for _, tc := range tests {
		t.Run(tc.account, func(t *testing.T) {
			got := buildBindDN("uid=${account},ou=people,dc=x", tc.account)
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			dn, err := goldap.ParseDN(got)
			if err != nil {
				t.Fatalf("escaped DN does not parse: %v", err)
			}
			if n := len(dn.RDNs); n != 3 {
				t.Errorf("the account changed the DN's structure: %d RDNs", n)
			}
		})
	}
}

func TestFirstCN(t *testing.T) {
	tests := []struct {
		name, dn, want string
		wantErr        bool
	}{
		{"memberOf", "cn=ops,ou=groups,o=company1.com,dc=domain,dc=com", "ops", false},
		{"AD upper case", "CN=Domain Admins,CN=Users,DC=corp,DC=example", "Domain Admins", false},
		{"first CN from the left", "cn=inner,cn=outer,dc=x", "inner", false},
		{"CN not in the first RDN", "uid=a,cn=team,dc=x", "team", false},
		{"escaped comma", `CN=Smith\, John,OU=People,DC=x`, "Smith, John", false},
		{"multi-valued RDN", "ou=x+cn=both,dc=x", "both", false},
		{"hex value", "cn=#04024869,dc=x", "Hi", false},
		{"OID", "2.5.4.3=oidcn,dc=x", "oidcn", false},
		{"spaces around", " cn = spaced , dc=x", "spaced", false},
		{"no CN", "ou=groups,dc=x", "", true},
		{"empty", "", "", true},
		{"not a DN", "ops", "", true},
		{"malformed", "cn=ops,,dc=x=", "", true},
		{"unterminated escape", `cn=ops\`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := firstCN(tc.dn)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := firstCN("ou=x,dc=y"); !errors.Is(err, errNoCN) {
		t.Errorf("no CN: got %v, want errNoCN", err)
	}
}

func TestCheckFilter(t *testing.T) {
	for _, f := range []string{"(uid=${account})", "(&(uid=${account})(objectClass=posixAccount))", "(member=${dn})",
		"(sAMAccountName=${account})", "(&(objectCategory=person)(objectClass=user)(sAMAccountName=${account}))"} {
		if err := checkFilter(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"uid=${account}", "(uid=${account}", "(uid=${account}))", "(&(uid=${account})(", "()"} {
		if err := checkFilter(f); err == nil {
			t.Errorf("%s: accepted", f)
		}
	}
}

// equalityValue compiles filter and returns the assertion value of its
// single equality match, failing if the filter is anything else.
func equalityValue(t *testing.T, filter string) string {
	t.Helper()
	p, err := goldap.CompileFilter(filter)
	if err != nil {
		t.Fatalf("%q does not compile: %v", filter, err)
	}
	if p.Tag != goldap.FilterEqualityMatch || len(p.Children) != 2 {
		t.Fatalf("%q compiled to tag %d with %d children, want one equality match", filter, p.Tag, len(p.Children))
	}
	return p.Children[1].Data.String()
}

// FuzzBuildFilter checks that no account can change a filter's structure:
// (uid=${account}) always compiles to one equality match whose value is
// exactly the account.
func FuzzBuildFilter(f *testing.F) {
	for _, s := range []string{"usera", "*", "a)(uid=*", "*)(|(uid=*", "usera\x00", `\00`, `\2a`, "jürgen", "${dn}", "(", ")", "\xff", "a\\", "&(|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, account string) {
		filter := buildFilter("(uid=${account})", account, "cn=x")
		if got := equalityValue(t, filter); got != account {
			t.Errorf("account %q came back as %q from %q", account, got, filter)
		}
	})
}

// FuzzFirstCN checks that parse_cn never panics and that what it returns
// came from the input.
func FuzzFirstCN(f *testing.F) {
	for _, s := range []string{"cn=ops,ou=groups,dc=x", "CN=Smith\\, John,DC=x", "", "=", ",", "cn=#0", "cn=\\", "ou=a+cn=b", "cn=#04024869", "cn= a ,dc=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		cn, err := firstCN(dn)
		if err != nil {
			if cn != "" {
				t.Errorf("error %v with value %q", err, cn)
			}
			return
		}
		if utf8.ValidString(dn) && !strings.Contains(dn, "#") && !strings.Contains(dn, `\`) && !strings.Contains(dn, cn) {
			t.Errorf("CN %q does not appear in %q", cn, dn)
		}
	})
}
