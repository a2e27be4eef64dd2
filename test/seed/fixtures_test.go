package seed_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// headerEnd ends the comment each fixture starts with (after the shebang
// in a script), saying where it comes from and what was changed.
const headerEnd = "# (end of header)"

// readFixture returns testdata/name without its header.
func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	shebang := ""
	if strings.HasPrefix(s, "#!") {
		line, rest, _ := strings.Cut(s, "\n")
		shebang, s = line+"\n", rest
	}
	if !strings.HasPrefix(s, "# Test fixture: ") {
		t.Fatalf("testdata/%s does not start with its header (# Test fixture: ...)", name)
	}
	_, body, ok := strings.Cut(s, headerEnd+"\n")
	if !ok {
		t.Fatalf("testdata/%s: its header does not end with %q", name, headerEnd)
	}
	return shebang + body
}

// TestFixturesFollowTheSeed keeps the fixtures honest: each one is the
// seed's file (testdata/original, byte for byte) with a header, and every
// line that differs is one where the test fills in a value of its own
// (endpoints, ports, file paths), except for the ACL of auth_config.yml,
// which is fixed as `gatehouse config check` asks.
func TestFixturesFollowTheSeed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// freeSection is the top-level YAML key whose lines may change
		// freely ("" for none).
		freeSection string
		wantChanged int
	}{
		{name: "auth_config.yml", freeSection: "acl:", wantChanged: 9},
		{name: "docker-registry-config.yml", wantChanged: 10},
		{name: "registry-curl.sh", wantChanged: 3},
		{name: "cert.conf", wantChanged: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join("testdata", "original", tc.name))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(string(orig), "\n")
			got := strings.Split(readFixture(t, tc.name), "\n")
			if len(got) != len(want) {
				t.Fatalf("testdata/%s has %d lines after its header, the seed's file %d: lines were added or removed", tc.name, len(got), len(want))
			}
			changed, section := 0, ""
			for i := range want {
				if !strings.HasPrefix(want[i], " ") && !strings.HasPrefix(want[i], "#") && want[i] != "" {
					section = strings.Fields(want[i])[0]
				}
				if got[i] == want[i] {
					continue
				}
				changed++
				if !strings.Contains(got[i], "{{.") && (tc.freeSection == "" || section != tc.freeSection) {
					t.Errorf("testdata/%s line %d (after the header) differs from the seed's without filling in a test value:\n  seed:    %q\n  fixture: %q", tc.name, i+1, want[i], got[i])
				}
			}
			// The count pins the fixture: an extra change needs a look
			// (and a line in the header saying what it is).
			if changed != tc.wantChanged {
				t.Errorf("testdata/%s differs from the seed's file in %d lines, want %d", tc.name, changed, tc.wantChanged)
			}
		})
	}
}
