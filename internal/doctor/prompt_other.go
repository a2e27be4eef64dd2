//go:build !linux

package doctor

import (
	"errors"
	"io"
	"os"
)

// PromptPassword is not available on this platform: pass --password-stdin.
func PromptPassword(_ *os.File, _ io.Writer, _ string) (string, error) {
	return "", errors.New("no password prompt on this platform: pass the password with --password-stdin")
}
