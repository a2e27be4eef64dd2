// Package tlsutil generates, loads and hot-reloads TLS certificates, issues
// server certificates from a checked CA (LoadOrCreateCA, CA.IssueServer), and
// builds server tls.Configs from docker_auth-style settings.
package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SHA-1 is what RFC 5280 names for the subject key identifier; not a security use.
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// GenOption changes how a key and certificate are generated.
type GenOption func(*genOptions)

type genOptions struct {
	rsa     bool
	rsaBits int
	org     string
}

// WithRSA makes the key RSA with the given size (2048 when bits is 0)
// instead of ECDSA P-256.
func WithRSA(bits int) GenOption {
	return func(o *genOptions) {
		o.rsa = true
		o.rsaBits = bits
	}
}

// WithOrganization sets the subject's organization (O=).
func WithOrganization(org string) GenOption {
	return func(o *genOptions) { o.org = org }
}

func newKey(o genOptions) (crypto.Signer, error) {
	if o.rsa {
		bits := o.rsaBits
		if bits == 0 {
			bits = 2048
		}
		if bits < 2048 {
			return nil, fmt.Errorf("RSA key size %d is too small, use at least 2048", bits)
		}
		return rsa.GenerateKey(rand.Reader, bits)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serialNumber() (*big.Int, error) {
	// 128 random bits, positive and non-zero.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(der) //nolint:gosec // identifier, not a signature.
	return sum[:], nil
}

func applyOpts(opts []GenOption) genOptions {
	var o genOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// GenerateCA makes a self-signed CA certificate and its key (ECDSA P-256
// unless WithRSA), valid from one hour ago for validity.
func GenerateCA(cn string, validity time.Duration, opts ...GenOption) (*x509.Certificate, crypto.Signer, error) {
	if cn == "" {
		return nil, nil, errors.New("CA common name is empty")
	}
	if validity <= 0 {
		return nil, nil, errors.New("CA validity must be positive")
	}
	o := applyOpts(opts)
	key, serial, skid, err := newIdentity(o)
	if err != nil {
		return nil, nil, fmt.Errorf("CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject(cn, o.org),
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	return cert, key, nil
}

func subject(cn, org string) pkix.Name {
	n := pkix.Name{CommonName: cn}
	if org != "" {
		n.Organization = []string{org}
	}
	return n
}

// GenerateServer makes a key (ECDSA P-256 unless WithRSA) and a
// certificate signed by ca for the given DNS names and IP addresses, usable
// for TLS servers and clients (serverAuth and clientAuth), valid from one
// hour ago for validity. The common name is the first host, or the first IP.
func GenerateServer(ca *x509.Certificate, caKey crypto.Signer, hosts []string, ips []net.IP, validity time.Duration, opts ...GenOption) (*x509.Certificate, crypto.Signer, error) {
	if ca == nil || caKey == nil {
		return nil, nil, errors.New("server certificate: no CA")
	}
	if !ca.IsCA {
		return nil, nil, errors.New("server certificate: the CA certificate is not a CA (basicConstraints CA:FALSE)")
	}
	if len(hosts) == 0 && len(ips) == 0 {
		return nil, nil, errors.New("server certificate: at least one host name or IP address is needed")
	}
	if validity <= 0 {
		return nil, nil, errors.New("server certificate: validity must be positive")
	}
	for _, h := range hosts {
		if h == "" || net.ParseIP(h) != nil {
			return nil, nil, fmt.Errorf("server certificate: %q is not a DNS name (pass IP addresses separately)", h)
		}
	}
	o := applyOpts(opts)
	key, serial, skid, err := newIdentity(o)
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: %w", err)
	}
	cn := ""
	if len(hosts) > 0 {
		cn = hosts[0]
	} else {
		cn = ips[0].String()
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject(cn, o.org),
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              hosts,
		IPAddresses:           ips,
		SubjectKeyId:          skid,
		AuthorityKeyId:        ca.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: %w", err)
	}
	return cert, key, nil
}

// EncodeCertsPEM returns certs as concatenated CERTIFICATE PEM blocks.
func EncodeCertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// EncodeKeyPEM returns key as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteCertPEM writes certs to path (mode 0644), leaf first.
func WriteCertPEM(path string, certs ...*x509.Certificate) error {
	return WriteFileAtomic(path, EncodeCertsPEM(certs...), 0o644)
}

// WriteKeyPEM writes key to path as PKCS#8 PEM with mode 0600.
func WriteKeyPEM(path string, key crypto.Signer) error {
	b, err := EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, b, 0o600)
}

// WriteFileAtomic writes data to a temporary file with mode perm in path's
// directory and renames it over path, so readers (and Reloader) never see a
// half-written file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) //nolint:errcheck // gone after a successful rename.
	if err := f.Chmod(perm); err != nil {
		f.Close() //nolint:errcheck,gosec
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close() //nolint:errcheck,gosec
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close() //nolint:errcheck,gosec
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// newIdentity makes what every certificate needs of its own: a key, a
// random serial number and the subject key identifier.
func newIdentity(o genOptions) (crypto.Signer, *big.Int, []byte, error) {
	key, err := newKey(o)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, nil, nil, err
	}
	return key, serial, skid, nil
}
