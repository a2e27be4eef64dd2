package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// ClientConfig returns a tls.Config for a client (TLS 1.2 or later) that
// trusts the CAs in caFiles (none: the system's) and presents the key pair
// in certFile and keyFile (none when certFile is empty). Its errors start
// with "rootcas" or "certificate", for the caller to prefix with the
// section of its config.
func ClientConfig(caFiles []string, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caFiles) > 0 {
		pool := x509.NewCertPool()
		for _, f := range caFiles {
			certs, err := LoadCertificates(f)
			if err != nil {
				return nil, fmt.Errorf("rootcas: %w", err)
			}
			for _, c := range certs {
				pool.AddCert(c)
			}
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return tc, nil
}
