package authserver

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/authn/ldap"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
)

func TestLDAPConfig(t *testing.T) {
	in := &authconfig.LDAPAuth{
		Addr:                  "ldaps://dc1.corp.example",
		TLS:                   "always",
		InsecureTLSSkipVerify: true,
		CACertificate:         "ca.pem",
		BindDN:                "cn=proxy,dc=x",
		BindPassword:          "pw",
		InitialBindAsUser:     false,
		Base:                  "dc=x",
		Filter:                "(uid=${account})",
		Labels:                map[string]authconfig.LDAPLabel{"groups": {Attribute: "memberOf", ParseCN: true, LowerCase: true}},
		GroupSearch:           &authconfig.GroupSearch{Base: "ou=g,dc=x", Filter: "(member=${dn})", Label: "teams"},
		DialTimeout:           time.Second,
		RequestTimeout:        2 * time.Second,
		PoolSize:              7,
	}
	want := ldap.Config{
		Addr: "ldaps://dc1.corp.example", TLS: "always", InsecureSkipVerify: true, CACertFile: "ca.pem",
		BindDN: "cn=proxy,dc=x", BindPassword: "pw", Base: "dc=x", Filter: "(uid=${account})",
		Labels:      map[string]ldap.LabelConfig{"groups": {Attribute: "memberOf", ParseCN: true, LowerCase: true}},
		GroupSearch: &ldap.GroupSearch{Base: "ou=g,dc=x", Filter: "(member=${dn})", Label: "teams"},
		DialTimeout: time.Second, RequestTimeout: 2 * time.Second, PoolSize: 7,
	}
	if diff := cmp.Diff(want, ldapConfig(in)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := ldapConfig(&authconfig.LDAPAuth{}); got.Labels != nil || got.GroupSearch != nil {
		t.Errorf("empty section: %+v", got)
	}
}
