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
	"github.com/gatehouse-registry/gatehouse/internal/secret"
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
	if len(res.Created) != 8 {
		t.Errorf("created %d files, want 8: %v", len(res.Created), res.Created)
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

// TestEnsureTrustFolder: the CA certificate is alone in trust/, made on
// first start and again whenever it is missing, and it is the CA that
// signed the server certificate.
func TestEnsureTrustFolder(t *testing.T) {
	dir := t.TempDir()
	res, err := Ensure(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(res.TrustCA))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "ca.crt" {
		t.Fatalf("trust folder holds %v, want ca.crt alone", entries)
	}
	checkTrust := func() {
		t.Helper()
		roots, err := tlsutil.LoadCertificates(res.TrustCA)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		for _, c := range roots {
			pool.AddCert(c)
		}
		kp, err := tlsutil.LoadKeyPair(res.ServerCert, res.ServerKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kp.Certificates()[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
			t.Errorf("the server certificate does not verify with %s: %v", res.TrustCA, err)
		}
	}
	checkTrust()

	if err := os.RemoveAll(filepath.Dir(res.TrustCA)); err != nil {
		t.Fatal(err)
	}
	again, err := Ensure(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Created, []string{res.TrustCA}) {
		t.Errorf("second start created %v, want only %s", again.Created, res.TrustCA)
	}
	checkTrust()

	// Without certs/ca.crt, the CA comes from the server certificate's chain.
	if err := os.Remove(res.TrustCA); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(res.CACert); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(res.CAKey); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(Options{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	checkTrust()
}

// TestEnsureAdminPassword: a password given for the first start is the
// admin's; a later start given another one fails instead of ignoring it.
func TestEnsureAdminPassword(t *testing.T) {
	dir := t.TempDir()
	res, err := Ensure(Options{DataDir: dir, AdminPassword: "automation-pw-1"})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authconfig.Load(res.AuthConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(auth.Users["admin"].Password.Reveal()), []byte("automation-pw-1")); err != nil {
		t.Errorf("the admin's hash is not of the given password: %v", err)
	}
	if b, _ := os.ReadFile(res.AdminPasswordFile); strings.TrimSpace(string(b)) != "automation-pw-1" {
		t.Errorf("admin-password holds %q", b)
	}
	if _, err := Ensure(Options{DataDir: dir, AdminPassword: "automation-pw-1"}); err != nil {
		t.Errorf("same password again: %v", err)
	}
	_, err = Ensure(Options{DataDir: dir, AdminPassword: "automation-pw-2"})
	if err == nil || !strings.Contains(err.Error(), res.AdminPasswordFile) || strings.Contains(err.Error(), "automation-pw") {
		t.Errorf("another password on a later start: err = %v, want a refusal naming %s and no password", err, res.AdminPasswordFile)
	}
	for _, bad := range []string{" padded", "two\nlines", strings.Repeat("x", 73)} {
		if _, err := Ensure(Options{DataDir: t.TempDir(), AdminPassword: secret.Secret(bad)}); err == nil {
			t.Errorf("password %q accepted", bad)
		}
	}
}

// TestEnsureMetricsOffThePublicPorts: the generated files serve metrics
// on the addresses given, and on no listener when none is given.
func TestEnsureMetricsOffThePublicPorts(t *testing.T) {
	res, err := Ensure(Options{DataDir: t.TempDir(), DebugAddr: "127.0.0.1:5002", AuthMetricsAddr: "127.0.0.1:5003"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := regconfig.Load(res.RegistryConfig)
	if err != nil {
		t.Fatal(err)
	}
	if reg.HTTP.Debug.Addr != "127.0.0.1:5002" || !reg.HTTP.Debug.Prometheus.Enabled {
		t.Errorf("registry debug = %+v, want Prometheus on 127.0.0.1:5002", reg.HTTP.Debug)
	}
	auth, err := authconfig.Load(res.AuthConfig)
	if err != nil {
		t.Fatal(err)
	}
	if auth.Server.Metrics.Addr != "127.0.0.1:5003" {
		t.Errorf("auth server.metrics.addr = %q, want 127.0.0.1:5003", auth.Server.Metrics.Addr)
	}

	res, err = Ensure(Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if reg, err = regconfig.Load(res.RegistryConfig); err != nil || reg.HTTP.Debug.Addr != "" {
		t.Errorf("no debug address given: debug = %+v, err %v", reg.HTTP.Debug, err)
	}
}

// TestEnsureFlagsTheFilesContradict: a setting given on purpose that a
// file of an earlier start contradicts fails, naming the file and key;
// defaults, and settings the files agree with, pass.
func TestEnsureFlagsTheFilesContradict(t *testing.T) {
	dir := t.TempDir()
	base := Options{DataDir: dir, RegistryAddr: ":5000", AuthAddr: ":5001", DebugAddr: "127.0.0.1:5002", AuthMetricsAddr: "127.0.0.1:5003", PublicHost: "localhost"}
	res, err := Ensure(base)
	if err != nil {
		t.Fatal(err)
	}
	all := Explicit{RegistryAddr: true, AuthAddr: true, PublicHost: true, Hosts: true, DebugAddr: true, AuthMetricsAddr: true}
	tests := []struct {
		name     string
		change   func(o *Options)
		explicit Explicit
		want     []string // in the error; none: no error
	}{
		{"same values given", func(*Options) {}, all, nil},
		{"other values, not given on purpose", func(o *Options) { o.RegistryAddr, o.PublicHost = ":5200", "elsewhere.example" }, Explicit{}, nil},
		{"registry address", func(o *Options) { o.RegistryAddr = ":5200" }, all, []string{"--registry-addr :5200", res.RegistryConfig, "http.addr", `":5000"`}},
		{"auth address", func(o *Options) { o.AuthAddr = ":5201" }, all, []string{"--auth-addr :5201", res.AuthConfig, "server.addr"}},
		{"debug address", func(o *Options) { o.DebugAddr = "" }, all, []string{"--debug-addr", "http.debug.addr"}},
		{"auth metrics address", func(o *Options) { o.AuthMetricsAddr = "127.0.0.1:9999" }, all, []string{"--auth-metrics-addr 127.0.0.1:9999", "server.metrics.addr"}},
		{"public host", func(o *Options) { o.PublicHost = "registry.example.com" }, all, []string{"--public-host registry.example.com", "auth.token.realm", "registry.example.com is not a name of the server certificate " + res.ServerCert}},
		{"extra host", func(o *Options) { o.Hosts = []string{"10.9.8.7"} }, Explicit{Hosts: true}, []string{"10.9.8.7 is not a name of the server certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.change(&o)
			o.Explicit = tt.explicit
			_, err := Ensure(o)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
