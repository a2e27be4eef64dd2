package reference

import (
	"errors"
	"path"
	"regexp"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// The oracles below state each grammar a second way, as one regular
// expression over the whole input, the shape the router, storage and token
// packages used before this package existed. The fuzz targets check that
// the package accepts exactly what they accept.
var (
	repositoryOracle = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	scopeNameOracle  = regexp.MustCompile(`^(?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?/)?` +
		`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagOracle = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// The router's old, wider upload id grammar; the storage one is
	// uploadIDRE itself.
	routerUploadIDOracle  = regexp.MustCompile(`^[A-Za-z0-9_=-]{1,128}$`)
	storageUploadIDOracle = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}$`)
)

// checkRejection fails t unless err is an *Error wrapping sentinel with a
// short, non-empty reason.
func checkRejection(t *testing.T, in string, err, sentinel error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, sentinel) {
		t.Fatalf("%q: error %#v is not an *Error wrapping %v", in, err, sentinel)
	}
	if e.Reason == "" || len(e.Reason) > 400 {
		t.Fatalf("%q: reason %q is empty or too long", in, e.Reason)
	}
}

// checkSafePath fails t unless name, "/"-separated, is a clean relative
// path: no empty, "." or ".." element and none that storage reserves.
func checkSafePath(t *testing.T, name string) {
	t.Helper()
	if path.Clean("/"+name) != "/"+name {
		t.Fatalf("accepted %q, which is not a clean path", name)
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == "" || c == "." || c == ".." || strings.HasPrefix(c, "_") || strings.HasPrefix(c, ".") {
			t.Fatalf("accepted %q, which has the path element %q", name, c)
		}
	}
}

var nameSeeds = []string{
	"", "a", "library/alpine", "a.b/c__d/e---f", "A", "a/../b", "..", "/a", "a/", "a//b", "-a", "a-", "_a",
	"a___b", "a%2fb", "a\x00b", "caf\u00e9", "a\xff", strings.Repeat("a", 255), strings.Repeat("a", 256),
	"localhost:5000/alpine", "[::1]:5000/a", "Example.com/a", "localhost:/a", "a:b/c",
}

func FuzzValidateRepository(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateRepository(name)
		want := len(name) <= MaxNameLength && repositoryOracle.MatchString(name)
		if (err == nil) != want {
			t.Fatalf("ValidateRepository(%q) = %v, the whole-name grammar says accepted=%v", name, err, want)
		}
		if err != nil {
			checkRejection(t, name, err, ErrInvalidName)
			return
		}
		if len(name) == 0 || len(name) > MaxNameLength || strings.Contains(name, "..") {
			t.Fatalf("accepted %q: empty, too long or with ..", name)
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789._-/") != "" {
			t.Fatalf("accepted %q, which has a character outside a-z 0-9 . _ - /", name)
		}
		checkSafePath(t, name)
		if err := ValidateScopeName(name); err != nil {
			t.Fatalf("ValidateScopeName(%q) = %v for a valid repository name", name, err)
		}
	})
}

func FuzzValidateScopeName(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateScopeName(name)
		want := len(name) <= MaxNameLength && scopeNameOracle.MatchString(name)
		if (err == nil) != want {
			t.Fatalf("ValidateScopeName(%q) = %v, the token parser's old grammar says accepted=%v", name, err, want)
		}
		if err != nil {
			checkRejection(t, name, err, ErrInvalidName)
			return
		}
		if len(name) > MaxNameLength {
			t.Fatalf("accepted %q, longer than %d", name, MaxNameLength)
		}
		// Either the whole is a repository name, or a host comes first and
		// the rest is one.
		if ValidateRepository(name) != nil {
			host, rest, ok := strings.Cut(name, "/")
			if !ok || host == "" || ValidateRepository(rest) != nil {
				t.Fatalf("accepted %q, which is no host followed by a repository name", name)
			}
			name = rest
		}
		checkSafePath(t, name)
	})
}

func FuzzValidateTag(f *testing.F) {
	for _, s := range []string{"", "latest", "_x.Y-1", ".hidden", "-x", "..", "a/b", "a:b", "a\x00", "\u00fc",
		strings.Repeat("a", 128), strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		err := ValidateTag(tag)
		if want := tagOracle.MatchString(tag); (err == nil) != want {
			t.Fatalf("ValidateTag(%q) = %v, the tag grammar says accepted=%v", tag, err, want)
		}
		if err != nil {
			checkRejection(t, tag, err, ErrInvalidTag)
			return
		}
		if len(tag) == 0 || len(tag) > MaxTagLength || path.Base(tag) != tag || tag[0] == '.' || tag[0] == '-' {
			t.Fatalf("accepted %q: empty, too long, not one path element, or with a leading . or -", tag)
		}
		// A tag never holds ":", so as a reference it stays a tag.
		if got, d, err := ParseReference(tag); err != nil || got != tag || d != "" {
			t.Fatalf("ParseReference(%q) = %q, %q, %v; want the tag back", tag, got, d, err)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"", ":", "sha256:", "sha256:" + hex64, "sha512:" + hex128, "sha384:" + hex64 + hex64[:32],
		"sha256:" + strings.ToUpper(hex64), "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + hex64 + "\n", "a+b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		// What the router accepted before: go-digest's grammar,
		// restricted to sha256 and sha512.
		old, oldErr := digest.Parse(s)
		want := oldErr == nil && (old.Algorithm() == digest.SHA256 || old.Algorithm() == digest.SHA512)
		if (err == nil) != want {
			t.Fatalf("ParseDigest(%q) = %v, the router's old check says accepted=%v", s, err, want)
		}
		if err != nil {
			checkRejection(t, s, err, ErrInvalidDigest)
			if d != "" {
				t.Fatalf("ParseDigest(%q) = %q and an error", s, d)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDigest(%q) = %q, not the input", s, d)
		}
		if d.Validate() != nil || !d.Algorithm().Available() {
			t.Fatalf("ParseDigest(%q) = %q, which go-digest cannot use", s, d)
		}
		if path.Base(d.Encoded()) != d.Encoded() || strings.ContainsAny(d.Encoded(), "./") {
			t.Fatalf("ParseDigest(%q): encoded part is not one plain path element", s)
		}
		if tag, again, err := ParseReference(s); err != nil || tag != "" || again != d {
			t.Fatalf("ParseReference(%q) = %q, %q, %v; want the digest back", s, tag, again, err)
		}
	})
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"", "latest", "sha256:" + hex64, "sha512:" + hex128, "sha256:abc", "v1:2", "..", "a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		tag, d, err := ParseReference(ref)
		if err != nil {
			sentinel := ErrInvalidTag
			if strings.Contains(ref, ":") {
				sentinel = ErrInvalidDigest
			}
			checkRejection(t, ref, err, sentinel)
			if tag != "" || d != "" {
				t.Fatalf("ParseReference(%q) = %q, %q and an error", ref, tag, d)
			}
			return
		}
		switch {
		case tag != "" && d == "":
			if tag != ref || ValidateTag(tag) != nil {
				t.Fatalf("ParseReference(%q) = tag %q", ref, tag)
			}
		case tag == "" && d != "":
			if d.String() != ref {
				t.Fatalf("ParseReference(%q) = digest %q", ref, d)
			}
		default:
			t.Fatalf("ParseReference(%q) = %q, %q: want exactly one", ref, tag, d)
		}
	})
}

func FuzzValidateUploadID(f *testing.F) {
	for _, s := range []string{"", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "a", "-a", "_a", "=a", "a=", ".", "..", "a/b",
		"%2e", "a\x00", "\u00e9", strings.Repeat("a", 128), strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateUploadID(id)
		if want := storageUploadIDOracle.MatchString(id); (err == nil) != want {
			t.Fatalf("ValidateUploadID(%q) = %v, storage's old grammar says accepted=%v", id, err, want)
		}
		if err != nil {
			checkRejection(t, id, err, ErrInvalidUploadID)
			return
		}
		// Narrower than the router's old grammar, never wider.
		if !routerUploadIDOracle.MatchString(id) {
			t.Fatalf("accepted %q, which the router used to refuse", id)
		}
		if len(id) == 0 || len(id) > MaxUploadIDLength || path.Base(id) != id || strings.ContainsAny(id, "./\\%=") {
			t.Fatalf("accepted %q, which is not one plain path element", id)
		}
	})
}
