package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

func TestEnsureMakesValidConfigs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	res, err := Ensure(Options{DataDir: dir, RegistryAddr: "127.0.0.1:5000", AuthAddr: "127.0.0.1:5001", PublicHost: "registry.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if res.AdminPassword.IsEmpty() {
		t.Fatal("first run: no admin password returned")
	}
	if len(res.Created) != 7 {
		t.Errorf("created %d files, want 7: %v", len(res.Created), res.Created)
	}
	auth, err := authconfig.Load(res.AuthConfig)
	if err != nil {
		t.Fatalf("generated auth_config.yml does not load:\n%v", err)
	}
	u, ok := auth.Users["admin"]
	if !ok {
		t.Fatal("no admin user in the generated auth config")
	}
	if err := bcrypt.CompareHashAndPassword([]byte(u.Password.Reveal()), []byte(res.AdminPassword.Reveal())); err != nil {
		t.Errorf("admin hash does not match the password: %v", err)
	}
	reg, err := regconfig.Load(res.RegistryConfig)
	if err != nil {
		t.Fatalf("generated config.yml does not load:\n%v", err)
	}
	if got, want := reg.Auth.Token.Realm, "https://registry.example.com:5001/auth"; got != want {
		t.Errorf("realm = %q, want %q", got, want)
	}

	// The server certificate chains to the CA and names the public host.
	kp, err := tlsutil.LoadKeyPair(res.ServerCert, res.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := kp.Certificates()[0]
	if err := leaf.VerifyHostname("registry.example.com"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	for _, f := range []string{res.CAKey, res.ServerKey, res.AdminPasswordFile, res.AuthConfig, res.RegistryConfig} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v; secrets must be private", filepath.Base(f), st.Mode().Perm())
		}
	}
}

func TestEnsureKeepsWhatExists(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(first.CACert)
	if err := os.WriteFile(first.AuthConfig, []byte("# edited by the operator\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := Ensure(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Created) != 0 {
		t.Errorf("second run created %v", second.Created)
	}
	if !second.AdminPassword.IsEmpty() {
		t.Error("second run returned a password: it must be shown only once")
	}
	ca2, _ := os.ReadFile(second.CACert)
	if string(ca) != string(ca2) {
		t.Error("CA changed on the second run")
	}
	edited, _ := os.ReadFile(second.AuthConfig)
	if !strings.Contains(string(edited), "edited by the operator") {
		t.Error("operator's auth_config.yml was overwritten")
	}
}

func TestEnsureRefusesEmptyPasswordFile(t *testing.T) {
	dir := t.TempDir()
	l := LayoutOf(dir)
	if err := os.WriteFile(l.AdminPasswordFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("err = %v, want an empty-password-file error", err)
	}
}
