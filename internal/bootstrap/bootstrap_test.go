package bootstrap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// writeSelfSigned writes a self-signed certificate made from tmpl and its
// key to certFile and keyFile.
func writeSelfSigned(t *testing.T, certFile, keyFile string, tmpl *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(7)
	tmpl.Subject = pkix.Name{CommonName: "test"}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteCertPEM(certFile, cert); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(keyFile, key); err != nil {
		t.Fatal(err)
	}
}

// TestEnsureCerts: the CA in the data directory is checked before it signs
// a server certificate, as `gatehouse certs init` checks it; nothing an
// operator left there is overwritten.
func TestEnsureCerts(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name        string
		setup       func(t *testing.T, l Layout)
		wantErr     string
		wantCreated []string // base names of the certificate files made
	}{
		{
			name:        "empty: CA and server certificate made",
			setup:       func(*testing.T, Layout) {},
			wantCreated: []string{"ca.crt", "ca.key", "server.crt", "server.key"},
		},
		{
			name: "server files gone: the existing CA signs new ones",
			setup: func(t *testing.T, l Layout) {
				if _, _, err := tlsutil.LoadOrCreateCA(l.CACert, l.CAKey, tlsutil.NewCA{Name: "Operator CA", Validity: time.Hour}); err != nil {
					t.Fatal(err)
				}
			},
			wantCreated: []string{"server.crt", "server.key"},
		},
		{
			name: "server files present: CA key may be offline",
			setup: func(t *testing.T, l Layout) {
				writeSelfSigned(t, l.ServerCert, l.ServerKey, &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{"localhost"}})
				if err := os.WriteFile(l.CACert, []byte("operator's CA\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "CA key without its certificate",
			setup: func(t *testing.T, l Layout) {
				if err := os.WriteFile(l.CAKey, []byte("operator's CA key\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "has only one of ca.crt and ca.key",
		},
		{
			name: "not a CA",
			setup: func(t *testing.T, l Layout) {
				writeSelfSigned(t, l.CACert, l.CAKey, &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), BasicConstraintsValid: true})
			},
			wantErr: "is not a CA certificate",
		},
		{
			name: "expired CA",
			setup: func(t *testing.T, l Layout) {
				writeSelfSigned(t, l.CACert, l.CAKey, &x509.Certificate{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour),
					BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign})
			},
			wantErr: "expired on",
		},
		{
			name: "server certificate without its key",
			setup: func(t *testing.T, l Layout) {
				if err := os.WriteFile(l.ServerCert, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "has only one of server.crt and server.key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := LayoutOf(dir)
			if err := os.MkdirAll(filepath.Dir(l.CACert), 0o700); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, l)
			before := map[string][]byte{}
			for _, f := range []string{l.CACert, l.CAKey, l.ServerCert, l.ServerKey} {
				before[f], _ = os.ReadFile(f)
			}
			res, err := Ensure(Options{DataDir: dir})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				for f, b := range before {
					if after, _ := os.ReadFile(f); !bytes.Equal(b, after) {
						t.Errorf("%s was changed", filepath.Base(f))
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var created []string
			for _, f := range res.Created {
				if filepath.Dir(f) == filepath.Dir(l.CACert) {
					created = append(created, filepath.Base(f))
				}
			}
			slices.Sort(created)
			if !slices.Equal(created, tt.wantCreated) {
				t.Errorf("created %v, want %v", created, tt.wantCreated)
			}
			if len(tt.wantCreated) == 0 {
				return
			}
			cas, err := tlsutil.LoadCertificates(l.CACert)
			if err != nil {
				t.Fatal(err)
			}
			kp, err := tlsutil.LoadKeyPair(l.ServerCert, l.ServerKey)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(cas[0])
			if _, err := kp.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots}); err != nil {
				t.Errorf("server certificate does not chain to ca.crt: %v", err)
			}
			if len(kp.Chain) != 1 || !kp.Chain[0].Equal(cas[0]) {
				t.Error("server.crt must hold the server certificate then the CA")
			}
		})
	}
}
