package doctor

import (
	"fmt"
	"strings"
)

// Challenge is one challenge of a WWW-Authenticate header (RFC 9110
// section 11.6.1): a scheme and its parameters.
type Challenge struct {
	// Scheme as sent ("Bearer", "Basic"); compare with strings.EqualFold.
	Scheme string
	// Params maps lower-cased parameter names to their unquoted values
	// ("realm", "service", "scope", "error", "error_description").
	Params map[string]string
	// Token68 is the scheme's token68 form (Basic's old `Basic abc==`), if
	// it used one instead of parameters.
	Token68 string
}

// Is reports whether c's scheme is scheme, ignoring case.
func (c Challenge) Is(scheme string) bool { return strings.EqualFold(c.Scheme, scheme) }

// ParseChallenges parses the values of WWW-Authenticate headers into their
// challenges, in order. It follows RFC 9110's grammar and is lenient where
// servers commonly are not exact: an unquoted value runs to the next comma
// (so `realm=https://a/b` parses), and empty list elements are skipped. A
// header it cannot read is an error naming the position.
func ParseChallenges(headers []string) ([]Challenge, error) {
	var out []Challenge
	for _, h := range headers {
		cs, err := parseChallengeHeader(h)
		if err != nil {
			return out, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

type lexer struct {
	s string
	i int
}

func (l *lexer) eof() bool { return l.i >= len(l.s) }

func (l *lexer) skipSpace() {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
}

// skipSeparators skips spaces and commas (empty list elements).
func (l *lexer) skipSeparators() {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t' || l.s[l.i] == ',') {
		l.i++
	}
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

func (l *lexer) token() string {
	start := l.i
	for l.i < len(l.s) && isTchar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

func (l *lexer) errorf(format string, args ...any) error {
	return fmt.Errorf("WWW-Authenticate %q: at byte %d: %s", l.s, l.i, fmt.Sprintf(format, args...))
}

// quoted reads a quoted-string whose opening quote is at l.i.
func (l *lexer) quoted() (string, error) {
	l.i++ // opening quote
	var b strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch c {
		case '"':
			l.i++
			return b.String(), nil
		case '\\':
			if l.i+1 >= len(l.s) {
				return "", l.errorf("backslash at the end of a quoted string")
			}
			l.i++
			c = l.s[l.i]
		}
		b.WriteByte(c)
		l.i++
	}
	return "", l.errorf("quoted string not closed")
}

// bareValue reads an unquoted parameter value up to a comma or the end,
// trimming trailing spaces.
func (l *lexer) bareValue() string {
	start := l.i
	for l.i < len(l.s) && l.s[l.i] != ',' {
		l.i++
	}
	return strings.TrimRight(l.s[start:l.i], " \t")
}

// paramAhead reports whether a parameter (token BWS "=") starts at l.i,
// as opposed to the scheme of a new challenge or a token68.
func (l *lexer) paramAhead() bool {
	j := l.i
	for j < len(l.s) && isTchar(l.s[j]) {
		j++
	}
	if j == l.i {
		return false
	}
	for j < len(l.s) && (l.s[j] == ' ' || l.s[j] == '\t') {
		j++
	}
	if j >= len(l.s) || l.s[j] != '=' {
		return false
	}
	// "abc==" is a token68 (its padding), not a parameter.
	k := j
	for k < len(l.s) && l.s[k] == '=' {
		k++
	}
	return k-j == 1
}

// token68Ahead reports whether a token68 (and nothing else) follows up to
// the next comma or the end.
func (l *lexer) token68Ahead() bool {
	j := l.i
	for j < len(l.s) && isToken68Char(l.s[j]) {
		j++
	}
	if j == l.i {
		return false
	}
	for j < len(l.s) && l.s[j] == '=' {
		j++
	}
	for j < len(l.s) && (l.s[j] == ' ' || l.s[j] == '\t') {
		j++
	}
	return j >= len(l.s) || l.s[j] == ','
}

func parseChallengeHeader(h string) ([]Challenge, error) {
	l := &lexer{s: h}
	var out []Challenge
	l.skipSeparators()
	for !l.eof() {
		scheme := l.token()
		if scheme == "" {
			return out, l.errorf("expected an authentication scheme, found %q", l.s[l.i])
		}
		c := Challenge{Scheme: scheme, Params: map[string]string{}}
		if !l.eof() && l.s[l.i] != ' ' && l.s[l.i] != '\t' && l.s[l.i] != ',' {
			return out, l.errorf("unexpected %q after the scheme %q", l.s[l.i], scheme)
		}
		l.skipSpace()
		if !l.eof() && !l.paramAhead() && l.token68Ahead() {
			start := l.i
			for !l.eof() && l.s[l.i] != ',' {
				l.i++
			}
			c.Token68 = strings.TrimRight(l.s[start:l.i], " \t")
		} else {
			if err := l.params(&c); err != nil {
				return out, err
			}
		}
		out = append(out, c)
		l.skipSeparators()
	}
	return out, nil
}

// params reads the auth-params of c until the next challenge or the end.
func (l *lexer) params(c *Challenge) error {
	for {
		l.skipSeparators()
		if l.eof() || !l.paramAhead() {
			return nil
		}
		name := strings.ToLower(l.token())
		l.skipSpace()
		l.i++ // '='
		l.skipSpace()
		var value string
		if !l.eof() && l.s[l.i] == '"' {
			v, err := l.quoted()
			if err != nil {
				return err
			}
			value = v
			l.skipSpace()
			if !l.eof() && l.s[l.i] != ',' {
				return l.errorf("unexpected %q after the quoted value of %s", l.s[l.i], name)
			}
		} else {
			value = l.bareValue()
		}
		if _, dup := c.Params[name]; dup {
			return l.errorf("parameter %s given twice", name)
		}
		c.Params[name] = value
	}
}
