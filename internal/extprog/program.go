// Package extprog runs the external programs of docker_auth's ext_auth and
// ext_authz protocol: one process per question, the question on stdin, the
// answer in the exit status (and, for ext_auth, on stdout).
//
// Every run has a deadline; when it passes, or the context is cancelled,
// the whole process group is killed. Stdout is read up to a limit and
// stderr is kept only in part, for error messages.
package extprog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds a run when the config sets no timeout.
const DefaultTimeout = 10 * time.Second

// Limits on what is kept of a program's output.
const (
	MaxStdout = 1 << 20 // bytes; more is an error
	maxStderr = 1 << 10 // bytes kept for error messages
)

// ErrTimeout is wrapped by Run's error when the program ran out of time.
var ErrTimeout = errors.New("program timed out")

// Config names the program to run.
type Config struct {
	// Command is a program name (looked up in PATH) or a path.
	Command string
	// Args are passed to it as they are (no shell).
	Args []string
	// Timeout bounds one run; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Program is a checked Config.
type Program struct {
	path    string
	args    []string
	timeout time.Duration
	display string
}

// Validate reports every problem with cfg that can be seen without looking
// at the system (New also checks that the command exists).
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Command == "" {
		errs = append(errs, errors.New("command is not set"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", cfg.Timeout))
	}
	return errors.Join(errs...)
}

// withDefaults returns cfg with a zero Timeout replaced by DefaultTimeout.
func (cfg Config) withDefaults() Config {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return cfg
}

// New checks that the command exists and the timeout is sane.
func New(cfg Config) (*Program, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	path, err := exec.LookPath(cfg.Command)
	if err != nil {
		return nil, fmt.Errorf("command %q: %w", cfg.Command, err)
	}
	cfg = cfg.withDefaults()
	return &Program{path: path, args: append([]string(nil), cfg.Args...), timeout: cfg.Timeout, display: cfg.Command}, nil
}

// String names the program for logs and errors.
func (p *Program) String() string { return p.display }

// Timeout returns the bound on one run.
func (p *Program) Timeout() time.Duration { return p.timeout }

// Result is how a run ended.
type Result struct {
	// Status is the exit status (0-255).
	Status int
	// Stdout is what the program wrote, at most MaxStdout bytes.
	Stdout []byte
	// Stderr is the start of what it wrote to stderr, for error messages.
	// It may contain anything the program echoed, so callers redact it.
	Stderr string
}

// Run starts the program with stdin, waits for it and returns its exit
// status. An error means there is no status: the program could not start,
// was killed (timeout, cancellation, a signal) or wrote too much.
func (p *Program) Run(parent context.Context, stdin []byte) (Result, error) {
	ctx, cancel := context.WithTimeout(parent, p.timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, p.path, p.args...)
	cmd.Stdin = bytes.NewReader(stdin)
	stdout := &limitedBuffer{limit: MaxStdout}
	stderr := &limitedBuffer{limit: maxStderr, truncate: true}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	setProcessGroup(cmd)
	// If the program leaves children that hold stdout open, stop waiting
	// for them shortly after it exits or is killed.
	cmd.WaitDelay = time.Second

	err := cmd.Run()
	res := Result{Stdout: stdout.buf.Bytes(), Stderr: strings.TrimSpace(stderr.buf.String())}
	if err := parent.Err(); err != nil {
		return res, fmt.Errorf("%s: %w", p.display, err)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: %w after %v", p.display, ErrTimeout, p.timeout)
	}
	if stdout.overflow {
		return res, fmt.Errorf("%s: wrote more than %d bytes to stdout", p.display, MaxStdout)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &ee):
		if ee.ExitCode() < 0 {
			return res, fmt.Errorf("%s: %v", p.display, ee.ProcessState)
		}
		res.Status = ee.ExitCode()
		return res, nil
	case errors.Is(err, exec.ErrWaitDelay):
		// The program exited but a child kept its output open.
		if cmd.ProcessState != nil && cmd.ProcessState.Exited() {
			res.Status = cmd.ProcessState.ExitCode()
			return res, nil
		}
		return res, fmt.Errorf("%s: %w", p.display, err)
	default:
		return res, fmt.Errorf("%s: %w", p.display, err)
	}
}

// limitedBuffer keeps at most limit bytes. Past the limit it either drops
// the rest quietly (truncate) or notes the overflow; it never blocks the
// writer, so a chatty program cannot stall on a full pipe.
type limitedBuffer struct {
	buf      bytes.Buffer
	limit    int
	truncate bool
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.limit - b.buf.Len()
	if len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		if !b.truncate {
			b.overflow = true
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}
