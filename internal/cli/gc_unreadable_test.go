package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestGCCommandUnreadableManifest: a manifest gc cannot read stops it, in a
// dry run too, with an error naming the repository and the manifest, and
// deletes nothing; a missing manifest blob is a warning on stderr, also
// with --quiet.
func TestGCCommandUnreadableManifest(t *testing.T) {
	for _, args := range [][]string{{"--dry-run"}, nil, {"--delete-untagged"}} {
		t.Run(strings.Join(append([]string{"gc"}, args...), " "), func(t *testing.T) {
			cfg, orphan := gcSetup(t, true)
			root := filepath.Join(filepath.Dir(cfg), "data", "docker", "registry", "v2")
			bad := []byte("this is not a manifest")
			dg := digest.FromBytes(bad)
			writeUnder(t, filepath.Join(root, "blobs", "sha256", dg.Encoded()[:2], dg.Encoded(), "data"), bad)
			writeUnder(t, filepath.Join(root, "repositories", "gc", "broken", "_manifests", "revisions", "sha256", dg.Encoded(), "link"), []byte(dg))

			code, out, errOut := runMain(t, "", append(append([]string{"gc"}, args...), cfg)...)
			if code != exitFailure {
				t.Errorf("exit %d, want %d; stdout %q", code, exitFailure, out)
			}
			for _, want := range []string{"gc/broken", dg.String(), "not a JSON object", "nothing was deleted"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q does not contain %q", errOut, want)
				}
			}
			if strings.Contains(out, "sweep") {
				t.Errorf("stdout announces a sweep: %q", out)
			}
			if _, err := os.Stat(orphan); err != nil {
				t.Errorf("gc deleted a blob although it stopped: %v", err)
			}
		})
	}
	t.Run("missing manifest blob is a warning", func(t *testing.T) {
		cfg, orphan := gcSetup(t, true)
		root := filepath.Join(filepath.Dir(cfg), "data", "docker", "registry", "v2")
		dg := digest.FromString("gone")
		writeUnder(t, filepath.Join(root, "repositories", "gc", "test", "_manifests", "revisions", "sha256", dg.Encoded(), "link"), []byte(dg))
		code, out, errOut := runMain(t, "", "gc", "--quiet", cfg)
		if code != 0 || !strings.Contains(errOut, "warning: gc/test: manifest "+dg.String()) || !strings.Contains(errOut, "1 warning(s)") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if _, err := os.Stat(orphan); !os.IsNotExist(err) {
			t.Errorf("orphan blob still there: %v", err)
		}
	})
}

func writeUnder(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
