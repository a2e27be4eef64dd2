package s3

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeyMap(t *testing.T) {
	tests := []struct {
		root, path, key, dir, seg string
	}{
		{"", "/", "", "", "~/00000000000000000007"},
		{"", "/a/b", "a/b", "a/b/", "a/b~/00000000000000000007"},
		{"/reg", "/", "reg", "reg/", "reg~/00000000000000000007"},
		{"/reg", "/docker/registry/v2/blobs", "reg/docker/registry/v2/blobs", "reg/docker/registry/v2/blobs/", "reg/docker/registry/v2/blobs~/00000000000000000007"},
		{"a/b/", "/x", "a/b/x", "a/b/x/", "a/b/x~/00000000000000000007"},
	}
	for _, tt := range tests {
		root, err := rootPrefix(tt.root)
		if err != nil {
			t.Fatalf("rootPrefix(%q): %v", tt.root, err)
		}
		m := keyMap{root: root}
		got := []string{m.key(tt.path), m.dirPrefix(tt.path), m.segmentKey(tt.path, 7)}
		if diff := cmp.Diff([]string{tt.key, tt.dir, tt.seg}, got); diff != "" {
			t.Errorf("root %q path %q (-want +got):\n%s", tt.root, tt.path, diff)
		}
		if off, ok := segmentOffset(m.stateDir(tt.path), m.segmentKey(tt.path, 7)); !ok || off != 7 {
			t.Errorf("segmentOffset = %d, %v", off, ok)
		}
	}
	for _, bad := range []string{"/a b", "/../x", "/a//b", "/é"} {
		if _, err := rootPrefix(bad); err == nil {
			t.Errorf("rootPrefix(%q) accepted", bad)
		}
	}
}

func TestSegmentOffset(t *testing.T) {
	for _, k := range []string{"a~/", "a~/1", "a~/0000000000000000000x", "a~/-0000000000000000001", "b~/00000000000000000001", "a~/000000000000000000001"} {
		if _, ok := segmentOffset("a~/", k); ok {
			t.Errorf("segmentOffset accepted %q", k)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		rest string
		name string
		kind entryKind
	}{
		{"data", "data", entryFile},
		{"_layers/", "_layers", entryDir},
		{"data~/", "data", entryWriting},
		{"", "", entryNone},     // a directory marker object
		{"a b", "", entryNone},  // not a path name
		{"x~", "", entryNone},   // not ours
		{"..~/", "", entryNone}, // no such file
		{"bad name/", "", entryNone},
	}
	for _, tt := range tests {
		name, kind := classify(tt.rest)
		if name != tt.name || kind != tt.kind {
			t.Errorf("classify(%q) = %q, %v; want %q, %v", tt.rest, name, kind, tt.name, tt.kind)
		}
	}
}

func TestSplitWalkKey(t *testing.T) {
	tests := []struct {
		rest    string
		comps   []string
		writing bool
		ok      bool
	}{
		{"a/b/data", []string{"a", "b", "data"}, false, true},
		{"a/b/data~/00000000000000000000", []string{"a", "b", "data"}, true, true},
		{"data~/00000000000000000000", []string{"data"}, true, true},
		{"a/b c", nil, false, false},
		{"a//b", nil, false, false},
		{"a/", nil, false, false},
		{"a~", nil, false, false},
	}
	for _, tt := range tests {
		comps, writing, ok := splitWalkKey(tt.rest)
		if !cmp.Equal(comps, tt.comps) || writing != tt.writing || ok != tt.ok {
			t.Errorf("splitWalkKey(%q) = %q, %v, %v; want %q, %v, %v", tt.rest, comps, writing, ok, tt.comps, tt.writing, tt.ok)
		}
	}
}
