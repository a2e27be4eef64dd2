package reference

import (
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

const (
	hex64  = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	hex128 = hex64 + hex64
)

// grammarCase is one input of a table: wantErr is a substring of the
// reason, empty for an accepted input.
type grammarCase struct {
	name, in, wantErr string
}

// checkResult fails t unless err matches tc: nil for an accepted input,
// else an *Error wrapping sentinel whose reason holds tc.wantErr.
func checkResult(t *testing.T, fn string, tc grammarCase, err, sentinel error) {
	t.Helper()
	if tc.wantErr == "" {
		if err != nil {
			t.Fatalf("%s(%q) = %v, want nil", fn, tc.in, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("%s(%q) = nil, want an error containing %q", fn, tc.in, tc.wantErr)
	}
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, sentinel) {
		t.Fatalf("%s(%q) = %#v, want an *Error wrapping %v", fn, tc.in, err, sentinel)
	}
	if !strings.Contains(e.Reason, tc.wantErr) {
		t.Fatalf("%s(%q) reason = %q, want it to contain %q", fn, tc.in, e.Reason, tc.wantErr)
	}
	if got, want := err.Error(), sentinel.Error()+": "+e.Reason; got != want {
		t.Fatalf("%s(%q).Error() = %q, want %q", fn, tc.in, got, want)
	}
}

// nameCases are the cases ValidateRepository and ValidateScopeName agree on.
var nameCases = []grammarCase{
	{"one component", "alpine", ""},
	{"one letter", "a", ""},
	{"one digit", "0", ""},
	{"two components", "library/alpine", ""},
	{"many components", "a/b/c/d/e", ""},
	{"separators", "a.b/c__d/e---f/g_h/i-j", ""},
	{"digits around separators", "0.9/1_2/3-4", ""},
	{"255 bytes", strings.Repeat("a", 255), ""},
	{"255 bytes in components", strings.Repeat("a/", 127) + "a", ""},

	{"empty", "", "the name is empty"},
	{"256 bytes", strings.Repeat("a", 256), "256 characters long, the limit is 255"},
	{"256 bytes in components", strings.Repeat("a/", 127) + "ab", "256 characters long, the limit is 255"},
	{"upper case", "Alpine", "upper-case"},
	{"upper case in a later component", "library/alpinE", "upper-case"},
	{"dot dot", "..", `path component ".." must begin and end`},
	{"dot dot inside", "a/../b", `path component ".."`},
	{"dot", "./a", `path component "."`},
	{"leading slash", "/a", "empty path component"},
	{"trailing slash", "a/", "empty path component"},
	{"double slash", "a//b", "empty path component"},
	{"only a slash", "/", "empty path component"},
	{"leading dash", "-a", `path component "-a" must begin`},
	{"trailing dash", "a-", `path component "a-" must begin`},
	{"leading underscore", "_a", `path component "_a" must begin`},
	{"storage directory", "a/_manifests", `path component "_manifests" must begin`},
	{"trailing underscore", "a_", "must begin and end"},
	{"leading dot", ".a", "must begin and end"},
	{"trailing dot", "a.", "must begin and end"},
	{"two dots", "a..b", "must begin and end"},
	{"three underscores", "a___b", "must begin and end"},
	{"mixed separators", "a._b", "must begin and end"},
	{"dash then dot", "a-.b", "must begin and end"},
	{"percent", "a%2fb", `'%'`},
	{"percent-encoded dots", "%2e%2e/a", `'%'`},
	{"NUL", "a\x00b", `'\x00'`},
	{"unicode", "caf\u00e9", `'é'`},
	{"not UTF-8", "a\xffb", "the byte 0xff, which is not UTF-8"},
	{"space", "a b", `' '`},
	{"backslash", `a\b`, `'\\'`},
	{"tag", "alpine:latest", `':'`},
	{"digest", "alpine@sha256:" + hex64, `'@'`},
}

func TestValidateRepository(t *testing.T) {
	cases := append(append([]grammarCase{}, nameCases...),
		grammarCase{"host and port", "localhost:5000/alpine", `':'`},
		grammarCase{"dotted host", "Example.com/alpine", "upper-case"},
		grammarCase{"ipv6 host", "[::1]/alpine", `'['`},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, "ValidateRepository", tc, ValidateRepository(tc.in), ErrInvalidName)
		})
	}
}

func TestValidateScopeName(t *testing.T) {
	cases := append(append([]grammarCase{}, nameCases...),
		grammarCase{"host and port", "localhost:5000/alpine", ""},
		grammarCase{"host without port", "localhost/a/b", ""},
		grammarCase{"dotted host", "coreos1.domain.com/team/app", ""},
		grammarCase{"upper-case host", "Example.COM:443/app", ""},
		grammarCase{"dashed host", "my-registry.example:1/x", ""},
		grammarCase{"ipv6 host", "[::1]:5000/a/b", ""},
		grammarCase{"ipv6 host without port", "[fe80::1]/a", ""},
		grammarCase{"255 bytes with host", "localhost:5000/" + strings.Repeat("a", 255-len("localhost:5000/")), ""},

		grammarCase{"256 bytes with host", "localhost:5000/" + strings.Repeat("a", 256-len("localhost:5000/")), "256 characters long"},
		grammarCase{"host only", "localhost:5000", `':'`},
		grammarCase{"host and slash", "localhost:5000/", "empty path component"},
		grammarCase{"host and double slash", "localhost:5000//a", "empty path component"},
		grammarCase{"empty port", "localhost:/a", `"localhost:" is not a registry host`},
		grammarCase{"named port", "localhost:http/a", `"localhost:http" is not a registry host`},
		grammarCase{"bad ipv6", "[zz]:5000/a", `"[zz]:5000" is not a registry host`},
		grammarCase{"unclosed ipv6", "[::1:5000/a", "is not a registry host"},
		grammarCase{"host with leading dash", "-host.com/a", `path component "-host.com" must begin`},
		grammarCase{"host with empty label", "a..com/b", "must begin and end"},
		grammarCase{"upper case after host", "localhost:5000/Alpine", "upper-case"},
		grammarCase{"dot dot after host", "localhost:5000/../a", `path component ".."`},
		grammarCase{"port after first component", "a/b:5000/c", `':'`},
		grammarCase{"percent after host", "localhost:5000/a%2f", `'%'`},
		grammarCase{"unicode host", "r\u00e9gistry.com/a", `'é'`},
		grammarCase{"NUL after host", "localhost:5000/a\x00", `'\x00'`},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, "ValidateScopeName", tc, ValidateScopeName(tc.in), ErrInvalidName)
		})
	}
}

func TestValidateTag(t *testing.T) {
	cases := []grammarCase{
		{"word", "latest", ""},
		{"version", "v1.2.3", ""},
		{"upper case", "Latest", ""},
		{"leading underscore", "_x.Y-1", ""},
		{"digit", "0", ""},
		{"dots inside", "a..b", ""},
		{"trailing dot", "a.", ""},
		{"128 bytes", strings.Repeat("a", 128), ""},

		{"empty", "", "the tag is empty"},
		{"129 bytes", strings.Repeat("a", 129), "129 characters long, the limit is 128"},
		{"leading dot", ".hidden", "must begin with a letter, digit or '_'"},
		{"dot dot", "..", "must begin with"},
		{"leading dash", "-x", "must begin with"},
		{"slash", "a/b", `'/'`},
		{"path", "../x", "must begin with"},
		{"colon", "a:b", `':'`},
		{"percent", "a%20b", `'%'`},
		{"NUL", "a\x00", `'\x00'`},
		{"unicode", "\u00fcber", `'ü'`},
		{"not UTF-8", "a\xc3", "the byte 0xc3, which is not UTF-8"},
		{"space", "a b", `' '`},
		{"plus", "1.0+build", `'+'`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, "ValidateTag", tc, ValidateTag(tc.in), ErrInvalidTag)
		})
	}
}

func TestParseDigest(t *testing.T) {
	cases := []grammarCase{
		{"sha256", "sha256:" + hex64, ""},
		{"sha512", "sha512:" + hex128, ""},

		{"empty", "", `"" is not algorithm:hex`},
		{"no colon", "sha256", "is not algorithm:hex"},
		{"no hex", "sha256:", "is not algorithm:hex"},
		{"no algorithm", ":" + hex64, "is not algorithm:hex"},
		{"short", "sha256:abc", "a sha256 digest has 64 hex digits, not 3"},
		{"sha512 with 64 digits", "sha512:" + hex64, "a sha512 digest has 128 hex digits, not 64"},
		{"trailing newline", "sha256:" + hex64 + "\n", "not 65"},
		{"upper-case hex", "sha256:" + strings.ToUpper(hex64), `'F'; only lower-case hex`},
		{"not hex", "sha256:" + strings.Repeat("g", 64), `'g'`},
		{"second colon", "sha256:" + hex64[:63] + ":", `':'`},
		{"NUL", "sha256:" + hex64[:63] + "\x00", `'\x00'`},
		{"unicode", "sha256:" + hex64[:62] + "\u00e9", `'é'`},
		{"percent", "sha256:" + hex64[:61] + "%2f", `'%'`},
		{"slash", "sha256:" + hex64[:62] + "/.", `'/'`},
		{"sha384", "sha384:" + hex64 + hex64[:32], `algorithm "sha384" is not supported (sha256 or sha512)`},
		{"md5", "md5:d41d8cd98f00b204e9800998ecf8427e", `algorithm "md5" is not supported`},
		{"upper-case algorithm", "SHA256:" + hex64, `algorithm "SHA256" is not supported`},
		{"algorithm with encoding", "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", "not supported"},
		{"path as algorithm", "../sha256:" + hex64, "not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDigest(tc.in)
			checkResult(t, "ParseDigest", tc, err, ErrInvalidDigest)
			if err != nil {
				if d != "" {
					t.Errorf("ParseDigest(%q) = %q with an error, want \"\"", tc.in, d)
				}
				return
			}
			if d.String() != tc.in || d.Validate() != nil || !d.Algorithm().Available() {
				t.Errorf("ParseDigest(%q) = %q: not the input, or not a usable digest", tc.in, d)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		name, in string
		tag      string
		dgst     digest.Digest
		sentinel error // nil for success
	}{
		{"tag", "latest", "latest", "", nil},
		{"128-byte tag", strings.Repeat("x", 128), strings.Repeat("x", 128), "", nil},
		{"sha256", "sha256:" + hex64, "", digest.Digest("sha256:" + hex64), nil},
		{"sha512", "sha512:" + hex128, "", digest.Digest("sha512:" + hex128), nil},
		{"empty", "", "", "", ErrInvalidTag},
		{"129-byte tag", strings.Repeat("x", 129), "", "", ErrInvalidTag},
		{"dot dot", "..", "", "", ErrInvalidTag},
		{"slash", "a/b", "", "", ErrInvalidTag},
		{"short digest", "sha256:abc", "", "", ErrInvalidDigest},
		{"sha384", "sha384:" + hex64 + hex64[:32], "", "", ErrInvalidDigest},
		{"colon makes a digest", "v1:2", "", "", ErrInvalidDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag, d, err := ParseReference(tt.in)
			if tt.sentinel != nil {
				if !errors.Is(err, tt.sentinel) || tag != "" || d != "" {
					t.Fatalf("ParseReference(%q) = %q, %q, %v; want an error wrapping %v", tt.in, tag, d, err, tt.sentinel)
				}
				return
			}
			if err != nil || tag != tt.tag || d != tt.dgst {
				t.Fatalf("ParseReference(%q) = %q, %q, %v; want %q, %q", tt.in, tag, d, err, tt.tag, tt.dgst)
			}
		})
	}
}

func TestValidateUploadID(t *testing.T) {
	cases := []grammarCase{
		{"UUID as generated here and by registry:2", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", ""},
		{"upper-case UUID", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", ""},
		{"word", "abc-123", ""},
		{"underscore inside", "a_b", ""},
		{"one byte", "a", ""},
		{"128 bytes", strings.Repeat("a", 128), ""},

		{"empty", "", "the upload id is empty"},
		{"129 bytes", strings.Repeat("a", 129), "129 characters long, the limit is 128"},
		{"leading dash", "-rf", "must begin with a letter or digit"},
		{"leading underscore", "_x", "must begin with a letter or digit"},
		{"dot", ".", `'.'`},
		{"dot dot", "..", `'.'`},
		{"dot inside", "a.b", `'.'`},
		{"slash", "a/b", `'/'`},
		{"path", "a/../../b", `'/'`},
		{"backslash", `a\b`, `'\\'`},
		{"equals", "a=", `'='`},
		{"leading equals", "=a", `'='`},
		{"percent", "%2e%2e", `'%'`},
		{"NUL", "a\x00", `'\x00'`},
		{"unicode", "\u00e9t\u00e9", `'é'`},
		{"not UTF-8", "a\x80", "the byte 0x80, which is not UTF-8"},
		{"space", "a b", `' '`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, "ValidateUploadID", tc, ValidateUploadID(tc.in), ErrInvalidUploadID)
		})
	}
}

// TestLongInputIsNotQuotedWhole: an error quotes at most a short piece of
// what a client sent.
func TestLongInputIsNotQuotedWhole(t *testing.T) {
	long := strings.Repeat("Z", 10000)
	errs := map[string]error{
		"ValidateRepository": ValidateRepository("a/" + long[:200]),
		"ValidateScopeName":  ValidateScopeName("a:b/" + long[:200]),
		"ValidateTag":        ValidateTag(long[:100] + "/"),
		"ValidateUploadID":   ValidateUploadID(long[:100] + "/"),
	}
	_, errs["ParseDigest"] = ParseDigest("sha256:" + long)
	_, errs["ParseDigest/algorithm"] = ParseDigest(long + ":" + hex64)
	for fn, err := range errs {
		if err == nil {
			t.Errorf("%s accepted a long bad input", fn)
			continue
		}
		if n := len(err.Error()); n > 250 {
			t.Errorf("%s: error is %d bytes long: %s", fn, n, err)
		}
	}
}

func TestReason(t *testing.T) {
	err := ValidateTag("")
	if got, want := Reason(err), "the tag is empty"; got != want {
		t.Errorf("Reason(%v) = %q, want %q", err, got, want)
	}
	other := errors.New("other")
	if got := Reason(other); got != "other" {
		t.Errorf("Reason(%v) = %q, want %q", other, got, "other")
	}
}
