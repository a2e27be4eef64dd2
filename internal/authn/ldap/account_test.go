package ldap

import (
	"errors"
	"log/slog"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func TestAccountAttributes(t *testing.T) {
	tests := []struct {
		filter string
		want   []string
	}{
		{"(&(uid=${account})(objectClass=posixAccount))", []string{"uid"}},
		{"(sAMAccountName=${account})", []string{"sAMAccountName"}},
		{"(&(objectClass=user)(|(sAMAccountName=${account})(userPrincipalName=${account})(SAMACCOUNTNAME=${account})))",
			[]string{"sAMAccountName", "userPrincipalName"}},
		{"(0.9.2342.19200300.100.1.1=${account})", []string{"0.9.2342.19200300.100.1.1"}},
		{"(mail=${account}@example.com)", nil},
		{"(uid=*${account})", nil},
		{"(cn:dn:=${account})", nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, accountAttributes(tc.filter)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.filter, diff)
		}
	}
}

func TestAccountName(t *testing.T) {
	entry := goldap.NewEntry("uid=usera,ou=people,dc=x", map[string][]string{
		"uid":         {"usera"},
		"mail":        {"UserA@Example.com"},
		"multi":       {"first", "UserA", "second"},
		"emptyvalued": {""},
	})
	tests := []struct {
		name    string
		attrs   []string
		typed   string
		want    string
		wantErr bool
	}{
		{"uid, typed in capitals", []string{"uid"}, "USERA", "usera", false},
		{"attribute name in another case", []string{"UID"}, "UserA", "usera", false},
		{"first attribute wins", []string{"uid", "mail"}, "usera@example.com", "usera", false},
		{"multi-valued: the value equal to the typed name", []string{"multi"}, "usera", "UserA", false},
		{"multi-valued without such a value: next attribute", []string{"multi", "mail"}, "x", "UserA@Example.com", false},
		{"missing attribute", []string{"sAMAccountName"}, "usera", "", true},
		{"empty value", []string{"emptyvalued"}, "usera", "", true},
		{"no account attributes: as typed", nil, "UserA", "UserA", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &Authenticator{accountAttrs: tc.attrs, log: slog.New(slog.DiscardHandler)}
			got, err := a.accountName(entry, tc.typed)
			if tc.wantErr {
				if !errors.Is(err, errNoAccountName) {
					t.Fatalf("got %q, %v; want errNoAccountName", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestAccountAttributeConfig(t *testing.T) {
	base := Config{Addr: "ldap.example.com:636", Base: "dc=x", Filter: "(uid=${account})"}
	for attr, ok := range map[string]bool{"uid": true, "sAMAccountName": true, "2.5.4.3": true, "uid;x-opt": true, "(uid)": false, "u id": false, "1uid": false} {
		cfg := base
		cfg.AccountAttribute = attr
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("account attribute %q: err %v, want ok=%v", attr, err, ok)
		}
	}
}

func TestSearchAttributes(t *testing.T) {
	got := searchAttributes(map[string]LabelConfig{"groups": {Attribute: "gidNumber"}}, []string{"uid", "GIDNUMBER"})
	if diff := cmp.Diff([]string{"gidNumber", "uid"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1.1"}, searchAttributes(nil, nil)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
