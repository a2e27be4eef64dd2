package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
)

// gcSetup stores one pushed-but-unreferenced blob in a filesystem registry
// and writes a config for it.
func gcSetup(t *testing.T, readOnly bool) (cfg, blobPath string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	d, err := filesystem.New(filesystem.Options{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := storage.New(d, storage.Options{}).Repository("gc/test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	content := []byte("orphan layer")
	u, err := repo.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(content)
	if _, err := u.Commit(ctx, dg, -1); err != nil {
		t.Fatal(err)
	}
	// A manifest so the repository is one GC scans.
	cfgBlob := []byte(`{}`)
	u, _ = repo.NewUpload(ctx)
	_, _ = u.Append(ctx, bytes.NewReader(cfgBlob))
	if _, err := u.Commit(ctx, digest.FromBytes(cfgBlob), -1); err != nil {
		t.Fatal(err)
	}
	m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		digest.FromBytes(cfgBlob).String() + `","size":2},"layers":[]}`
	if _, err := repo.PutManifest(ctx, "v1", "", []byte(m)); err != nil {
		t.Fatal(err)
	}
	ro := ""
	if readOnly {
		ro = "  maintenance:\n    readonly:\n      enabled: true\n"
	}
	cfg = writeTestFile(t, filepath.Join(dir, "config.yml"),
		"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+root+"\n"+ro+"http:\n  addr: 127.0.0.1:5000\n")
	blobPath = filepath.Join(root, "docker/registry/v2/blobs/sha256", dg.Encoded()[:2], dg.Encoded(), "data")
	if _, err := os.Stat(blobPath); err != nil {
		t.Fatal(err)
	}
	return cfg, blobPath
}

func TestGCCommand(t *testing.T) {
	t.Run("refuses a writable registry", func(t *testing.T) {
		cfg, blob := gcSetup(t, false)
		code, _, errOut := runMain(t, "", "gc", cfg)
		if code != exitFailure || !strings.Contains(errOut, "storage.maintenance.readonly.enabled") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
		if _, err := os.Stat(blob); err != nil {
			t.Errorf("blob removed by a refused gc: %v", err)
		}
	})
	// A dry run deletes nothing: it runs on a writable registry too, and
	// says its results may be stale there.
	for _, readOnly := range []bool{true, false} {
		t.Run(fmt.Sprintf("dry run, read-only %v", readOnly), func(t *testing.T) {
			cfg, blob := gcSetup(t, readOnly)
			code, out, errOut := runMain(t, "", "gc", "--dry-run", "--delete-untagged", cfg)
			if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, "1 blobs") {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if stale := strings.Contains(out, "may be stale"); stale == readOnly {
				t.Errorf("read-only %v: stale warning %v in %q", readOnly, stale, out)
			}
			if _, err := os.Stat(blob); err != nil {
				t.Errorf("dry run removed the blob: %v", err)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		readOnly bool
		args     []string
	}{
		{"read-only config", true, nil},
		{"operator flag", false, []string{"--i-know-registry-is-read-only", "--delete-untagged"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, blob := gcSetup(t, tc.readOnly)
			code, out, errOut := runMain(t, "", append(append([]string{"gc"}, tc.args...), cfg)...)
			if code != 0 || !strings.Contains(out, "deleted: 1 blobs (12 bytes freed)") || !strings.Contains(out, "repositories scanned: 1") {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if _, err := os.Stat(blob); !os.IsNotExist(err) {
				t.Errorf("orphan blob still there: %v", err)
			}
		})
	}
	t.Run("bad config", func(t *testing.T) {
		cfg := writeTestFile(t, filepath.Join(t.TempDir(), "c.yml"), "version: 0.1\nstorage:\n  filesystem:\n    rootdirectry: x\n")
		if code, _, errOut := runMain(t, "", "gc", cfg); code != exitFailure || !strings.Contains(errOut, "rootdirectry") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

// TestGCProfiles runs gc with the hidden profiling flags: both files must
// be profiles go tool pprof reads, of the kind asked for, and --help must
// not mention the flags.
func TestGCProfiles(t *testing.T) {
	cfg, blob := gcSetup(t, true)
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	code, out, errOut := runMain(t, "", "gc", "--cpuprofile", cpu, "--memprofile", mem, cfg)
	if code != 0 || !strings.Contains(out, "deleted: 1 blobs") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("orphan blob still there: %v", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool pprof reads the profiles: %v", err)
	}
	for file, kind := range map[string]string{cpu: "Type: cpu", mem: "Type: inuse_space"} {
		top, err := exec.Command(goBin, "tool", "pprof", "-top", file).CombinedOutput() //nolint:gosec // the test's own files
		if err != nil || !strings.Contains(string(top), kind) {
			t.Errorf("go tool pprof -top %s: %v, want %q in:\n%s", filepath.Base(file), err, kind, top)
		}
	}

	code, help, _ := runMain(t, "", "gc", "--help")
	if code != 0 || !strings.Contains(help, "--dry-run") {
		t.Fatalf("gc --help: exit %d, %q", code, help)
	}
	for _, flag := range []string{"cpuprofile", "memprofile"} {
		if strings.Contains(help, flag) {
			t.Errorf("gc --help mentions the hidden flag %s:\n%s", flag, help)
		}
	}
}
