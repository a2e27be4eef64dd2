package authconfig

import (
	"os"
	"testing"
	"time"
)

// The commented reference config in docs parses with no problem and no
// warning, given the files it names.
func TestReferenceConfig(t *testing.T) {
	data, err := os.ReadFile("../../../docs/examples/auth_config.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, k := keyPEMs(t, ecKey(t), time.Now().Add(24*time.Hour))
	files := testFiles{
		"/etc/gatehouse/certs/server.pem":     c,
		"/etc/gatehouse/certs/server-key.pem": k,
		"/etc/gatehouse/certs/ldap-ca.pem":    c,
		"/etc/gatehouse/ldap-password":        []byte("reader-password\n"),
	}
	env := fakeEnv(t, files, nil, nil)
	cfg, err := ParseEnv("auth_config.yml", data, env)
	if err != nil {
		t.Fatalf("problems:%s", lines(problemsOf(t, err)))
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings:%s", lines(cfg.Warnings))
	}
	if len(cfg.ACL) != 5 || cfg.LDAPAuth == nil || len(cfg.Users) != 2 {
		t.Errorf("decoded %d ACL entries, ldap_auth %v, %d users; want 5, set, 2", len(cfg.ACL), cfg.LDAPAuth != nil, len(cfg.Users))
	}
	if cfg.LDAPAuth.BindPassword.Reveal() != "reader-password" {
		t.Error("bind password not read from bind_password_file")
	}
}
