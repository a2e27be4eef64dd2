package reference

import (
	_ "crypto/sha256" // every digest ParseDigest returns can be computed
	_ "crypto/sha512"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	digest "github.com/opencontainers/go-digest"
)

// Limits, as distribution sets them.
const (
	// MaxNameLength bounds a repository name in bytes (with its host, in a
	// token scope).
	MaxNameLength = 255
	// MaxTagLength bounds a tag in bytes.
	MaxTagLength = 128
	// MaxUploadIDLength bounds an upload id in bytes.
	MaxUploadIDLength = 128
)

// Sentinels, one per grammar; every error of this package wraps one.
var (
	ErrInvalidName     = errors.New("invalid repository name")
	ErrInvalidTag      = errors.New("invalid tag")
	ErrInvalidDigest   = errors.New("invalid digest")
	ErrInvalidUploadID = errors.New("invalid upload id")
)

// Error reports input outside the grammar.
type Error struct {
	// Err is the sentinel: ErrInvalidName, ErrInvalidTag, ErrInvalidDigest
	// or ErrInvalidUploadID.
	Err error
	// Reason says what is wrong, in words a client can act on.
	Reason string
}

func (e *Error) Error() string { return e.Err.Error() + ": " + e.Reason }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// Reason returns the Reason of an *Error in err's chain, or err's text when
// there is none.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return err.Error()
}

func fail(sentinel error, format string, args ...any) error {
	return &Error{Err: sentinel, Reason: fmt.Sprintf(format, args...)}
}

// maxQuoted bounds how much of the input an error message quotes.
const maxQuoted = 64

// quote quotes s for a message, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:maxQuoted])
}

var (
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	// hostRE is a registry host as a token scope may name it: a domain
	// name (upper case allowed, as DNS ignores case) or a bracketed IPv6
	// address, with an optional port.
	hostRE = func() *regexp.Regexp {
		const (
			label  = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
			domain = label + `(?:\.` + label + `)*`
			ipv6   = `\[[a-fA-F0-9:]+\]`
		)
		return regexp.MustCompile(`^(?:` + domain + `|` + ipv6 + `)(?::[0-9]+)?$`)
	}()
	tagRE      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	uploadIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
)

// ValidateRepository checks a repository name as it appears in a /v2/ path
// and in storage: lower-case path components joined by "/", at most
// MaxNameLength bytes, no registry host.
func ValidateRepository(name string) error {
	if name == "" {
		return fail(ErrInvalidName, "the name is empty")
	}
	if len(name) > MaxNameLength {
		return fail(ErrInvalidName, "the name is %d characters long, the limit is %d", len(name), MaxNameLength)
	}
	return checkPath(name)
}

// ValidateScopeName checks the name of a repository in a token scope:
// a repository name, optionally after a registry host[:port]/, as in
// "localhost:5000/team/app" or "[::1]:5000/app", at most MaxNameLength
// bytes in all. The router and storage never see a host; they use
// ValidateRepository.
func ValidateScopeName(name string) error {
	if name == "" {
		return fail(ErrInvalidName, "the name is empty")
	}
	if len(name) > MaxNameLength {
		return fail(ErrInvalidName, "the name is %d characters long, the limit is %d", len(name), MaxNameLength)
	}
	err := checkPath(name)
	if err == nil {
		return nil
	}
	// A host ends at the first "/": no host has one.
	host, rest, ok := strings.Cut(name, "/")
	if !ok {
		return err
	}
	if !hostRE.MatchString(host) {
		if strings.ContainsAny(host, ":[]") {
			return fail(ErrInvalidName, "%s is not a registry host[:port] (a domain name or [IPv6 address], then an optional port)", quote(host))
		}
		return err
	}
	return checkPath(rest)
}

// checkPath checks the "/"-joined path components of a name.
func checkPath(name string) error {
	for c := range strings.SplitSeq(name, "/") {
		if !componentRE.MatchString(c) {
			return fail(ErrInvalidName, "%s", componentReason(c))
		}
	}
	return nil
}

// componentReason says why c is not a path component.
func componentReason(c string) string {
	if c == "" {
		return "empty path component (a leading, trailing or doubled /)"
	}
	for i, r := range c {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		case r >= 'A' && r <= 'Z':
			return fmt.Sprintf("path component %s has upper-case letters; repository names are lower case", quote(c))
		default:
			return fmt.Sprintf("path component %s has %s; only a-z, 0-9, '.', '_' and '-' are allowed", quote(c), quoteRuneAt(c, i))
		}
	}
	return fmt.Sprintf("path component %s must begin and end with a letter or digit, joined inside by one '.', one or two '_', or dashes", quote(c))
}

// quoteRuneAt quotes the character at s[i] for a message.
func quoteRuneAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("the byte %#x, which is not UTF-8", s[i])
	}
	return fmt.Sprintf("%q", r)
}

// ValidateTag checks a tag: a letter, digit or "_", then up to 127
// letters, digits, ".", "_" or "-".
func ValidateTag(tag string) error {
	if tagRE.MatchString(tag) {
		return nil
	}
	switch {
	case tag == "":
		return fail(ErrInvalidTag, "the tag is empty")
	case len(tag) > MaxTagLength:
		return fail(ErrInvalidTag, "the tag is %d characters long, the limit is %d", len(tag), MaxTagLength)
	case tag[0] == '.' || tag[0] == '-':
		return fail(ErrInvalidTag, "tag %s must begin with a letter, digit or '_'", quote(tag))
	}
	for i, r := range tag {
		if !isWordRune(r) && r != '.' && r != '-' {
			return fail(ErrInvalidTag, "tag %s has %s; only letters, digits, '.', '_' and '-' are allowed", quote(tag), quoteRuneAt(tag, i))
		}
	}
	// Not reached: every way to miss tagRE is named above.
	return fail(ErrInvalidTag, "tag %s is not [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", quote(tag))
}

// isWordRune reports whether r is an ASCII letter, digit or "_".
func isWordRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
}

// supported are the digest algorithms the registry accepts, with the length
// of their hex encoding.
var supported = []struct {
	alg    digest.Algorithm
	hexLen int
}{
	{digest.SHA256, 64},
	{digest.SHA512, 128},
}

// ParseDigest parses a digest a client sent: sha256:<64 hex> or
// sha512:<128 hex>, in lower case. The returned digest validates and its
// algorithm is available for hashing.
func ParseDigest(s string) (digest.Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok || alg == "" || enc == "" {
		return "", fail(ErrInvalidDigest, "%s is not algorithm:hex, as in sha256:<64 hex digits>", quote(s))
	}
	for _, a := range supported {
		if digest.Algorithm(alg) != a.alg {
			continue
		}
		if len(enc) != a.hexLen {
			return "", fail(ErrInvalidDigest, "a %s digest has %d hex digits, not %d", alg, a.hexLen, len(enc))
		}
		for i := 0; i < len(enc); i++ {
			if !isLowerHex(enc[i]) {
				return "", fail(ErrInvalidDigest, "the %s digest %s has %s; only lower-case hex digits 0-9 a-f are allowed", alg, quote(s), quoteRuneAt(enc, i))
			}
		}
		return digest.Digest(s), nil
	}
	return "", fail(ErrInvalidDigest, "algorithm %s is not supported (sha256 or sha512)", quote(alg))
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// ParseReference parses a manifest reference: a digest when it holds a ":"
// (ParseDigest), else a tag (ValidateTag). Exactly one of tag and dgst is
// set when err is nil.
func ParseReference(ref string) (tag string, dgst digest.Digest, err error) {
	if strings.Contains(ref, ":") {
		d, err := ParseDigest(ref)
		return "", d, err
	}
	if err := ValidateTag(ref); err != nil {
		return "", "", err
	}
	return ref, "", nil
}

// ValidateUploadID checks an upload id from a client: a letter or digit,
// then up to 127 letters, digits, "_" or "-".
//
// This is the narrower of the two grammars the router and storage used to
// have ([A-Za-z0-9_=-]{1,128} and this one). It accepts every id the
// registry generates and every id registry:2 and registry 3 wrote under
// _uploads (all of them UUIDs), and since it has neither "/" nor "." nor
// "%", an id is always exactly one path element below _uploads, never "."
// or "..". The wider grammar let through "=", which is no character of a
// storage path, and a leading "-" or "_", which no registry generates.
func ValidateUploadID(id string) error {
	if uploadIDRE.MatchString(id) {
		return nil
	}
	switch {
	case id == "":
		return fail(ErrInvalidUploadID, "the upload id is empty")
	case len(id) > MaxUploadIDLength:
		return fail(ErrInvalidUploadID, "the upload id is %d characters long, the limit is %d", len(id), MaxUploadIDLength)
	case id[0] == '_' || id[0] == '-':
		return fail(ErrInvalidUploadID, "upload id %s must begin with a letter or digit", quote(id))
	}
	for i, r := range id {
		if !isWordRune(r) && r != '-' {
			return fail(ErrInvalidUploadID, "upload id %s has %s; only letters, digits, '_' and '-' are allowed", quote(id), quoteRuneAt(id, i))
		}
	}
	// Not reached: every way to miss uploadIDRE is named above.
	return fail(ErrInvalidUploadID, "upload id %s is not [A-Za-z0-9][A-Za-z0-9_-]{0,127}", quote(id))
}

var _ error = (*Error)(nil)
