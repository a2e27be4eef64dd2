//go:build linux

package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// PromptPassword asks for a password on the terminal tty with echo off and
// returns it. It fails when tty is not a terminal (pass --password-stdin).
func PromptPassword(tty *os.File, prompt io.Writer, user string) (string, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errors.New("standard input is not a terminal: pass the password with --password-stdin")
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", fmt.Errorf("turning terminal echo off: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old) //nolint:errcheck // best effort: restore the terminal.
	fmt.Fprintf(prompt, "Password for %s: ", user)
	line, err := bufio.NewReader(tty).ReadString('\n')
	fmt.Fprintln(prompt)
	if err != nil && line == "" {
		return "", errors.New("no password entered")
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("the password is empty")
	}
	return pw, nil
}
