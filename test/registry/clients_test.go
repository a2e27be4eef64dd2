//go:build integration

package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// layerTarball writes a gzipped tar holding one file.
func layerTarball(t *testing.T, dir, name, content string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClients pushes and pulls with crane and oras through htpasswd auth:
// an image, a copy across repositories (a mount), an artifact attached as
// a referrer, discovery through the referrers API, tag listing and delete.
func TestClients(t *testing.T) {
	crane, oras := testenv.Tool(t, "crane"), testenv.Tool(t, "oras")
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t, true, fmt.Sprintf("auth:\n  htpasswd:\n    realm: gatehouse\n    path: %s\n", htpasswd))
	// Credentials for crane and oras go in a docker config of our own.
	env := []string{"DOCKER_CONFIG=" + dir, "HOME=" + dir}
	testenv.MustRun(t, env, crane, "auth", "login", reg.Addr, "-u", "alice", "-p", "s3cret-pass")

	ref := reg.Addr + "/team/app:v1"
	layer := layerTarball(t, dir, "hello.txt", "hello from gatehouse\n")
	testenv.MustRun(t, env, crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", ref)
	dgst := strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", "--insecure", ref))
	if !strings.HasPrefix(dgst, "sha256:") {
		t.Fatalf("crane digest = %q", dgst)
	}
	testenv.MustRun(t, env, crane, "copy", "--insecure", ref, reg.Addr+"/team/copy:v1")
	if got := strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", "--insecure", reg.Addr+"/team/copy:v1")); got != dgst {
		t.Errorf("copied digest %s, want %s", got, dgst)
	}
	out := testenv.MustRun(t, env, crane, "export", "--insecure", ref, "-")
	if !strings.Contains(out, "hello from gatehouse") {
		t.Errorf("exported image lacks the layer's file")
	}
	if ls := testenv.MustRun(t, env, crane, "ls", "--insecure", reg.Addr+"/team/app"); strings.TrimSpace(ls) != "v1" {
		t.Errorf("crane ls = %q", ls)
	}
	cat := testenv.MustRun(t, env, crane, "catalog", "--insecure", reg.Addr)
	if !strings.Contains(cat, "team/app") || !strings.Contains(cat, "team/copy") {
		t.Errorf("catalog = %q", cat)
	}

	// oras: attach an SBOM-like artifact and find it through the referrers API.
	sbom := filepath.Join(dir, "sbom.json")
	if err := os.WriteFile(sbom, []byte(`{"packages":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	orasEnv := append(env, "ORAS_HOME="+dir)
	testenv.MustRun(t, orasEnv, oras, "login", "--plain-http", "-u", "alice", "-p", "s3cret-pass", reg.Addr)
	cmd := []string{"attach", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--artifact-type", "application/vnd.example.sbom", reg.Addr + "/team/app@" + dgst, "sbom.json:application/json"}
	out, err = runIn(dir, orasEnv, oras, cmd...)
	if err != nil {
		t.Fatalf("oras attach: %v\n%s", err, out)
	}
	disc := testenv.MustRun(t, orasEnv, oras, "discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--format", "json", reg.Addr+"/team/app@"+dgst)
	if !strings.Contains(disc, "application/vnd.example.sbom") {
		t.Errorf("oras discover found no referrer:\n%s", disc)
	}

	testenv.MustRun(t, env, crane, "delete", "--insecure", reg.Addr+"/team/copy@"+dgst)
	if _, err := testenv.Run(t.Context(), env, crane, "digest", "--insecure", reg.Addr+"/team/copy:v1"); err == nil {
		t.Error("deleted manifest still resolves")
	}
	// a wrong password is refused (crane auth login only stores it; ls uses it)
	bad := []string{"DOCKER_CONFIG=" + t.TempDir()}
	testenv.MustRun(t, bad, crane, "auth", "login", reg.Addr, "-u", "alice", "-p", "wrong")
	if out, err := testenv.Run(t.Context(), bad, crane, "ls", "--insecure", reg.Addr+"/team/app"); err == nil || !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("listing with a wrong password: err %v\n%s", err, out)
	}
}

// runIn runs a program in dir (oras reads file arguments relative to it).
func runIn(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
