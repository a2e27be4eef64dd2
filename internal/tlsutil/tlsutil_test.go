package tlsutil

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateServerVerifies(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []GenOption
		rsa  bool
	}{
		{name: "ecdsa"},
		{name: "rsa", opts: []GenOption{WithRSA(0)}, rsa: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ca, caKey, err := GenerateCA("Test CA", 24*time.Hour, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
			cert, key, err := GenerateServer(ca, caKey, []string{"registry.test", "localhost"}, ips, time.Hour, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if _, isRSA := key.(*rsa.PrivateKey); isRSA != tt.rsa {
				t.Errorf("key type %T, want RSA %v", key, tt.rsa)
			}
			if ek, ok := key.(*ecdsa.PrivateKey); ok && ek.Curve != elliptic.P256() {
				t.Errorf("ECDSA curve %s, want P-256", ek.Curve.Params().Name)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			for _, name := range []string{"registry.test", "localhost", "127.0.0.1", "::1"} {
				for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
					if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
						t.Errorf("verify for %s usage %v: %v", name, usage, err)
					}
				}
			}
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: roots}); err == nil {
				t.Errorf("certificate verifies for a name it does not hold")
			}
			if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; cert.KeyUsage != want {
				t.Errorf("KeyUsage = %v, want %v", cert.KeyUsage, want)
			}
			if cert.IsCA || !ca.IsCA {
				t.Errorf("IsCA: server %v, CA %v", cert.IsCA, ca.IsCA)
			}
			if cert.Subject.CommonName != "registry.test" {
				t.Errorf("CN = %q", cert.Subject.CommonName)
			}
		})
	}
}

func TestGenerateRefuses(t *testing.T) {
	ca, caKey, err := GenerateCA("CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, err := GenerateServer(ca, caKey, []string{"a"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		run     func() error
		wantErr string
	}{
		{"no names", func() error { _, _, err := GenerateServer(ca, caKey, nil, nil, time.Hour); return err }, "at least one host"},
		{"ip as host", func() error {
			_, _, err := GenerateServer(ca, caKey, []string{"10.0.0.1"}, nil, time.Hour)
			return err
		}, "not a DNS name"},
		{"leaf as CA", func() error { _, _, err := GenerateServer(leaf, caKey, []string{"a"}, nil, time.Hour); return err }, "not a CA"},
		{"empty CN", func() error { _, _, err := GenerateCA("", time.Hour); return err }, "common name"},
		{"small RSA", func() error { _, _, err := GenerateCA("x", time.Hour, WithRSA(1024)); return err }, "too small"},
		{"zero validity", func() error { _, _, err := GenerateCA("x", 0); return err }, "validity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// pair writes a fresh CA-signed pair into dir and returns the file names.
func pair(t *testing.T, dir, prefix, host string, opts ...GenOption) (certFile, keyFile string) {
	t.Helper()
	ca, caKey, err := GenerateCA("CA", time.Hour, opts...)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := GenerateServer(ca, caKey, []string{host}, nil, time.Hour, opts...)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, prefix+".crt"), filepath.Join(dir, prefix+".key")
	if err := WriteCertPEM(certFile, cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPEM(keyFile, key); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestWriteAndLoad(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := pair(t, dir, "server", "a.test")
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	kp, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Leaf.Subject.CommonName != "a.test" || len(kp.Chain) != 1 || kp.Chain[0].Subject.CommonName != "CA" {
		t.Errorf("leaf %q chain %d", kp.Leaf.Subject.CommonName, len(kp.Chain))
	}
	if len(kp.TLS.Certificate) != 2 || len(kp.Warnings) != 1 || !strings.Contains(kp.Warnings[0], "expires on") {
		t.Errorf("TLS chain %d, warnings %q (want a near-expiry warning for a 1-hour cert)", len(kp.TLS.Certificate), kp.Warnings)
	}
	all, err := LoadCertificates(certFile)
	if err != nil || len(all) != 2 {
		t.Errorf("LoadCertificates = %d certs, %v", len(all), err)
	}
}

func TestParseKeyFormats(t *testing.T) {
	ca, caKey, err := GenerateCA("CA", 24*time.Hour*30)
	if err != nil {
		t.Fatal(err)
	}
	ecCert, ecKey, err := GenerateServer(ca, caKey, []string{"ec"}, nil, 24*time.Hour*30)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert, rsaKey, err := GenerateServer(ca, caKey, []string{"rsa"}, nil, 24*time.Hour*30, WithRSA(2048))
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pkcs8EC, _ := EncodeKeyPEM(ecKey)
	pkcs8RSA, _ := EncodeKeyPEM(rsaKey)
	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	ecParams := block("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})
	now := time.Now()

	tests := []struct {
		name    string
		cert    []byte
		key     []byte
		wantErr string
	}{
		{"pkcs8 ec", EncodeCertsPEM(ecCert), pkcs8EC, ""},
		{"sec1 ec with params", EncodeCertsPEM(ecCert), append(ecParams, block("EC PRIVATE KEY", sec1)...), ""},
		{"pkcs8 rsa", EncodeCertsPEM(rsaCert), pkcs8RSA, ""},
		{"pkcs1 rsa", EncodeCertsPEM(rsaCert), block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey.(*rsa.PrivateKey))), ""},
		{"mismatched", EncodeCertsPEM(rsaCert), pkcs8EC, "does not belong"},
		{"encrypted", EncodeCertsPEM(rsaCert), encrypted, "encrypted"},
		{"encrypted pkcs8", EncodeCertsPEM(rsaCert), block("ENCRYPTED PRIVATE KEY", []byte{1}), "encrypted"},
		{"no key", EncodeCertsPEM(rsaCert), EncodeCertsPEM(rsaCert), "no PEM private key"},
		{"no cert", pkcs8EC, pkcs8EC, "no PEM CERTIFICATE"},
		{"bad cert", block("CERTIFICATE", []byte("junk")), pkcs8EC, "PEM block 1"},
		{"bad key", EncodeCertsPEM(ecCert), block("PRIVATE KEY", []byte("junk")), "PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := ParseKeyPair(tt.cert, tt.key, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(kp.Warnings) != 0 {
				t.Errorf("warnings %q for a valid cert", kp.Warnings)
			}
		})
	}
}

func TestParseKeyPairWarnings(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := pair(t, dir, "s", "w.test")
	c, _ := os.ReadFile(certFile)
	k, _ := os.ReadFile(keyFile)
	for _, tt := range []struct {
		name string
		now  time.Time
		want string
	}{
		{"expired", time.Now().Add(2 * time.Hour), "expired on"},
		{"not yet valid", time.Now().Add(-2 * time.Hour), "not valid before"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := ParseKeyPair(c, k, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if len(kp.Warnings) != 1 || !strings.Contains(kp.Warnings[0], tt.want) {
				t.Errorf("warnings = %q, want one containing %q", kp.Warnings, tt.want)
			}
		})
	}
}

func TestReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := pair(t, dir, "live", "one.test")
	r, err := NewReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := cn(); got != "one.test" {
		t.Fatalf("serving %q, want one.test", got)
	}

	// A broken key keeps the old pair.
	if err := os.WriteFile(keyFile, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("Reload accepted a broken key")
	}
	if got := cn(); got != "one.test" {
		t.Fatalf("after a failed reload serving %q, want one.test", got)
	}

	// Watch picks up a new valid pair.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Watch(ctx, 10*time.Millisecond); close(done) }()
	newCert, newKey := pair(t, t.TempDir(), "next", "two.test")
	for _, mv := range [][2]string{{newKey, keyFile}, {newCert, certFile}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for cn() != "two.test" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := cn(); got != "two.test" {
		t.Fatalf("Watch did not reload: serving %q", got)
	}
	if r.Current().Leaf.Subject.CommonName != "two.test" {
		t.Errorf("Current() is not the served pair")
	}
}

func TestReloaderServesTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, err := GenerateCA("CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	if err := WriteCertPEM(certFile, cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPEM(keyFile, key); err != nil {
		t.Fatal(err)
	}
	r, err := NewReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerConfig(ServerOptions{GetCertificate: r.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
		&tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Fatal("server accepted TLS 1.1 although the minimum is TLS 1.2")
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	}()
	c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS handshake with the generated CA: %v", err)
	}
	c.Close()
}

func TestParseTLSVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    uint16
		wantErr string
	}{
		{"TLS10", tls.VersionTLS10, ""}, {"TLS11", tls.VersionTLS11, ""}, {"TLS12", tls.VersionTLS12, ""},
		{"TLS13", tls.VersionTLS13, ""}, {"tls13", tls.VersionTLS13, ""}, {"1.2", tls.VersionTLS12, ""},
		{"771", tls.VersionTLS12, ""}, {"0x0304", tls.VersionTLS13, ""},
		{"SSL30", 0, "SSL 3.0"}, {"768", 0, "SSL 3.0"}, {"TLS14", 0, "unknown TLS version"}, {"", 0, "unknown"}, {"99999", 0, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTLSVersion(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseTLSVersion(%q) = %#x, %v; want %#x", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseCipherSuites(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []uint16
		wantErr string
	}{
		{"names", []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, ""},
		{"number and duplicate", []string{"0xc02f", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, []uint16{0xc02f}, ""},
		{"insecure", []string{"TLS_RSA_WITH_RC4_128_SHA"}, nil, "insecure"},
		{"unknown", []string{"TLS_FOO"}, nil, "unknown TLS cipher suite"},
		{"unknown number", []string{"1"}, nil, "unknown TLS cipher suite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCipherSuites(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCurves(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []tls.CurveID
		wantErr string
	}{
		{"names", []string{"X25519", "P256", "P-384", "p521"}, []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}, ""},
		{"number", []string{"23"}, []tls.CurveID{tls.CurveP256}, ""},
		{"unknown", []string{"P192"}, nil, "unknown TLS curve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCurves(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerConfig(t *testing.T) {
	get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	tests := []struct {
		name    string
		opts    ServerOptions
		wantMin uint16
		wantErr string
	}{
		{"default", ServerOptions{GetCertificate: get}, tls.VersionTLS12, ""},
		{"tls13", ServerOptions{GetCertificate: get, MinVersion: "TLS13"}, tls.VersionTLS13, ""},
		{"suites with tls13", ServerOptions{GetCertificate: get, MinVersion: "TLS13", CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}, 0, "cannot be configured"},
		{"bad version", ServerOptions{GetCertificate: get, MinVersion: "x"}, 0, "unknown TLS version"},
		{"bad curve", ServerOptions{GetCertificate: get, Curves: []string{"x"}}, 0, "unknown TLS curve"},
		{"bad suite", ServerOptions{GetCertificate: get, CipherSuites: []string{"x"}}, 0, "unknown TLS cipher"},
		{"no cert", ServerOptions{}, 0, "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ServerConfig(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion != tt.wantMin {
				t.Errorf("MinVersion = %#x, want %#x", cfg.MinVersion, tt.wantMin)
			}
		})
	}
}

func FuzzParseKeyPair(f *testing.F) {
	ca, caKey, err := GenerateCA("CA", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	cert, key, err := GenerateServer(ca, caKey, []string{"f"}, nil, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	keyPEM, _ := EncodeKeyPEM(key)
	f.Add(EncodeCertsPEM(cert, ca), keyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte(""), []byte(""))
	f.Fuzz(func(t *testing.T, c, k []byte) {
		kp, err := ParseKeyPair(c, k, time.Now())
		if err == nil && (kp.Leaf == nil || kp.Key == nil || len(kp.TLS.Certificate) != 1+len(kp.Chain)) {
			t.Fatalf("ParseKeyPair succeeded with an incomplete pair")
		}
		_, _ = ParseCertificatesPEM(c)
		_, _ = ParsePrivateKeyPEM(k)
	})
}
