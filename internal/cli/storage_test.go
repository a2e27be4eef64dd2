package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// storageSetup is gcSetup's registry with a dangling tag (its manifest's
// revision link removed) and a stale temporary file.
func storageSetup(t *testing.T, readOnly bool) (cfg, root, blob string) {
	t.Helper()
	cfg, blob = gcSetup(t, readOnly)
	root = filepath.Join(filepath.Dir(cfg), "data", "docker", "registry", "v2")
	revs, err := filepath.Glob(filepath.Join(root, "repositories", "gc", "test", "_manifests", "revisions", "sha256", "*"))
	if err != nil || len(revs) != 1 {
		t.Fatalf("revisions: %v %v", revs, err)
	}
	if err := os.RemoveAll(revs[0]); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(root, ".gatehouse-tmp-42")
	writeTestFile(t, tmp, "half a link")
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	return cfg, root, blob
}

func TestStorageCheckCommand(t *testing.T) {
	t.Run("reports without changing anything", func(t *testing.T) {
		cfg, root, _ := storageSetup(t, false)
		code, out, errOut := runMain(t, "", "storage", "check", cfg)
		if code != exitFailure || !strings.Contains(out, "problem: dangling-tag gc/test: tag v1") ||
			!strings.Contains(out, "problem: stale-temporary") || !strings.Contains(out, "2 problem(s) left") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if _, err := os.Stat(filepath.Join(root, "repositories", "gc", "test", "_manifests", "tags", "v1")); err != nil {
			t.Errorf("check without --repair changed the storage: %v", err)
		}
	})
	t.Run("repair refuses a writable registry", func(t *testing.T) {
		cfg, root, _ := storageSetup(t, false)
		code, _, errOut := runMain(t, "", "storage", "check", "--repair", cfg)
		if code != exitFailure || !strings.Contains(errOut, "storage.maintenance.readonly.enabled") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
		if _, err := os.Stat(filepath.Join(root, ".gatehouse-tmp-42")); err != nil {
			t.Errorf("a refused repair removed the temporary: %v", err)
		}
	})
	for _, tc := range []struct {
		name     string
		readOnly bool
		args     []string
	}{
		{"repair on a read-only config", true, nil},
		{"repair with the operator flag", false, []string{"--i-know-registry-is-read-only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, blob := storageSetup(t, tc.readOnly)
			args := append(append([]string{"storage", "check", "--repair"}, tc.args...), cfg)
			code, out, errOut := runMain(t, "", args...)
			if code != 0 || !strings.Contains(out, "will remove 2 path(s):") ||
				!strings.Contains(out, "/docker/registry/v2/repositories/gc/test/_manifests/tags/v1  (dangling-tag)") ||
				!strings.Contains(out, "/docker/registry/v2/.gatehouse-tmp-42  (stale-temporary)") ||
				!strings.Contains(out, "all problems repaired") {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if _, err := os.Stat(blob); err != nil {
				t.Errorf("repair removed blob data: %v", err)
			}
			code, out, _ = runMain(t, "", "storage", "check", cfg)
			if code != 0 || !strings.Contains(out, "storage is consistent") {
				t.Errorf("after repair: exit %d, stdout %q", code, out)
			}
		})
	}
	t.Run("verify digests finds a corrupt blob and keeps it", func(t *testing.T) {
		cfg, _ := gcSetup(t, true)
		code, out, _ := runMain(t, "", "storage", "check", "--verify-digests", cfg)
		if code != 0 || !strings.Contains(out, "blobs verified: 3") {
			t.Fatalf("clean storage: exit %d, stdout %q", code, out)
		}
		cfg, blob := gcSetup(t, true)
		writeTestFile(t, blob, "rotten")
		code, out, _ = runMain(t, "", "storage", "check", "--verify-digests", "--repair", cfg)
		if code != exitFailure || !strings.Contains(out, "problem: corrupt-blob") || !strings.Contains(out, "nothing to remove") {
			t.Errorf("exit %d, stdout %q", code, out)
		}
		if b, err := os.ReadFile(blob); err != nil || string(b) != "rotten" {
			t.Errorf("the corrupt blob was changed: %q %v", b, err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		cfg := writeTestFile(t, filepath.Join(t.TempDir(), "c.yml"), "version: 0.1\nstorage:\n  filesystem:\n    rootdirectry: x\n")
		if code, _, errOut := runMain(t, "", "storage", "check", cfg); code != exitFailure || !strings.Contains(errOut, "rootdirectry") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}
