package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// terminalFD returns the file descriptor of r when r is a terminal.
func terminalFD(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	if _, err := getTermios(fd); err != nil {
		return 0, false
	}
	return fd, true
}

// promptPassword writes prompt to w and reads one line from the terminal
// fd with echo off, restoring the terminal afterwards, also when the read
// is interrupted by a signal. An empty password is an error.
func promptPassword(fd int, w io.Writer, prompt string) (string, error) {
	_, _ = fmt.Fprint(w, prompt)
	old, err := getTermios(fd)
	if err != nil {
		return "", err
	}
	noEcho := *old
	noEcho.Lflag &^= echoFlag
	if err := setTermios(fd, &noEcho); err != nil {
		return "", err
	}
	// Ctrl-C while the echo is off must not leave the terminal so.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			_ = setTermios(fd, old)
			_, _ = fmt.Fprintln(w)
			signal.Reset(sig)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		case <-done:
		}
	}()
	line, readErr := readLineFD(fd)
	close(done)
	signal.Stop(sigs)
	_ = setTermios(fd, old)
	_, _ = fmt.Fprintln(w) // the Enter the terminal did not echo
	if readErr != nil {
		return "", readErr
	}
	if line == "" {
		return "", errors.New("the password is empty")
	}
	return line, nil
}

// readLineFD reads up to a newline, byte by byte, so that nothing after
// the line is consumed.
func readLineFD(fd int) (string, error) {
	var buf []byte
	var b [1]byte
	for {
		n, err := syscall.Read(fd, b[:])
		if n == 1 {
			switch b[0] {
			case '\n':
				return string(trimCR(buf)), nil
			default:
				buf = append(buf, b[0])
			}
			continue
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return "", err
		}
		if len(buf) == 0 {
			return "", errors.New("no password given")
		}
		return string(trimCR(buf)), nil
	}
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}
