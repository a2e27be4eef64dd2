package cli

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"software.sslmate.com/src/go-pkcs12"
)

func runMain(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// verifyServerCert checks what `openssl verify -CAfile ca.crt server.crt`
// checks, plus the names and usages.
func verifyServerCert(t *testing.T, dir string, names ...string) *x509.Certificate {
	t.Helper()
	cas, err := tlsutil.LoadCertificates(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tlsutil.LoadKeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	if len(kp.Chain) != 1 || !kp.Chain[0].Equal(cas[0]) {
		t.Errorf("server.crt must hold the server certificate then the CA; chain has %d certs", len(kp.Chain))
	}
	roots := x509.NewCertPool()
	roots.AddCert(cas[0])
	for _, n := range names {
		if _, err := kp.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("server.crt does not verify for %s against ca.crt: %v", n, err)
		}
		if _, err := kp.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("server.crt is not usable for client auth: %v", err)
		}
	}
	for _, f := range []string{"ca.key", "server.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	return kp.Leaf
}

func TestCertsInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errOut := runMain(t, "", "certs", "init", "--out", dir, "--host", "registry.test", "--host", "localhost", "--ip", "127.0.0.1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"ca.crt", "ca.key", "server.crt", "server.key", "/etc/docker/certs.d/registry.test:5000/ca.crt"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}
	first := verifyServerCert(t, dir, "registry.test", "localhost", "127.0.0.1")
	caBefore, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}

	// A second run refuses to overwrite.
	code, _, errOut = runMain(t, "", "certs", "init", "--out", dir, "--host", "registry.test")
	if code != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("second run: exit %d, stderr %q; want 1 and a hint about --force", code, errOut)
	}

	// --force makes a new server certificate with the same CA.
	code, out, errOut = runMain(t, "", "certs", "init", "--out", dir, "--host", "other.test", "--rsa", "--force", "--pkcs12")
	if code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "Using the existing CA") {
		t.Errorf("output does not say the CA was reused:\n%s", out)
	}
	caAfter, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caBefore, caAfter) {
		t.Errorf("ca.crt changed although it should be reused")
	}
	second := verifyServerCert(t, dir, "other.test")
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Errorf("new server certificate has the old serial number")
	}
	if second.PublicKeyAlgorithm != x509.RSA || first.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithms: first %v (want ECDSA), second %v (want RSA)", first.PublicKeyAlgorithm, second.PublicKeyAlgorithm)
	}
	p12, err := os.ReadFile(filepath.Join(dir, "server.p12"))
	if err != nil {
		t.Fatal(err)
	}
	_, leaf, cas, err := pkcs12.DecodeChain(p12, "")
	if err != nil {
		t.Fatalf("server.p12: %v", err)
	}
	if !leaf.Equal(second) || len(cas) != 1 {
		t.Errorf("server.p12 holds a different certificate or %d CAs", len(cas))
	}
}

func TestCertsInitPKCS12Password(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, "", "certs", "init", "--out", dir, "--ip", "::1", "--pkcs12", "--pkcs12-password-file", pw)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("output shows the PKCS#12 password")
	}
	p12, err := os.ReadFile(filepath.Join(dir, "server.p12"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := pkcs12.DecodeChain(p12, "s3cret"); err != nil {
		t.Errorf("server.p12 does not open with the password: %v", err)
	}
	if _, _, _, err := pkcs12.DecodeChain(p12, "wrong"); err == nil {
		t.Errorf("server.p12 opens with a wrong password")
	}
	verifyServerCert(t, dir, "::1")
}

func TestCertsInitErrors(t *testing.T) {
	half := t.TempDir()
	if err := os.WriteFile(filepath.Join(half, "ca.crt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyOnly := t.TempDir()
	if err := os.WriteFile(filepath.Join(keyOnly, "ca.key"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notCA := t.TempDir()
	if code, _, errOut := runMain(t, "", "certs", "init", "--out", notCA, "--host", "a"); code != 0 {
		t.Fatalf("setup: %s", errOut)
	}
	for _, f := range []string{"crt", "key"} {
		if err := os.Rename(filepath.Join(notCA, "server."+f), filepath.Join(notCA, "ca."+f)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no out", []string{"--host", "a"}, 2, "--out DIR is required"},
		{"no names", []string{"--out", t.TempDir()}, 2, "at least one --host"},
		{"bad ip", []string{"--out", t.TempDir(), "--ip", "nope"}, 2, "not an IP address"},
		{"ip as host", []string{"--out", t.TempDir(), "--host", "10.0.0.1"}, 2, "pass it with --ip"},
		{"bad days", []string{"--out", t.TempDir(), "--host", "a", "--days", "0"}, 2, "must be positive"},
		{"password file without pkcs12", []string{"--out", t.TempDir(), "--host", "a", "--pkcs12-password-file", "x"}, 2, "needs --pkcs12"},
		{"half a CA", []string{"--out", half, "--host", "a"}, 1, "only one of ca.crt and ca.key"},
		{"CA key only", []string{"--out", keyOnly, "--host", "a"}, 1, "only one of ca.crt and ca.key"},
		{"server certificate as CA", []string{"--out", notCA, "--host", "a"}, 1, "is not a CA certificate"},
		{"positional arg", []string{"x"}, 2, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runMain(t, "", append([]string{"certs", "init"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}
