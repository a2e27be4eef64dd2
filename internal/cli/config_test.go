package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestPair writes a self-signed ECDSA certificate and key into dir.
func writeTestPair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "config check test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeTestFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})))
	return certFile, keyFile
}

func writeTestFile(t *testing.T, name, data string) string {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeTestPair(t, dir)
	authOK := writeTestFile(t, filepath.Join(dir, "auth_ok.yml"), `server:
  addr: ":5001"
  certificate: `+cert+`
  key: `+key+`
token: {issuer: test, expiration: 900}
users:
  "": {}
acl:
  - match: {account: ""}
    actions: [pull]
`)
	plainHTTP := writeTestFile(t, filepath.Join(dir, "auth_plain.yml"), `server: {addr: ":5001"}
token: {issuer: test, expiration: 900, certificate: `+cert+`, key: `+key+`}
users: {}
acl: []
`)
	dist := writeTestFile(t, filepath.Join(dir, "config.yml"), "version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  addr: \":5000\"\n")
	distBad := writeTestFile(t, filepath.Join(dir, "config_bad.yml"), "version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  adr: \":5000\"\n")
	both := writeTestFile(t, filepath.Join(dir, "both.yml"), "server: {addr: \":1\"}\nstorage: {}\n")
	neither := writeTestFile(t, filepath.Join(dir, "neither.yml"), "hello: world\n")
	broken := writeTestFile(t, filepath.Join(dir, "broken.yml"), "server:\n\taddr: x\n")
	seed, err := filepath.Abs("../config/authconfig/testdata/seed_auth_config.yml")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		files    []string
		wantCode int
		want     []string // lines of stdout, in order, each a prefix
	}{
		{name: "clean docker_auth", files: []string{authOK}, want: []string{authOK + ": OK (docker_auth auth_config.yml)"}},
		{name: "warnings do not fail", files: []string{plainHTTP},
			want: []string{plainHTTP + ":1:10: warning: the auth server will serve plain HTTP", plainHTTP + ": OK (docker_auth auth_config.yml)"}},
		{name: "clean distribution", files: []string{dist}, want: []string{dist + ": OK (distribution config.yml)"}},
		{name: "distribution problem", files: []string{distBad}, wantCode: 1, want: []string{distBad + `:5:3: unknown key "http.adr" (fix: did you mean "addr"?)`}},
		{name: "seed", files: []string{seed}, wantCode: 1, want: []string{
			seed + `:5:3: server.certificate: cannot read "/ssl/coreos-cert.pem"`,
			seed + `:6:3: server.key: cannot read "/ssl/coreos-key.pem"`,
			seed + `:14:3: warning: ldap_auth.insecure_tls_skip_verify`,
			seed + `:16:3: ldap_auth.bind_password_file: cannot read "/ssl/pass"`,
			seed + `:29:13: acl.0.match: unknown key "gidNumber": docker_auth ignores it and reads this rule as an empty match, which grants actions ["*"] to every user (fix: match: {labels: {groups: "6000"}}`,
		}},
		{name: "both formats", files: []string{both}, wantCode: 1, want: []string{both + ": cannot tell the format: it has keys of both formats (docker_auth: server; distribution: storage)"}},
		{name: "neither format", files: []string{neither}, wantCode: 1, want: []string{neither + ": cannot tell the format: it has none of the top-level keys"}},
		{name: "yaml syntax", files: []string{broken}, wantCode: 1, want: []string{broken + ":2: invalid YAML: found character that cannot start any token (a tab in the indentation) (fix: indent with spaces only"}},
		{name: "missing file", files: []string{filepath.Join(dir, "nope.yml")}, wantCode: 1, want: []string{filepath.Join(dir, "nope.yml") + ": cannot read: no such file or directory"}},
		{name: "one bad file fails all", files: []string{authOK, neither}, wantCode: 1, want: []string{authOK + ": OK", neither + ": cannot tell"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMain(t, "", append([]string{"config", "check"}, tt.files...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(tt.want), out)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("line %d:\n got %s\nwant %s...", i, got[i], w)
				}
			}
		})
	}
}

func TestConfigCheckUsage(t *testing.T) {
	code, _, errOut := runMain(t, "", "config", "check")
	if code != exitUsage {
		t.Errorf("exit %d, want %d (stderr %q)", code, exitUsage, errOut)
	}
}
