package extprog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prog.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunStatusAndOutput(t *testing.T) {
	cases := []struct {
		name string
		body string
		want Result
	}{
		{"echo stdin, exit 0", `cat; echo " done" >&2`, Result{Status: 0, Stdout: []byte("hello"), Stderr: "done"}},
		{"exit 1", "exit 1", Result{Status: 1, Stdout: []byte{}}},
		{"exit 2", "exit 2", Result{Status: 2, Stdout: []byte{}}},
		{"exit 42 with stderr", "echo oops >&2; exit 42", Result{Status: 42, Stdout: []byte{}, Stderr: "oops"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(Config{Command: script(t, c.body)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Run(context.Background(), []byte("hello"))
			if err != nil {
				t.Fatal(err)
			}
			if got.Stdout == nil {
				got.Stdout = []byte{}
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunArgsAreNotShellParsed(t *testing.T) {
	p, err := New(Config{Command: script(t, `printf '%s|' "$@"`), Args: []string{"a b", "$HOME", ";"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Stdout) != "a b|$HOME|;|" {
		t.Errorf("stdout = %q", got.Stdout)
	}
}

func TestRunStdoutLimit(t *testing.T) {
	p, err := New(Config{Command: script(t, "head -c 2000000 /dev/zero")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("got %v, want a stdout-limit error", err)
	}
}

func TestRunStderrIsTruncated(t *testing.T) {
	p, err := New(Config{Command: script(t, "head -c 100000 /dev/zero | tr '\\0' x >&2; exit 3")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != 3 || len(got.Stderr) != maxStderr {
		t.Errorf("status %d, %d bytes of stderr; want 3 and %d", got.Status, len(got.Stderr), maxStderr)
	}
}

// TestTimeoutKillsProcessGroup: a program that starts a child and hangs is
// killed with its child when the timeout passes.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	p, err := New(Config{
		Command: script(t, `sleep 300 & echo $! > "$1"; wait`),
		Args:    []string{pidFile},
		Timeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background(), nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	waitGone(t, pidFile)
}

func TestCancelKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	p, err := New(Config{Command: script(t, `sleep 300 & echo $! > "$1"; wait`), Args: []string{pidFile}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the child is running.
		for {
			if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err = p.Run(ctx, nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	waitGone(t, pidFile)
}

// waitGone waits until the process whose pid is in pidFile no longer
// exists (a kill is delivered asynchronously).
func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		// A killed child of an exited shell is reparented and reaped by
		// init; until then it is a zombie, which counts as gone.
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("child %d survived", pid)
}

func TestNewRefuses(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"no command", Config{}, "not set"},
		{"missing command", Config{Command: "gatehouse-no-such-program"}, "gatehouse-no-such-program"},
		{"negative timeout", Config{Command: "sh", Timeout: -time.Second}, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want an error containing %q", err, c.msg)
			}
		})
	}
}

func TestDefaultTimeout(t *testing.T) {
	p, err := New(Config{Command: "sh"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Timeout() != DefaultTimeout {
		t.Errorf("timeout = %v, want %v", p.Timeout(), DefaultTimeout)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Config{Timeout: -time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "not set") || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("got %v, want both the command and the timeout named", err)
	}
	// Validate does not look the command up: that belongs to New.
	if err := (Config{Command: "gatehouse-no-such-program"}).Validate(); err != nil {
		t.Fatalf("got %v", err)
	}
}
