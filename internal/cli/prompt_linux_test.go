package cli

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
)

// openPTY returns the controller and the terminal side of a new
// pseudo-terminal.
func openPTY(t *testing.T) (ctl, term *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close() })
	if err := unix.IoctlSetPointerInt(int(ctl.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ctl.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	term, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = term.Close() })
	return ctl, term
}

// typeAtPrompts runs gatehouse with a terminal as stdin and types each
// answer once the matching prompt has been written; it returns the exit
// code, stdout, stderr, and what the terminal showed (its echo).
func typeAtPrompts(t *testing.T, args []string, prompt string, answers ...string) (int, string, string, string) {
	t.Helper()
	ctl, term := openPTY(t)
	var stdout bytes.Buffer
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- Main(args, term, &stdout, &stderr) }()
	for i, a := range answers {
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(stderr.String(), prompt) <= i {
			if time.Now().After(deadline) {
				t.Fatalf("no prompt %d %q; stderr %q", i+1, prompt, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := ctl.WriteString(a + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	var code int
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("gatehouse did not finish")
	}
	// What the terminal echoed, if anything: everything is written by now.
	var shown bytes.Buffer
	fd := int(ctl.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			shown.Write(buf[:n])
		}
		if err != nil || n <= 0 {
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				t.Logf("reading the terminal: %v", err)
			}
			break
		}
	}
	return code, stdout.String(), stderr.String(), shown.String()
}

func TestHashPasswordOnATerminal(t *testing.T) {
	code, out, errOut, shown := typeAtPrompts(t, []string{"hash-password"}, ": ", "typed-pw-1", "typed-pw-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "Password: ") || !strings.Contains(errOut, "Again: ") {
		t.Errorf("prompts %q, want Password: and Again:", errOut)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("typed-pw-1")); err != nil {
		t.Errorf("printed hash %q is not of the typed password: %v", out, err)
	}
	if strings.Contains(shown+errOut, "typed-pw-1") {
		t.Errorf("the password was echoed: terminal %q, stderr %q", shown, errOut)
	}

	code, out, errOut, _ = typeAtPrompts(t, []string{"hash-password"}, ": ", "typed-pw-1", "typed-pw-2")
	if code == 0 || out != "" || !strings.Contains(errOut, "differ") {
		t.Errorf("two different passwords: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestTokenAsksOnATerminal(t *testing.T) {
	srv, _, caFile := fakeTokenServer(t)
	t.Setenv(passwordEnv, "")
	args := []string{"token", "--realm", srv.URL + "/auth", "--service", "registry.test", "--ca-file", caFile, "-u", "alice"}
	code, out, errOut, shown := typeAtPrompts(t, args, "Password for alice: ", "s3cret")
	if code != 0 || !strings.Contains(out, `"token"`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(shown+errOut, "s3cret") {
		t.Errorf("the password was echoed: terminal %q, stderr %q", shown, errOut)
	}
}
