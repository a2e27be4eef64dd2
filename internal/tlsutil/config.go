package tlsutil

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ServerOptions are the TLS settings of a server, named as in docker_auth's
// server section.
type ServerOptions struct {
	// GetCertificate supplies the certificate, e.g. Reloader.GetCertificate.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// MinVersion is a name (TLS10..TLS13) or number; empty means TLS12.
	MinVersion string
	// CipherSuites are Go constant names (or numbers); empty means Go's
	// default. Not allowed with MinVersion TLS13, whose suites are fixed.
	CipherSuites []string
	// Curves are P256, P384, P521, X25519 (or numbers); empty means Go's
	// default.
	Curves []string
}

// ServerConfig returns a tls.Config for a server with the given options.
func ServerConfig(opts ServerOptions) (*tls.Config, error) {
	if opts.GetCertificate == nil {
		return nil, errors.New("TLS server: no certificate")
	}
	cfg := &tls.Config{
		GetCertificate: opts.GetCertificate,
		MinVersion:     tls.VersionTLS12,
	}
	if opts.MinVersion != "" {
		v, err := ParseTLSVersion(opts.MinVersion)
		if err != nil {
			return nil, err
		}
		cfg.MinVersion = v
	}
	if len(opts.CipherSuites) > 0 {
		if cfg.MinVersion >= tls.VersionTLS13 {
			return nil, errors.New("TLS cipher suites cannot be configured with minimum version TLS13 (TLS 1.3 suites are fixed); remove tls_cipher_suites or lower tls_min_version")
		}
		ids, err := ParseCipherSuites(opts.CipherSuites)
		if err != nil {
			return nil, err
		}
		cfg.CipherSuites = ids
	}
	if len(opts.Curves) > 0 {
		ids, err := ParseCurves(opts.Curves)
		if err != nil {
			return nil, err
		}
		cfg.CurvePreferences = ids
	}
	return cfg, nil
}

var versions = []struct {
	name string
	id   uint16
}{
	{"TLS10", tls.VersionTLS10},
	{"TLS11", tls.VersionTLS11},
	{"TLS12", tls.VersionTLS12},
	{"TLS13", tls.VersionTLS13},
}

// ParseTLSVersion parses a TLS version by docker_auth's names (TLS10,
// TLS11, TLS12, TLS13; also "1.2" style) or as a number (771 or 0x0303).
// SSL 3.0 and unknown versions are refused.
func ParseTLSVersion(s string) (uint16, error) {
	t := strings.TrimSpace(s)
	for _, v := range versions {
		if strings.EqualFold(t, v.name) || t == "1."+v.name[4:] {
			return v.id, nil
		}
	}
	if strings.EqualFold(t, "SSL30") || t == "768" || strings.EqualFold(t, "0x0300") {
		return 0, fmt.Errorf("TLS version %q: SSL 3.0 is broken and not supported; use TLS12 or TLS13", s)
	}
	if n, err := strconv.ParseUint(t, 0, 16); err == nil {
		for _, v := range versions {
			if uint16(n) == v.id {
				return v.id, nil
			}
		}
	}
	return 0, fmt.Errorf("unknown TLS version %q (valid: TLS10, TLS11, TLS12, TLS13)", s)
}

// ParseCipherSuites parses cipher suite names as Go's crypto/tls constants
// name them (e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) or numbers. Suites
// Go considers insecure are refused.
func ParseCipherSuites(names []string) ([]uint16, error) {
	var out []uint16
	for _, n := range names {
		t := strings.TrimSpace(n)
		id, ok := suiteByName(t)
		if !ok {
			if v, err := strconv.ParseUint(t, 0, 16); err == nil {
				id, ok = uint16(v), true
			}
		}
		if !ok {
			return nil, fmt.Errorf("unknown TLS cipher suite %q (valid: %s)", n, strings.Join(SecureCipherSuiteNames(), ", "))
		}
		if slices.ContainsFunc(tls.InsecureCipherSuites(), func(s *tls.CipherSuite) bool { return s.ID == id }) {
			return nil, fmt.Errorf("TLS cipher suite %q is insecure and not supported (valid: %s)", n, strings.Join(SecureCipherSuiteNames(), ", "))
		}
		if !slices.ContainsFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.ID == id }) {
			return nil, fmt.Errorf("unknown TLS cipher suite %q (valid: %s)", n, strings.Join(SecureCipherSuiteNames(), ", "))
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

func suiteByName(name string) (uint16, bool) {
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if s.Name == name {
			return s.ID, true
		}
	}
	return 0, false
}

// SecureCipherSuiteNames lists the suite names ParseCipherSuites accepts.
func SecureCipherSuiteNames() []string {
	var names []string
	for _, s := range tls.CipherSuites() {
		names = append(names, s.Name)
	}
	return names
}

var curves = []struct {
	name string
	id   tls.CurveID
}{
	{"P256", tls.CurveP256},
	{"P384", tls.CurveP384},
	{"P521", tls.CurveP521},
	{"X25519", tls.X25519},
}

// ParseCurves parses curve names P256, P384, P521, X25519 (also "P-256"
// style) or numbers.
func ParseCurves(names []string) ([]tls.CurveID, error) {
	var out []tls.CurveID
	for _, n := range names {
		t := strings.ReplaceAll(strings.TrimSpace(n), "-", "")
		var (
			id tls.CurveID
			ok bool
		)
		for _, c := range curves {
			if strings.EqualFold(t, c.name) {
				id, ok = c.id, true
			}
		}
		if !ok {
			if v, err := strconv.ParseUint(t, 0, 16); err == nil {
				for _, c := range curves {
					if tls.CurveID(v) == c.id {
						id, ok = c.id, true
					}
				}
			}
		}
		if !ok {
			return nil, fmt.Errorf("unknown TLS curve %q (valid: P256, P384, P521, X25519)", n)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}
