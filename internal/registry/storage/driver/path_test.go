package driver

import (
	"errors"
	"strings"
	"testing"
)

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/", true},
		{"/docker/registry/v2/blobs/sha256/ab/abcd/data", true},
		{"/a/.hidden/_x-y.z", true},
		{"", false}, {"a", false}, {"//", false}, {"/a//b", false}, {"/a/", false},
		{"/.", false}, {"/..", false}, {"/a/../b", false}, {"/a/./b", false},
		{"/a b", false}, {"/a\x00", false}, {"/a\\..\\b", false}, {"/ü", false}, {"/a:b", false},
		{"/" + strings.Repeat("a", MaxPathLength), false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			err := ValidatePath("test", tc.path)
			if tc.ok != (err == nil) {
				t.Fatalf("ValidatePath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
			}
			var ip *InvalidPathError
			if err != nil && !errors.As(err, &ip) {
				t.Errorf("error %T, want *InvalidPathError", err)
			}
		})
	}
}

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a/../b", "/a//b", "/.", "/a\x00", "/docker/registry/v2/repositories/x/_layers"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath("fuzz", p) != nil {
			return
		}
		// Whatever passes stays below the root once joined.
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") {
			t.Fatalf("accepted %q", p)
		}
		for _, c := range strings.Split(p[1:], "/") {
			if p != "/" && (c == "" || c == "." || c == "..") {
				t.Fatalf("accepted %q with component %q", p, c)
			}
		}
	})
}
