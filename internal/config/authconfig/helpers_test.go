package authconfig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/config"
)

// aliceHash is a bcrypt hash (cost 10) of "secret".
const aliceHash = "$2y$10$PSfNFQCGcRTlGCec0//N.OQuNp7fR8yOzVuENyS/HQm3h1/LVlF3C"

// keyPEMs makes a self-signed certificate for key and returns both as PEM.
func keyPEMs(t testing.TB, key crypto.Signer, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "authconfig test"},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testFiles is a fake file system for Env.ReadFile.
type testFiles map[string][]byte

func (f testFiles) read(name string) ([]byte, error) {
	if d, ok := f[name]; ok {
		return d, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// fakeEnv has the server pair at /certs/server.pem and /certs/server-key.pem,
// plus files; the commands in cmds exist; vars are the environment.
func fakeEnv(t testing.TB, files testFiles, cmds []string, vars map[string]string) Env {
	t.Helper()
	all := testFiles{}
	c, k := keyPEMs(t, ecKey(t), time.Now().Add(24*time.Hour))
	all["/certs/server.pem"], all["/certs/server-key.pem"] = c, k
	for n, d := range files {
		all[n] = d
	}
	return Env{
		ReadFile: all.read,
		LookPath: func(f string) (string, error) {
			for _, c := range cmds {
				if c == f {
					return f, nil
				}
			}
			return "", errors.New("executable file not found in $PATH")
		},
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
	}
}

// problemsOf returns err's problems, failing on other errors.
func problemsOf(t testing.TB, err error) config.Problems {
	t.Helper()
	if err == nil {
		return nil
	}
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, not config.Problems: %v", err, err)
	}
	return ps
}

// writeFile writes data to name under dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// edKeyPEMs makes an Ed25519 pair, which TLS accepts but token signing does not.
func edKeyPEMs(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keyPEMs(t, k, time.Now().Add(time.Hour))
}

// lines joins problems one per line for failure messages.
func lines(ps config.Problems) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}
