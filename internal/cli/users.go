package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
)

func newUsersCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "users",
		Short: "Add, change, remove and list the static users of an auth_config.yml",
		Long: `Edit the users: section of a docker_auth auth_config.yml in place. Only the lines of
the user concerned change: comments, order and formatting stay. The result is
checked as 'gatehouse config check' would before it replaces the file (a new
file renamed over the old one, with the old one's mode); a file with problems
is never written. A running 'gatehouse auth-server' or 'gatehouse serve' reloads
the file within seconds; a changed password or a removed user also revokes
that user's refresh tokens.

add and passwd read the password from the first line of standard input, or,
on a terminal, ask for it twice without echo.`,
		Example: `  gatehouse users add --config auth_config.yml alice
  echo "$PASSWORD" | gatehouse users passwd --config auth_config.yml alice
  gatehouse users remove --config auth_config.yml alice
  gatehouse users list --config auth_config.yml`,
	}
	c.AddCommand(
		newUsersEditCmd("add", "Add a user with a new password", usersAdd),
		newUsersEditCmd("passwd", "Set a new password for a user", usersPasswd),
		newUsersEditCmd("remove", "Remove a user", usersRemove),
		newUsersListCmd(),
	)
	return c
}

// usersOp is one editing subcommand.
type usersOp int

const (
	usersAdd usersOp = iota
	usersPasswd
	usersRemove
)

func newUsersEditCmd(name, short string, op usersOp) *cobra.Command {
	var file string
	var cost int
	c := &cobra.Command{
		Use:   name + " --config FILE NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fail(exitUsage, fmt.Errorf("users %s: --config FILE is required", name))
			}
			if cost < minHashCost || cost > maxHashCost {
				return fail(exitUsage, fmt.Errorf("users %s: --cost must be between %d and %d", name, minHashCost, maxHashCost))
			}
			return runUsersEdit(cmd, op, name, file, args[0], cost)
		},
	}
	c.Flags().StringVar(&file, "config", "", "the auth_config.yml to edit")
	if op != usersRemove {
		c.Flags().IntVar(&cost, "cost", defaultHashCost, fmt.Sprintf("bcrypt cost, %d to %d", minHashCost, maxHashCost))
	} else {
		cost = defaultHashCost
	}
	return c
}

func newUsersListCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "list --config FILE",
		Short: "List the users and their labels (never their password hashes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fail(exitUsage, errors.New("users list: --config FILE is required"))
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fail(exitFailure, fmt.Errorf("users list: %w", err))
			}
			users, err := authconfig.ListUsers(data)
			if err != nil {
				return fail(exitFailure, fmt.Errorf("users list: %s: %w", file, err))
			}
			w := &errWriter{w: cmd.OutOrStdout()}
			for _, u := range users {
				name := u.Name
				if name == "" {
					name = `"" (anonymous)`
				}
				var labels []string
				for _, k := range u.SortedLabelNames() {
					labels = append(labels, k+"="+strings.Join(u.Labels[k], ","))
				}
				w.printf("%s\n", strings.TrimSpace(name+"  "+strings.Join(labels, " ")))
			}
			if w.err != nil {
				return fail(exitInternal, w.err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&file, "config", "", "the auth_config.yml to read")
	return c
}

// usableNewName refuses names a new static user cannot have: those the
// token endpoint refuses, and names with white space anywhere or a colon
// (HTTP Basic authentication cannot carry one in a user name).
func usableNewName(name string) error {
	if name == "" {
		return errors.New(`the anonymous user "" is added by hand: write "": {} under users`)
	}
	if err := authn.CheckAccountName(name); err != nil {
		return err
	}
	if strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return errors.New("the account name contains white space")
	}
	if strings.Contains(name, ":") {
		return errors.New("the account name contains a colon, which HTTP Basic authentication cannot carry")
	}
	return nil
}

func runUsersEdit(cmd *cobra.Command, op usersOp, verb, file, name string, cost int) error {
	if op == usersAdd {
		if err := usableNewName(name); err != nil {
			return fail(exitUsage, fmt.Errorf("users add: %w", err))
		}
	}
	unlock, err := lockFile(file)
	if err != nil {
		return fail(exitFailure, fmt.Errorf("users %s: %w", verb, err))
	}
	defer unlock()
	data, err := os.ReadFile(file)
	if err != nil {
		return fail(exitFailure, fmt.Errorf("users %s: %w", verb, err))
	}
	// Refuse before asking for a password.
	var edit func(hash string) ([]byte, error)
	switch op {
	case usersAdd:
		if _, err := authconfig.AddUser(data, name, "$2a$10$"+strings.Repeat("x", 53)); err != nil {
			return fail(exitFailure, fmt.Errorf("users add: %s: %w", file, err))
		}
		edit = func(hash string) ([]byte, error) { return authconfig.AddUser(data, name, hash) }
	case usersPasswd:
		if _, err := authconfig.SetPassword(data, name, "$2a$10$"+strings.Repeat("x", 53)); err != nil {
			return fail(exitFailure, fmt.Errorf("users passwd: %s: %w", file, err))
		}
		edit = func(hash string) ([]byte, error) { return authconfig.SetPassword(data, name, hash) }
	case usersRemove:
		edit = func(string) ([]byte, error) { return authconfig.RemoveUser(data, name) }
	}
	hash := ""
	if op != usersRemove {
		pw, err := readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), fmt.Sprintf("New password for %s: ", quoteName(name)))
		if err != nil {
			return fail(exitFailure, fmt.Errorf("users %s: %w", verb, err))
		}
		h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		if errors.Is(err, bcrypt.ErrPasswordTooLong) {
			return fail(exitFailure, fmt.Errorf("users %s: bcrypt takes at most 72 bytes of password", verb))
		}
		if err != nil {
			return fail(exitInternal, fmt.Errorf("users %s: %w", verb, err))
		}
		hash = string(h)
	}
	out, err := edit(hash)
	if err != nil {
		return fail(exitFailure, fmt.Errorf("users %s: %s: %w", verb, file, err))
	}
	if _, err := authconfig.Parse(file, out); err != nil {
		stderr := cmd.ErrOrStderr()
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				_, _ = fmt.Fprintln(stderr, p.String())
			}
		}
		why := "the edited file would not pass 'gatehouse config check'"
		if _, err := authconfig.Parse(file, data); err != nil {
			why = "the file has problems this edit does not fix (above)"
		}
		return fail(exitFailure, fmt.Errorf("users %s: %s; %s is unchanged", verb, why, file))
	}
	if err := replaceFile(file, data, out); err != nil {
		return fail(exitFailure, fmt.Errorf("users %s: %w", verb, err))
	}
	done := map[usersOp]string{usersAdd: "added", usersPasswd: "changed the password of", usersRemove: "removed"}[op]
	_, err = fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s %s\n", file, done, quoteName(name))
	return err
}

func quoteName(name string) string {
	if name == "" || strings.ContainsAny(name, " \"'") {
		return fmt.Sprintf("%q", name)
	}
	return name
}

// lockFile takes an exclusive advisory lock on file, so that two users
// commands do not overwrite each other's edits. As the file is replaced
// by rename, the lock is retried until it is held on the file the path
// names.
func lockFile(file string) (unlock func(), err error) {
	for range 100 {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil { //nolint:gosec // a file descriptor fits an int
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", file, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(file)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return func() { _ = f.Close() }, nil
		}
		_ = f.Close() // replaced meanwhile: lock the new one
	}
	return nil, fmt.Errorf("lock %s: the file keeps being replaced", file)
}

// tempPattern names the new files replaceFile writes beside file.
func tempPattern(file string) string { return "." + filepath.Base(file) + ".tmp-*" }

// replaceFile writes data to a new file beside file with file's mode,
// syncs it and renames it over file, unless file no longer holds old
// (someone edited it meanwhile). The caller holds lockFile's lock, so
// new files of an earlier edit that was killed before its rename are
// leftovers no one writes any more: they are removed first (they hold a
// whole config, password hashes included).
func replaceFile(file string, old, data []byte) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	if stale, err := filepath.Glob(filepath.Join(dir, tempPattern(file))); err == nil {
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	tmp, err := os.CreateTemp(dir, tempPattern(file))
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	cur, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, old) {
		return fmt.Errorf("%s changed while it was being edited; nothing was written, run the command again", file)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
