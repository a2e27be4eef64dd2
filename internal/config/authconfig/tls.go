package authconfig

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

var tlsVersions = map[string]uint16{
	"TLS10": tls.VersionTLS10,
	"TLS11": tls.VersionTLS11,
	"TLS12": tls.VersionTLS12,
	"TLS13": tls.VersionTLS13,
}

var tlsCurves = map[string]tls.CurveID{
	"P256":   tls.CurveP256,
	"P384":   tls.CurveP384,
	"P521":   tls.CurveP521,
	"X25519": tls.X25519,
}

// parseNumber reads a decimal or 0x-prefixed uint16, as docker_auth accepts
// numbers for TLS settings.
func parseNumber(s string) (uint16, bool) {
	n, err := strconv.ParseUint(s, 0, 16)
	return uint16(n), err == nil
}

// tlsSettings checks and resolves tls_min_version, tls_cipher_suites and
// tls_curve_preferences.
func (v *validator) tlsSettings(tlsOn bool) {
	s := &v.cfg.Server
	if !tlsOn {
		for _, k := range []string{"tls_min_version", "tls_cipher_suites", "tls_curve_preferences"} {
			if v.present("server." + k) {
				v.warnAt("server."+k, "server."+k+" has no effect without server.certificate and server.key", "")
			}
		}
	}
	if name := s.TLSMinVersion; name != "" {
		ver, ok := tlsVersions[strings.ToUpper(name)]
		if !ok {
			if n, isNum := parseNumber(name); isNum && n >= tls.VersionTLS10 && n <= tls.VersionTLS13 {
				ver, ok = n, true
			}
		}
		switch {
		case strings.EqualFold(name, "SSL30") || name == "768" || strings.EqualFold(name, "0x0300"):
			v.errAt("server.tls_min_version", "server.tls_min_version SSL30: SSL 3.0 is broken (POODLE) and Go does not speak it", "tls_min_version: TLS12")
		case !ok:
			v.errAt("server.tls_min_version", fmt.Sprintf("server.tls_min_version %q is not a TLS version", name), "use one of TLS10, TLS11, TLS12, TLS13")
		default:
			s.MinVersion = ver
			if ver < tls.VersionTLS12 {
				v.warnAt("server.tls_min_version", fmt.Sprintf("server.tls_min_version %s allows TLS versions that are deprecated (RFC 8996)", name), "tls_min_version: TLS12")
			}
		}
	}
	if len(s.TLSCipherSuites) > 0 && s.MinVersion == tls.VersionTLS13 {
		v.errAt("server.tls_cipher_suites", "server.tls_cipher_suites cannot be set with tls_min_version TLS13: TLS 1.3 suites are not configurable", "remove tls_cipher_suites")
	}
	secure := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		secure[cs.Name] = cs.ID
	}
	insecure := map[string]uint16{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = cs.ID
	}
	for i, raw := range s.TLSCipherSuites {
		path := "server.tls_cipher_suites." + strconv.Itoa(i)
		name := raw
		if n, isNum := parseNumber(raw); isNum {
			name = tls.CipherSuiteName(n)
		}
		if id, ok := secure[name]; ok {
			s.CipherSuites = append(s.CipherSuites, id)
			continue
		}
		if _, bad := insecure[name]; bad {
			v.errAt(path, fmt.Sprintf("cipher suite %s is insecure and refused", name), "use suites from: "+strings.Join(sortedKeys(secure), ", "))
			continue
		}
		v.errAt(path, fmt.Sprintf("cipher suite %q is not one Go knows", raw), "use suites from: "+strings.Join(sortedKeys(secure), ", "))
	}
	for i, name := range s.TLSCurvePreferences {
		path := "server.tls_curve_preferences." + strconv.Itoa(i)
		id, ok := tlsCurves[strings.ToUpper(name)]
		if !ok {
			if n, isNum := parseNumber(name); isNum && !strings.HasPrefix(tls.CurveID(n).String(), "CurveID(") {
				id, ok = tls.CurveID(n), true
			}
		}
		if !ok {
			v.errAt(path, fmt.Sprintf("curve %q is not P256, P384, P521 or X25519", name), "tls_curve_preferences: [X25519, P256]")
			continue
		}
		s.CurvePreferences = append(s.CurvePreferences, id)
	}
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
