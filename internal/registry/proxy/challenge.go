package proxy

import "strings"

// challenge is one WWW-Authenticate challenge: its scheme (lower case)
// and parameters (keys lower case).
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges reads the challenges of a WWW-Authenticate header value
// (RFC 9110 section 11.6.1): `Bearer realm="...",service="...",scope="..."`,
// `Basic realm="..."`, several separated by commas. Quoted values may hold
// commas and escaped quotes. What cannot be read ends the parse.
func parseChallenges(h string) []challenge {
	var out []challenge
	s := h
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		scheme, rest := token(s)
		if scheme == "" {
			return out
		}
		c := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		s = rest
		for {
			s = strings.TrimLeft(s, " \t")
			// A parameter is name=value; a bare token starts the next
			// challenge.
			name, rest := token(s)
			if name == "" {
				break
			}
			after := strings.TrimLeft(rest, " \t")
			if !strings.HasPrefix(after, "=") {
				break
			}
			after = strings.TrimLeft(after[1:], " \t")
			var value string
			var ok bool
			if strings.HasPrefix(after, `"`) {
				value, after, ok = quoted(after)
				if !ok {
					out = append(out, c)
					return out
				}
			} else {
				value, after = token(after)
			}
			c.params[strings.ToLower(name)] = value
			s = strings.TrimLeft(after, " \t")
			if !strings.HasPrefix(s, ",") {
				break
			}
			// A comma either separates parameters or ends this
			// challenge; look past it.
			next := strings.TrimLeft(s[1:], " \t,")
			n, r := token(next)
			if n == "" || !strings.HasPrefix(strings.TrimLeft(r, " \t"), "=") {
				s = next
				break
			}
			s = next
		}
		out = append(out, c)
	}
}

// token splits off a run of token characters (RFC 9110 tchar, plus '/'
// for token68 values).
func token(s string) (tok, rest string) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~/:", c) >= 0
}

// quoted reads a quoted string at the start of s.
func quoted(s string) (value, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}
