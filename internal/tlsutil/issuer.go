package tlsutil

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority that issues server certificates: the one
// `gatehouse certs init` writes and `gatehouse serve` makes on first start.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA describes the CA LoadOrCreateCA makes when there is none.
type NewCA struct {
	Name     string        // common name
	Validity time.Duration // from now
	Options  []GenOption   // key type, organization
}

// LoadOrCreateCA returns the CA in certFile and keyFile. When neither file
// exists it makes one as described by mk and writes the key (mode 0600),
// then the certificate (mode 0644); created reports that. An existing CA is
// checked before it is used: both files must be there, parse and belong
// together, and the certificate must be an unexpired CA certificate allowed
// to sign certificates. The errors name the files and the fix, never key
// material.
func LoadOrCreateCA(certFile, keyFile string, mk NewCA) (ca *CA, created bool, err error) {
	haveCrt, err := fileExists(certFile)
	if err != nil {
		return nil, false, err
	}
	haveKey, err := fileExists(keyFile)
	if err != nil {
		return nil, false, err
	}
	switch {
	case haveCrt && haveKey:
		ca, err := loadCA(certFile, keyFile, time.Now())
		return ca, false, err
	case haveCrt || haveKey:
		return nil, false, fmt.Errorf("%s has only one of %s and %s; restore the other or remove both",
			filepath.Dir(certFile), filepath.Base(certFile), filepath.Base(keyFile))
	}
	cert, key, err := GenerateCA(mk.Name, mk.Validity, mk.Options...)
	if err != nil {
		return nil, false, err
	}
	if err := WriteKeyPEM(keyFile, key); err != nil {
		return nil, false, err
	}
	if err := WriteCertPEM(certFile, cert); err != nil {
		return nil, false, err
	}
	return &CA{Cert: cert, Key: key}, true, nil
}

// loadCA reads an existing CA and checks that it can issue certificates
// valid at now.
func loadCA(certFile, keyFile string, now time.Time) (*CA, error) {
	kp, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("existing CA: %w", err)
	}
	c := kp.Leaf
	if !c.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certFile)
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is a CA certificate without the certificate-signing key usage; it cannot sign a server certificate", certFile)
	}
	if now.After(c.NotAfter) {
		return nil, fmt.Errorf("the CA in %s expired on %s; move %s and %s away to make a new one",
			certFile, c.NotAfter.Format(time.DateOnly), filepath.Base(certFile), filepath.Base(keyFile))
	}
	return &CA{Cert: c, Key: kp.Key}, nil
}

// IssueServer makes a server key and certificate signed by ca for hosts
// and ips (see GenerateServer: serverAuth and clientAuth, capped at the
// CA's expiry) and writes them: the key to keyFile (mode 0600), then the
// certificate followed by the CA certificate to certFile (mode 0644).
func (ca *CA) IssueServer(certFile, keyFile string, hosts []string, ips []net.IP, validity time.Duration, opts ...GenOption) (*x509.Certificate, crypto.Signer, error) {
	cert, key, err := GenerateServer(ca.Cert, ca.Key, hosts, ips, validity, opts...)
	if err != nil {
		return nil, nil, err
	}
	if err := WriteKeyPEM(keyFile, key); err != nil {
		return nil, nil, err
	}
	if err := WriteCertPEM(certFile, cert, ca.Cert); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// fileExists reports whether path names something (a dangling link
// included). Errors other than "does not exist" are returned.
func fileExists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}
