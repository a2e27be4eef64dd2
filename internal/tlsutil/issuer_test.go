package tlsutil

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testNewCA = NewCA{Name: "Test CA", Validity: 24 * time.Hour}

// writeCA writes a self-signed certificate from tmpl (with a fresh key) as
// ca.crt and ca.key in dir.
func writeCA(t *testing.T, dir string, tmpl *x509.Certificate) {
	t.Helper()
	key, serial, skid, err := newIdentity(genOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber, tmpl.SubjectKeyId = serial, skid
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCertPEM(filepath.Join(dir, "ca.crt"), cert); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPEM(filepath.Join(dir, "ca.key"), key); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateCA(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name        string
		setup       func(t *testing.T, dir string)
		wantCreated bool
		wantErr     string
	}{
		{
			name:        "none: made",
			setup:       func(*testing.T, string) {},
			wantCreated: true,
		},
		{
			name: "existing: reused",
			setup: func(t *testing.T, dir string) {
				if _, _, err := LoadOrCreateCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), testNewCA); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "certificate without key",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "ca.crt"), "x")
			},
			wantErr: "has only one of ca.crt and ca.key",
		},
		{
			name: "key without certificate",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "ca.key"), "x")
			},
			wantErr: "has only one of ca.crt and ca.key",
		},
		{
			name: "key of another CA",
			setup: func(t *testing.T, dir string) {
				other := t.TempDir()
				if _, _, err := LoadOrCreateCA(filepath.Join(other, "ca.crt"), filepath.Join(other, "ca.key"), testNewCA); err != nil {
					t.Fatal(err)
				}
				if _, _, err := LoadOrCreateCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), testNewCA); err != nil {
					t.Fatal(err)
				}
				key, err := os.ReadFile(filepath.Join(other, "ca.key"))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "ca.key"), string(key))
			},
			wantErr: "does not belong to the certificate",
		},
		{
			name: "not a CA",
			setup: func(t *testing.T, dir string) {
				writeCA(t, dir, &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), BasicConstraintsValid: true})
			},
			wantErr: "is not a CA certificate",
		},
		{
			name: "CA that may not sign certificates",
			setup: func(t *testing.T, dir string) {
				writeCA(t, dir, &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
					BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageDigitalSignature})
			},
			wantErr: "without the certificate-signing key usage",
		},
		{
			name: "expired",
			setup: func(t *testing.T, dir string) {
				writeCA(t, dir, &x509.Certificate{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour),
					BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign})
			},
			wantErr: "expired on",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
			tt.setup(t, dir)
			before, _ := os.ReadFile(crt)
			ca, created, err := LoadOrCreateCA(crt, key, testNewCA)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Errorf("error shows key material: %v", err)
				}
				if after, _ := os.ReadFile(crt); !bytes.Equal(before, after) {
					t.Error("a refused CA was overwritten")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != testNewCA.Name {
				t.Errorf("CA certificate: IsCA %v, CN %q", ca.Cert.IsCA, ca.Cert.Subject.CommonName)
			}
			if !created {
				if after, _ := os.ReadFile(crt); !bytes.Equal(before, after) {
					t.Error("an existing CA was rewritten")
				}
			}
			checkModes(t, map[string]os.FileMode{crt: 0o644, key: 0o600})
		})
	}
}

func TestIssueServer(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreateCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), testNewCA)
	if err != nil {
		t.Fatal(err)
	}
	crt, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	cert, key, err := ca.IssueServer(crt, keyFile, []string{"registry.test", "localhost"}, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := LoadKeyPair(crt, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.Leaf.Equal(cert) || len(kp.Chain) != 1 || !kp.Chain[0].Equal(ca.Cert) {
		t.Fatalf("server.crt must hold the returned certificate then the CA; it has %d certificates after the leaf", len(kp.Chain))
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(kp.Key.Public()) {
		t.Error("server.key is not the returned key")
	}
	if cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("server certificate outlives its CA: %v > %v", cert.NotAfter, ca.Cert.NotAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, name := range []string{"registry.test", "localhost", "127.0.0.1", "::1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			t.Run(name, func(t *testing.T) {
				if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("usage %v: %v", usage, err)
				}
			})
		}
	}
	checkModes(t, map[string]os.FileMode{crt: 0o644, keyFile: 0o600})
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func checkModes(t *testing.T, want map[string]os.FileMode) {
	t.Helper()
	for f, mode := range want {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", filepath.Base(f), st.Mode().Perm(), mode)
		}
	}
}
