package authserver

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// parseBasic reads an Authorization header value. ok is false when the
// header is absent or not Basic; err is set when it is Basic but malformed.
func parseBasic(h string) (user string, pass secret.Secret, ok bool, err error) {
	if h == "" {
		return "", "", false, nil
	}
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false, nil
	}
	raw, decErr := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if decErr != nil {
		return "", "", false, errors.New("malformed Basic credentials (not base64)")
	}
	u, p, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false, errors.New("malformed Basic credentials (no colon between user and password)")
	}
	return u, secret.Secret(p), true, nil
}

// errNoClientAddr is docker_auth's answer when the real-IP header is
// missing or empty.
var errNoClientAddr = errors.New("client address not provided")

// clientIP returns the request's client address: RemoteAddr, or the entry
// at position pos of the comma-separated header (negative counts from the
// end: -1 is the last entry, the one the nearest proxy added).
func clientIP(r *http.Request, header string, pos int) (net.IP, error) {
	if header == "" {
		return parseIP(r.RemoteAddr)
	}
	v := r.Header.Get(header)
	if strings.TrimSpace(v) == "" {
		return nil, errNoClientAddr
	}
	parts := strings.Split(v, ",")
	i := pos
	if i < 0 {
		i += len(parts)
	}
	if i < 0 || i >= len(parts) {
		return nil, fmt.Errorf("%s has %d address(es); real_ip_pos %d is out of range", header, len(parts), pos)
	}
	return parseIP(strings.TrimSpace(parts[i]))
}

// parseIP parses an IPv4 or IPv6 address with an optional port; IPv6 with
// a port is bracketed.
func parseIP(s string) (net.IP, error) {
	if ip := net.ParseIP(s); ip != nil {
		return ip, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		if _, perr := strconv.ParseUint(port, 10, 16); perr == nil {
			if ip := net.ParseIP(host); ip != nil {
				return ip, nil
			}
		}
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if ip := net.ParseIP(s[1 : len(s)-1]); ip != nil {
			return ip, nil
		}
	}
	return nil, fmt.Errorf("unable to parse client address %q", truncate(s, 64))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// sanitizedQuery renders a query for the access log without values that
// are secrets.
func sanitizedQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "password", "refresh_token", "access_token", "token", "client_secret", "code":
			parts[i] = k + "=***"
		}
	}
	return strings.Join(parts, "&")
}
