package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// KeyPair is a loaded certificate chain and its private key.
type KeyPair struct {
	// Leaf is the first certificate of the file; Chain the ones after it.
	Leaf  *x509.Certificate
	Chain []*x509.Certificate
	// Key is the private key that belongs to Leaf.
	Key crypto.Signer
	// TLS is the pair ready for a tls.Config.
	TLS tls.Certificate
	// Warnings are problems that do not stop the pair from loading, e.g.
	// an expired certificate.
	Warnings []string
}

// Certificates returns the leaf followed by the chain.
func (kp *KeyPair) Certificates() []*x509.Certificate {
	return append([]*x509.Certificate{kp.Leaf}, kp.Chain...)
}

// LoadKeyPair reads a PEM certificate file (leaf first, then
// intermediates) and a PEM private key file (PKCS#1, PKCS#8 or SEC 1 EC).
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	kp, err := ParseKeyPair(certPEM, keyPEM, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", certFile, keyFile, err)
	}
	return kp, nil
}

// ParseKeyPair is LoadKeyPair on file contents; now decides the validity
// warnings.
func ParseKeyPair(certPEM, keyPEM []byte, now time.Time) (*KeyPair, error) {
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("the private key does not belong to the certificate (subject %q)", leaf.Subject.String())
	}
	kp := &KeyPair{Leaf: leaf, Chain: certs[1:], Key: key}
	for _, c := range certs {
		kp.TLS.Certificate = append(kp.TLS.Certificate, c.Raw)
	}
	kp.TLS.PrivateKey = key
	kp.TLS.Leaf = leaf
	switch {
	case now.After(leaf.NotAfter):
		kp.Warnings = append(kp.Warnings, fmt.Sprintf("certificate %q expired on %s", leaf.Subject.String(), leaf.NotAfter.UTC().Format(time.RFC3339)))
	case now.Before(leaf.NotBefore):
		kp.Warnings = append(kp.Warnings, fmt.Sprintf("certificate %q is not valid before %s", leaf.Subject.String(), leaf.NotBefore.UTC().Format(time.RFC3339)))
	case leaf.NotAfter.Sub(now) < 14*24*time.Hour:
		kp.Warnings = append(kp.Warnings, fmt.Sprintf("certificate %q expires on %s", leaf.Subject.String(), leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	return kp, nil
}

// LoadCertificates reads every certificate of a PEM file, e.g. a
// rootcertbundle.
func LoadCertificates(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return certs, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block of data, in order.
// Other block types are skipped; no certificate at all is an error.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}

// ParsePrivateKeyPEM parses the first private key block of data:
// "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" (PKCS#1) or "EC PRIVATE KEY"
// (SEC 1). Encrypted keys are refused.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block found (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			if _, enc := block.Headers["DEK-Info"]; enc {
				return nil, errors.New("the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
			}
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			if _, enc := block.Headers["DEK-Info"]; enc {
				return nil, errors.New("the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
			}
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
		default:
			continue // e.g. EC PARAMETERS before the key
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}
