package acl

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"sync"
)

// field identifies one of the four string fields of a request that a
// pattern can match and a placeholder can refer to.
type field uint8

const (
	fAccount field = iota
	fType
	fName
	fService
	numFields
)

var fieldNames = [numFields]string{"account", "type", "name", "service"}

func fieldByName(s string) (field, bool) {
	for i, n := range fieldNames {
		if n == s {
			return field(i), true
		}
	}
	return 0, false
}

// segKind says what a piece of a pattern template stands for.
type segKind uint8

const (
	segLiteral segKind = iota // text copied as is
	segField                  // ${account}, ...: the request's value, escaped
	segCapture                // ${account:N}: a capture group of that field's regex, escaped
	segLabel                  // ${labels:x}: each of the user's values of label x, unescaped
)

type segment struct {
	kind  segKind
	text  string // the literal, or the placeholder as written
	field field  // segField, segCapture
	group int    // segCapture
	label string // segLabel
}

// pattern is one compiled match pattern: a /regexp/ or a path.Match glob,
// possibly with placeholders that are filled in per request.
type pattern struct {
	src string

	// Without placeholders, the pattern is compiled once.
	re      *regexp.Regexp // a /regexp/
	literal bool           // a glob without metacharacters: plain comparison
	glob    string         // the glob (or the literal)

	// With placeholders, the pattern is rendered per request.
	segs   []segment
	labels []string // distinct label names of segLabel segments, in order
}

func (p *pattern) dynamic() bool { return p.segs != nil }

// isRegexp reports whether a rendered pattern is a /regexp/, exactly as
// docker_auth decides it: longer than 2 and enclosed in slashes.
func isRegexp(s string) bool {
	return len(s) > 2 && s[0] == '/' && s[len(s)-1] == '/'
}

// parseTemplate splits s into literals and placeholders. It knows
// ${account}, ${type}, ${name}, ${service}, ${labels:<label>} and
// ${<field>:N}; anything else that starts with "${" is an error.
func parseTemplate(s string) ([]segment, error) {
	var segs []segment
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		if i > 0 {
			segs = append(segs, segment{kind: segLiteral, text: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unterminated placeholder %q", s[i:])
		}
		text := s[i : i+j+1]
		inner := text[2 : len(text)-1]
		s = s[i+j+1:]
		if label, ok := strings.CutPrefix(inner, "labels:"); ok {
			if label == "" {
				return nil, fmt.Errorf("placeholder %q names no label", text)
			}
			segs = append(segs, segment{kind: segLabel, text: text, label: label})
			continue
		}
		name, num, hasNum := strings.Cut(inner, ":")
		f, ok := fieldByName(name)
		if !ok {
			return nil, fmt.Errorf("unknown placeholder %q", text)
		}
		if !hasNum {
			segs = append(segs, segment{kind: segField, text: text, field: f})
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || num[0] == '+' || num[0] == '0' {
			return nil, fmt.Errorf("placeholder %q: the capture group must be a number from 1", text)
		}
		segs = append(segs, segment{kind: segCapture, text: text, field: f, group: n})
	}
	if s != "" {
		segs = append(segs, segment{kind: segLiteral, text: s})
	}
	return segs, nil
}

// compilePattern compiles src. Placeholders are checked for syntax only;
// whether a capture group exists is checked by the caller, which knows the
// other fields of the entry.
func compilePattern(src string) (*pattern, error) {
	p := &pattern{src: src}
	if !strings.Contains(src, "${") {
		if isRegexp(src) {
			re, err := regexp.Compile(src[1 : len(src)-1])
			if err != nil {
				return nil, fmt.Errorf("invalid regexp %s: %v", src, reErrText(err))
			}
			p.re = re
			return p, nil
		}
		if _, err := path.Match(src, ""); err != nil {
			return nil, fmt.Errorf("invalid glob %q: %w", src, err)
		}
		p.glob = src
		p.literal = !strings.ContainsAny(src, `*?[\`)
		return p, nil
	}
	segs, err := parseTemplate(src)
	if err != nil {
		return nil, err
	}
	p.segs = segs
	for _, s := range segs {
		if s.kind == segLabel && !contains(p.labels, s.label) {
			p.labels = append(p.labels, s.label)
		}
	}
	// Check the shape with a harmless value in every placeholder. A label
	// value is inserted as written and may still break the pattern at
	// request time; then the pattern does not match, as in docker_auth.
	var b strings.Builder
	for _, s := range segs {
		if s.kind == segLiteral {
			b.WriteString(s.text)
		} else {
			b.WriteString("x")
		}
	}
	sample := b.String()
	if isRegexp(sample) {
		if _, err := regexp.Compile(sample[1 : len(sample)-1]); err != nil {
			return nil, fmt.Errorf("invalid regexp %s: %v", src, reErrText(err))
		}
	} else if _, err := path.Match(sample, ""); err != nil {
		return nil, fmt.Errorf("invalid glob %q: %w", src, err)
	}
	return p, nil
}

func reErrText(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s in %q", se.Code, se.Expr)
	}
	return err.Error()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// escape makes a request value safe to insert into a pattern: it stands
// for itself in a regexp and in a glob. Beyond regexp.QuoteMeta (what
// docker_auth does) it escapes '/', which means the same in both, so that
// a value cannot make a glob look like a /regexp/.
func escape(s string) string {
	q := regexp.QuoteMeta(s)
	if strings.IndexByte(q, '/') < 0 {
		return q
	}
	return strings.ReplaceAll(q, "/", `\/`)
}

// matchStatic matches a pattern without placeholders.
func (p *pattern) matchStatic(s string) bool {
	switch {
	case p.re != nil:
		return p.re.MatchString(s)
	case p.literal:
		return p.glob == s
	default:
		ok, err := path.Match(p.glob, s)
		return err == nil && ok
	}
}

// regexpCache holds regexps compiled from rendered patterns. It is bounded:
// when full it starts over, so request values cannot grow it without limit.
type regexpCache struct {
	mu sync.Mutex
	m  map[string]*regexp.Regexp // nil value: does not compile
}

const regexpCacheSize = 4096

func (c *regexpCache) get(expr string) *regexp.Regexp {
	c.mu.Lock()
	re, ok := c.m[expr]
	c.mu.Unlock()
	if ok {
		return re
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		re = nil
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= regexpCacheSize {
		c.m = make(map[string]*regexp.Regexp)
	}
	c.m[expr] = re
	c.mu.Unlock()
	return re
}

// matchRendered matches a rendered pattern the way docker_auth does: a
// pattern that does not compile does not match.
func (c *regexpCache) matchRendered(p, s string) bool {
	if isRegexp(p) {
		re := c.get(p[1 : len(p)-1])
		return re != nil && re.MatchString(s)
	}
	ok, err := path.Match(p, s)
	return err == nil && ok
}
