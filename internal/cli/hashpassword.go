package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// Bcrypt costs hash-password accepts; 10 is htpasswd -B's default.
const (
	minHashCost     = 10
	maxHashCost     = 14
	defaultHashCost = 10
)

func newHashPasswordCmd() *cobra.Command {
	var cost int
	c := &cobra.Command{
		Use:   "hash-password",
		Short: "Read a password on stdin and print a bcrypt hash",
		Long: `Read a password and print its bcrypt hash, for the password field of a user in
auth_config.yml (the same format as htpasswd -nB). On a terminal it asks twice, without
echo; otherwise it reads the first line of standard input.`,
		Example: `  gatehouse hash-password
  echo 'my password' | gatehouse hash-password
  gatehouse hash-password --cost 12 < password.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cost < minHashCost || cost > maxHashCost {
				return fail(exitUsage, fmt.Errorf("hash-password: --cost must be between %d and %d", minHashCost, maxHashCost))
			}
			pw, err := readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "Password: ")
			if err != nil {
				return fail(exitFailure, fmt.Errorf("hash-password: %w", err))
			}
			hash, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
			if errors.Is(err, bcrypt.ErrPasswordTooLong) {
				return fail(exitFailure, errors.New("hash-password: bcrypt takes at most 72 bytes of password"))
			}
			if err != nil {
				return fail(exitInternal, fmt.Errorf("hash-password: %w", err))
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(hash))
			return err
		},
	}
	c.Flags().IntVar(&cost, "cost", defaultHashCost, fmt.Sprintf("bcrypt cost, %d to %d", minHashCost, maxHashCost))
	return c
}

// readNewPassword asks for a password twice (prompt, then "Again: "),
// without echo, when stdin is a terminal, and otherwise reads its first
// line. hash-password and users add/passwd use it.
func readNewPassword(stdin io.Reader, prompts io.Writer, prompt string) (string, error) {
	fd, ok := terminalFD(stdin)
	if !ok {
		return readPasswordLine(bufio.NewReader(stdin))
	}
	pw, err := promptPassword(fd, prompts, prompt)
	if err != nil {
		return "", err
	}
	again, err := promptPassword(fd, prompts, "Again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two passwords differ")
	}
	return pw, nil
}

// readPasswordLine returns the first line of r without its line ending.
// An empty password is an error.
func readPasswordLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on standard input")
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", errors.New("the password is empty")
	}
	return line, nil
}
