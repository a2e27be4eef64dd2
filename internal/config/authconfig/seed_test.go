package authconfig

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/config"
)

// The seed's auth_config.yml (testdata/seed_auth_config.yml) is the file an
// operator moving from docker_auth brings. Its one ACL rule,
// `match: {"gidNumber": "6000"}`, is an empty match to docker_auth and
// grants everything to every user; Gatehouse must say so, and nothing else.

func readSeed(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("testdata/seed_auth_config.yml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

const seedRuleMsg = `acl.0.match: unknown key "gidNumber": docker_auth ignores it and reads this rule as an empty match, which grants actions ["*"] to every user`

func TestSeedWithStaticUsers(t *testing.T) {
	seed := readSeed(t)
	dir := t.TempDir()
	c, k := keyPEMs(t, ecKey(t), time.Now().Add(24*time.Hour))
	certPath := writeFile(t, dir, "coreos-cert.pem", c)
	keyPath := writeFile(t, dir, "coreos-key.pem", k)

	// Replace the ldap_auth section (from its key to the line before acl:)
	// by a static user, keeping the line count so the rule stays at line 29.
	start := strings.Index(seed, "ldap_auth:")
	end := strings.Index(seed, "acl:")
	if start < 0 || end < start {
		t.Fatal("the seed has no ldap_auth section before acl")
	}
	removed := strings.Count(seed[start:end], "\n")
	users := "users:\n  usera:\n    password: \"" + aliceHash + "\"\n    labels: {groups: [\"6000\"]}\n"
	users += strings.Repeat("#\n", removed-strings.Count(users, "\n"))
	file := seed[:start] + users + seed[end:]
	file = strings.ReplaceAll(file, "/ssl/coreos-cert.pem", certPath)
	file = strings.ReplaceAll(file, "/ssl/coreos-key.pem", keyPath)

	cfg, err := Parse("auth_config.yml", []byte(file))
	want := config.Problems{{
		File: "auth_config.yml", Line: 29, Column: 13,
		Msg: seedRuleMsg,
		Fix: `match: {labels: {groups: "6000"}} (users' label groups holds "6000")`,
	}}
	if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if cfg.Token.Certificate != certPath || cfg.Token.Key != keyPath {
		t.Errorf("token key = %q, %q; want the server's %q, %q", cfg.Token.Certificate, cfg.Token.Key, certPath, keyPath)
	}
}

func TestSeedWithLDAP(t *testing.T) {
	cfg, err := Parse("auth_config.yml", []byte(readSeed(t)))
	got := problemsOf(t, err)
	want := config.Problems{
		{File: "auth_config.yml", Line: 5, Column: 3,
			Msg: `server.certificate: cannot read "/ssl/coreos-cert.pem": no such file or directory`,
			Fix: "check the path; `gatehouse certs init` makes a certificate and key"},
		{File: "auth_config.yml", Line: 6, Column: 3,
			Msg: `server.key: cannot read "/ssl/coreos-key.pem": no such file or directory`,
			Fix: "check the path; `gatehouse certs init` makes a certificate and key"},
		{File: "auth_config.yml", Line: 16, Column: 3,
			Msg: `ldap_auth.bind_password_file: cannot read "/ssl/pass": no such file or directory`,
			Fix: "write the service account's password into it"},
		{File: "auth_config.yml", Line: 29, Column: 13,
			Msg: seedRuleMsg,
			Fix: `match: {labels: {groups: "6000"}} (ldap_auth.labels.groups reads the gidNumber attribute)`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	l := cfg.LDAPAuth
	if l == nil {
		t.Fatal("ldap_auth was not decoded")
	}
	wantLDAP := LDAPAuth{
		Addr: "10.10.122.250:1636", TLS: "always", InsecureTLSSkipVerify: true,
		BindDN: "cn=proxy,ou=profile,dc=domain,dc=com", BindPasswordFile: "/ssl/pass",
		Base: "o=company1.com,dc=domain,dc=com", Filter: "(&(uid=${account})(objectClass=posixAccount))",
		Labels: map[string]LDAPLabel{"groups": {Attribute: "gidNumber"}},
	}
	if diff := cmp.Diff(wantLDAP, *l); diff != "" {
		t.Errorf("ldap_auth (-want +got):\n%s", diff)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Msg, "insecure_tls_skip_verify") {
		t.Errorf("warnings = %v, want one about insecure_tls_skip_verify", lines(cfg.Warnings))
	}
}

// With the files in place and the rule written as meant, the seed is clean
// and the bind password is read from its file.
func TestSeedFixed(t *testing.T) {
	dir := t.TempDir()
	c, k := keyPEMs(t, ecKey(t), time.Now().Add(24*time.Hour))
	seed := readSeed(t)
	seed = strings.ReplaceAll(seed, "/ssl/coreos-cert.pem", writeFile(t, dir, "cert.pem", c))
	seed = strings.ReplaceAll(seed, "/ssl/coreos-key.pem", writeFile(t, dir, "key.pem", k))
	seed = strings.ReplaceAll(seed, "/ssl/pass", writeFile(t, dir, "pass", []byte("s3cret\n")))
	seed = strings.Replace(seed, `match: {"gidNumber": "6000"}`, `match: {labels: {groups: "6000"}}`, 1)
	cfg, err := Parse("auth_config.yml", []byte(seed))
	if err != nil {
		t.Fatalf("problems:%s", lines(problemsOf(t, err)))
	}
	if got := cfg.LDAPAuth.BindPassword.Reveal(); got != "s3cret" {
		t.Errorf("bind password = %q, want the trimmed file content", got)
	}
	if got := cfg.ACL[0].Match.Labels["groups"]; got != "6000" {
		t.Errorf("acl.0.match.labels.groups = %q", got)
	}
}
