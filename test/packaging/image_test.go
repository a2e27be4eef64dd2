//go:build integration

package packaging

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// TestImage builds the image with the documented `make image` on a Docker
// engine of its own (testenv.StartDockerd: vfs storage, no bridge), checks
// its config, then runs the documented `docker run` and `docker cp`, pushes
// an image to the registry in the container with crane, and starts a new
// container on the same volume to find it again.
//
// The engine runs containers on this machine (runc, cgroups v1, the host's
// network); it has no bridge, so `-p` port mappings are impossible and
// deploy.md's command uses --network host. Where this test differs from the
// documented commands: it appends `serve --registry-addr 127.0.0.1:P
// --auth-addr 127.0.0.1:Q` to `docker run` (free ports instead of 5000 and
// 5001, which other tests on this machine may hold), and points the CLI at
// its engine (DOCKER_HOST, and DOCKER= for make).
func TestImage(t *testing.T) {
	d := testenv.StartDockerd(t)
	crane := testenv.Tool(t, "crane")
	work := t.TempDir()
	head := strings.TrimSpace(runIn(t, repoRoot(), nil, "git", "rev-parse", "HEAD"))

	// make image, with the engine's own CLI.
	runIn(t, repoRoot(), append(d.Env(), "DOCKER="+d.CLI()), docCommand(t, cmdMakeImage)...)

	var inspect []struct {
		Architecture string
		Os           string
		Config       struct {
			User         string
			Entrypoint   []string
			Cmd          []string
			Env          []string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
			WorkingDir   string
		}
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(d.Docker(t, "", "image", "inspect", "gatehouse:dev")), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("docker image inspect gatehouse:dev: %v (%d images)", err, len(inspect))
	}
	cfg := inspect[0].Config
	if cfg.User != "65532:65532" {
		t.Errorf("user = %q, want the non-root 65532:65532", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/gatehouse"}) || !slices.Equal(cfg.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q, cmd %q; want [/gatehouse] [serve]", cfg.Entrypoint, cfg.Cmd)
	}
	if diff := cmp.Diff(map[string]struct{}{"5000/tcp": {}, "5001/tcp": {}}, cfg.ExposedPorts); diff != "" {
		t.Errorf("exposed ports (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]struct{}{"/data": {}}, cfg.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if !slices.Contains(cfg.Env, "GATEHOUSE_DATA_DIR=/data") || cfg.WorkingDir != "/data" {
		t.Errorf("env %q, working dir %q; want GATEHOUSE_DATA_DIR=/data and /data", cfg.Env, cfg.WorkingDir)
	}
	// Two layers: the root file system and the data directory.
	if n := len(inspect[0].RootFS.Layers); n != 2 {
		t.Errorf("%d layers, want 2", n)
	}

	// The file system: the binary, CA bundle, user entries and /data owned
	// by the user, nothing else (docker export lists what the engine adds
	// for a container, too: /dev, /proc, /sys, /etc/hosts and the like).
	id := strings.TrimSpace(d.Docker(t, "", "create", "gatehouse:dev"))
	exported := filepath.Join(work, "rootfs.tar")
	d.Docker(t, "", "export", "-o", exported, id)
	d.Docker(t, "", "rm", id)
	tarList := listTar(t, exported)
	for path, owner := range map[string]string{
		"gatehouse":                         "0:0",
		"etc/ssl/certs/ca-certificates.crt": "0:0",
		"etc/passwd":                        "0:0",
		"etc/group":                         "0:0",
		"data/":                             "65532:65532",
	} {
		if got, ok := tarList[path]; !ok || got != owner {
			t.Errorf("%s: owner %q (present %v), want %s", path, got, ok, owner)
		}
	}

	// The binary in the image reports the commit the Makefile stamped.
	ver := d.Docker(t, "", "run", "--rm", "--network", "none", "gatehouse:dev", "version")
	if !strings.Contains(ver, "(commit "+head) || !strings.Contains(ver, "linux/") {
		t.Errorf("gatehouse version in the image = %q, want commit %s", ver, head)
	}

	// deploy.md's docker run, on free ports.
	regPort, authPort := testenv.FreePort(t), testenv.FreePort(t)
	run := append(docCommand(t, cmdDockerRun)[1:], "serve",
		"--registry-addr", fmt.Sprintf("127.0.0.1:%d", regPort), "--auth-addr", fmt.Sprintf("127.0.0.1:%d", authPort))
	t.Cleanup(func() { _, _ = d.Run(t.Context(), "", "rm", "-f", "gatehouse") })
	d.Docker(t, "", run...)
	regURL := fmt.Sprintf("https://localhost:%d", regPort)
	waitContainer(t, d, regURL+"/v2/")
	waitContainer(t, d, fmt.Sprintf("https://localhost:%d/healthz", authPort))

	// deploy.md's docker cp: the admin password and the CA certificate.
	for _, c := range []string{cmdCopyPassword, cmdCopyCA} {
		runIn(t, work, d.Env(), append([]string{d.CLI()}, docCommand(t, c)[1:]...)...)
	}
	pw, err := os.ReadFile(filepath.Join(work, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(work, "ca.crt")
	checkTLS(t, ca, regURL+"/v2/")

	env := []string{"SSL_CERT_FILE=" + ca, "DOCKER_CONFIG=" + filepath.Join(work, "docker")}
	host := fmt.Sprintf("localhost:%d", regPort)
	testenv.MustRun(t, env, crane, "auth", "login", host, "-u", "admin", "-p", strings.TrimSpace(string(pw)))
	layer := filepath.Join(work, "layer.tar")
	if err := os.MkdirAll(filepath.Join(work, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "rootfs", "hello.txt"), []byte("hello from the container\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.MustRun(t, nil, "tar", "-C", filepath.Join(work, "rootfs"), "-cf", layer, ".")
	testenv.MustRun(t, env, crane, "append", "-f", layer, "-t", host+"/test/hello:v1")
	dgst := strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", host+"/test/hello:v1"))

	// A new container on the same volume keeps the CA, password and image.
	d.Docker(t, "", "rm", "-f", "gatehouse")
	d.Docker(t, "", run...)
	waitContainer(t, d, regURL+"/v2/")
	waitContainer(t, d, fmt.Sprintf("https://localhost:%d/healthz", authPort))
	if got := strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", host+"/test/hello:v1")); got != dgst {
		t.Fatalf("after a new container digest = %s, want %s", got, dgst)
	}
	if logs := d.Docker(t, "", "logs", "gatehouse"); strings.Contains(logs, "created ") {
		t.Errorf("the second container created files on the same volume:\n%s", logs)
	}
}

// waitContainer waits until url answers over HTTPS (any status), failing
// with the container's log when it stops or 30 s pass.
func waitContainer(t *testing.T, d *testenv.Dockerd, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness probe; checkTLS verifies
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		state, _ := d.Run(t.Context(), "", "inspect", "-f", "{{.State.Running}}", "gatehouse")
		if strings.TrimSpace(state) == "false" || time.Now().After(deadline) {
			logs, _ := d.Run(t.Context(), "", "logs", "gatehouse")
			t.Fatalf("%s not answering (running: %s): %v\n%s", url, strings.TrimSpace(state), err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkTLS fetches url trusting only caFile.
func checkTLS(t *testing.T, caFile, url string) {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s trusting the copied ca.crt: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET %s = %d, want 401", url, resp.StatusCode)
	}
}

// listTar maps each path in a tar file to its numeric owner uid:gid.
func listTar(t *testing.T, file string) map[string]string {
	t.Helper()
	out, err := exec.Command("tar", "--numeric-owner", "-tvf", file).Output()
	if err != nil {
		t.Fatalf("tar -t: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		owner := strings.ReplaceAll(f[1], "/", ":")
		m[strings.TrimPrefix(f[5], "./")] = owner
	}
	return m
}
