// Package testenv starts the real components integration tests run against
// (the gatehouse binary, OpenLDAP, registries, the Docker engine, clients) on
// 127.0.0.1 and stops them when the test ends. A component that is not
// installed fails the test: scripts/install-deps.sh installs them all.
package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/tools"
)

// ToolsDir is where scripts/install-deps.sh puts pinned Go tools.
func ToolsDir() string { return tools.Dir() }

// Tool returns the path of an external program, from the tools dir or PATH.
// A missing program fails the test with how to install it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := tools.Find(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RepoRoot returns the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Gatehouse builds the gatehouse binary once per test process and returns its path.
// Binaries live in one folder under the temp dir, one per test process,
// named by its pid; those of processes that are gone are removed first, so
// repeated runs do not fill the disk.
func Gatehouse(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "gatehouse-test-bin")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			buildErr = err
			return
		}
		removeStaleBinaries(dir)
		buildPath = filepath.Join(dir, fmt.Sprintf("gatehouse-%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/gatehouse")
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// removeStaleBinaries deletes the binaries of test processes that no
// longer run.
func removeStaleBinaries(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "gatehouse-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a program started for a test.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	done    chan struct{}
	err     error
}

// Start runs name with args in the background, its output in a log file in
// the test's temp dir, and stops it (SIGTERM, then SIGKILL) when the test ends.
func Start(t testing.TB, env []string, name string, args ...string) *Process {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), filepath.Base(name)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: filepath.Base(name), Cmd: cmd, LogPath: logf.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- log of %s (%s):\n%s", p.Name, p.LogPath, tail(p.Log(), 60))
		}
	})
	return p
}

// Stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log returns what the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitTCP waits until addr accepts connections, failing the test after 30 s
// or when the process exits first.
func (p *Process) WaitTCP(t testing.TB, addr string) {
	t.Helper()
	p.waitFor(t, addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return true
		}
		return false
	})
}

// WaitHTTP waits until url answers any HTTP status (TLS is not verified).
func (p *Process) WaitHTTP(t testing.TB, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness probe only
	p.waitFor(t, url, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

func (p *Process) waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.Exited() {
			t.Fatalf("%s exited before %s was ready: %v\n%s", p.Name, what, p.err, tail(p.Log(), 40))
		}
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s not ready after 30 s\n%s", p.Name, what, tail(p.Log(), 40))
}

// Run runs a command to completion with a timeout and returns its combined output.
func Run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustRun is Run that fails the test on error.
func MustRun(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := Run(context.Background(), env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}
