package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Dockerd is a Docker engine started for a test, with its own data root,
// exec root and unix socket, no iptables rules, no bridge and the vfs storage
// driver, so it touches nothing of the machine's own engine (if any). It
// imports, loads, builds, pushes and pulls images; having no bridge, it runs
// containers only on the host's network or none (test/packaging does).
type Dockerd struct {
	*Process
	// Host is the DOCKER_HOST value of the engine's socket.
	Host string
	// ConfigDir is the DOCKER_CONFIG folder of the CLI (credentials).
	ConfigDir string
	cli       string
}

// StartDockerd starts dockerd and waits (up to 60 s) until it answers
// /_ping. The engine is stopped and its folders removed when the test ends.
//
// The engine verifies a registry's TLS certificate with the CA in
// /etc/docker/certs.d/HOST:PORT/ca.crt (see TrustRegistryCA), except for
// registries that resolve to 127.0.0.0/8, which it treats as insecure (it
// then skips verification and falls back to plain HTTP). Serve registries
// for the engine on [::1] under a name mapped there (MapHostIPv6Loopback).
func StartDockerd(t testing.TB) *Dockerd {
	t.Helper()
	return StartDockerdConfig(t, "{}\n")
}

// StartDockerdConfig is StartDockerd with daemonJSON as the engine's
// daemon.json (for example {"registry-mirrors": [...]}).
func StartDockerdConfig(t testing.TB, daemonJSON string) *Dockerd {
	t.Helper()
	dockerd := Tool(t, "dockerd")
	// A short folder of our own: a unix socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "gh-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // runs after the engine stops
		// The engine leaves its network namespace mounted in its exec
		// root when it stops (seen after running containers).
		_ = syscall.Unmount(filepath.Join(dir, "exec", "netns", "default"), syscall.MNT_DETACH)
		_ = os.RemoveAll(dir)
	})
	for _, sub := range []string{"data", "exec", "config"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	configFile := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(configFile, []byte(daemonJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	// dockerd 20.10 writes its identity key to /etc/docker/key.json (not
	// configurable); remove it afterwards unless it was there before.
	if _, err := os.Stat(dockerKeyFile); os.IsNotExist(err) {
		t.Cleanup(func() { _ = os.Remove(dockerKeyFile) })
	}
	sock := filepath.Join(dir, "docker.sock")
	p := Start(t, nil, dockerd,
		"--config-file", configFile,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", "unix://"+sock,
		"--storage-driver", "vfs",
		"--iptables=false", "--ip6tables=false", "--bridge=none",
		"--log-level", "info",
	)
	d := &Dockerd{Process: p, Host: "unix://" + sock, ConfigDir: filepath.Join(dir, "config"), cli: dockerCLI(t)}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", sock)
		},
	}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if p.Exited() {
			t.Fatalf("dockerd exited before it was ready: %v\n%s", p.err, tail(p.Log(), 40))
		}
		if resp, err := client.Get("http://docker/_ping"); err == nil {
			ok := resp.StatusCode == http.StatusOK
			resp.Body.Close()
			if ok {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd not ready after 60 s\n%s", tail(p.Log(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dockerCLI prefers the CLI packaged with the engine (Debian's, in the same
// prefix as dockerd), which speaks the engine's API version, over any other
// docker in PATH.
func dockerCLI(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/usr/bin/docker"); err == nil && st.Mode()&0o111 != 0 {
		return "/usr/bin/docker"
	}
	return Tool(t, "docker")
}

// CLI returns the path of the docker CLI that speaks this engine's API.
func (d *Dockerd) CLI() string { return d.cli }

// Env returns DOCKER_HOST and DOCKER_CONFIG for running the CLI against
// this engine.
func (d *Dockerd) Env() []string {
	return []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + d.ConfigDir}
}

// Run runs the docker CLI against this engine with stdin (may be empty) and
// a two-minute timeout, and returns its combined output.
func (d *Dockerd) Run(ctx context.Context, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Env = append(os.Environ(), d.Env()...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Docker runs the docker CLI and fails the test (with the engine's log
// tail) when it fails.
func (d *Dockerd) Docker(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, err := d.Run(context.Background(), stdin, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// hostsMu serialises this process's edits of /etc/hosts.
var hostsMu sync.Mutex

// HostsFile is the resolver's hosts file MapHostIPv6Loopback edits.
const HostsFile = "/etc/hosts"

// MapHostIPv6Loopback adds "::1 name" to /etc/hosts (root only) and removes
// exactly that line when the test ends, keeping anything others added in
// between. The file is rewritten in place, since it is often a bind mount.
func MapHostIPv6Loopback(t testing.TB, name string) {
	t.Helper()
	line := "::1 " + name + " # gatehouse testenv " + fmt.Sprint(os.Getpid())
	edit := func(f func(lines []string) []string) error {
		hostsMu.Lock()
		defer hostsMu.Unlock()
		b, err := os.ReadFile(HostsFile)
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		lines = f(lines)
		return os.WriteFile(HostsFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644) //nolint:gosec // the hosts file is world-readable
	}
	if err := edit(func(l []string) []string { return append(l, line) }); err != nil {
		t.Fatalf("map %s to ::1 in %s (needs root): %v", name, HostsFile, err)
	}
	t.Cleanup(func() {
		err := edit(func(lines []string) []string {
			kept := lines[:0]
			for _, l := range lines {
				if l != line {
					kept = append(kept, l)
				}
			}
			return kept
		})
		if err != nil {
			t.Errorf("restore %s: %v", HostsFile, err)
		}
	})
	addrs, err := net.DefaultResolver.LookupHost(context.Background(), name)
	if err != nil || len(addrs) == 0 || addrs[0] != "::1" {
		t.Fatalf("%s resolves to %v (%v) after editing %s, want ::1", name, addrs, err, HostsFile)
	}
}

const dockerKeyFile = "/etc/docker/key.json"

// DockerCertsDir is where the Docker engine looks for a registry's CA.
const DockerCertsDir = "/etc/docker/certs.d"

// ContainersCertsDir is where podman, skopeo and buildah (containers/image)
// look for a registry's CA when run as root.
const ContainersCertsDir = "/etc/containers/certs.d"

// TrustRegistryCA writes caPEM as DockerCertsDir/hostPort/ca.crt, so that
// the Docker engine verifies the registry at hostPort with it (no restart
// needed), and removes that folder when the test ends.
func TrustRegistryCA(t testing.TB, hostPort string, caPEM []byte) {
	t.Helper()
	TrustRegistryCAIn(t, DockerCertsDir, hostPort, caPEM)
}

// TrustRegistryCAIn is TrustRegistryCA for another certs.d folder, such as
// ContainersCertsDir (for `podman search`, which has no --cert-dir).
func TrustRegistryCAIn(t testing.TB, certsDir, hostPort string, caPEM []byte) {
	t.Helper()
	dir := filepath.Join(certsDir, hostPort)
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists already: another test uses %s", dir, hostPort)
	}
	_, err := os.Stat(certsDir)
	createdCertsDir := os.IsNotExist(err)
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // read by the engine and the CLI
		t.Fatalf("trust CA for %s (needs root): %v", hostPort, err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
		if createdCertsDir {
			_ = os.Remove(certsDir) // only if empty: other tests may use it
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), caPEM, 0o644); err != nil { //nolint:gosec // a public certificate
		t.Fatal(err)
	}
}

// FreePortIPv6 returns a TCP port on [::1] that was free a moment ago.
func FreePortIPv6(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
