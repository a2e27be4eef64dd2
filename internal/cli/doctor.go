package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/doctor"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/spf13/cobra"
)

type doctorFlags struct {
	user          string
	passwordStdin bool
	caFile        string
	repo          string
	scopes        []string
	timeout       time.Duration
	json          bool
}

func newDoctorCmd() *cobra.Command {
	var f doctorFlags
	c := &cobra.Command{
		Use:   "doctor REGISTRY [-u USER]",
		Short: "Check a registry deployment from the client's side and name the first broken link",
		Long: `Check a registry and its token server the way a client walks them, in order:
  dns        the registry's host name resolves
  tls        the registry accepts connections; its certificate verifies (system CAs and --ca-file)
  challenge  GET /v2/ answers 401 with a Bearer (or Basic) challenge, or 200 without auth
  realm-dns  the token server (the challenge's realm) resolves
  realm-tls  the token server accepts connections; its certificate verifies
  token      the token server issues a token for registry:catalog:* (and --repo's pull)
  claims     the token's audience matches the service, its times fit the clocks, its key is findable
  trust      the registry accepts the token on GET /v2/
  pull       GET /v2/_catalog (or the tags of --repo) succeeds
Each check prints one line: ok, FAIL with the fix, or skip. Checking stops at the first
failure; the exit status is 0 when nothing failed, 1 otherwise.

REGISTRY is host[:port] (https) or an http(s):// URL. With -u the password is read from
the first line of standard input (--password-stdin) or asked for on the terminal; without
-u the token is requested anonymously. The password and the token are never printed.`,
		Example: `  gatehouse doctor registry.example.com:5000 -u alice --ca-file certs/ca.crt
  echo "$PW" | gatehouse doctor https://localhost:5000 -u alice --password-stdin --repo library/alpine
  gatehouse doctor localhost:5000 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runDoctor(ctx, args[0], cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.user, "user", "u", "", "account to log in as (anonymous without)")
	fl.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of CA certificates to trust besides the system ones")
	fl.StringVar(&f.repo, "repo", "", "repository to ask a pull token for and list the tags of")
	fl.StringArrayVar(&f.scopes, "scope", nil, "further scope to ask the token server for (repeatable)")
	fl.DurationVar(&f.timeout, "timeout", doctor.DefaultTimeout, "time limit of each check (connect, TLS handshake, request)")
	fl.BoolVar(&f.json, "json", false, "print the results as JSON at the end instead of lines")
	return c
}

func runDoctor(ctx context.Context, registry string, stdin io.Reader, stdout, stderr io.Writer, f doctorFlags) error {
	if f.timeout <= 0 {
		return fail(exitUsage, errors.New("doctor: --timeout must be positive"))
	}
	var password string
	switch {
	case f.user == "" && f.passwordStdin:
		return fail(exitUsage, errors.New("doctor: --password-stdin needs -u USER"))
	case f.passwordStdin:
		pw, err := readPasswordLine(bufio.NewReader(stdin))
		if err != nil {
			return fail(exitUsage, fmt.Errorf("doctor: %w", err))
		}
		password = pw
	case f.user != "":
		tty, isFile := stdin.(*os.File)
		if !isFile {
			return fail(exitUsage, errors.New("doctor: standard input is not a terminal: pass the password with --password-stdin"))
		}
		pw, err := doctor.PromptPassword(tty, stderr, f.user)
		if err != nil {
			return fail(exitUsage, fmt.Errorf("doctor: %w", err))
		}
		password = pw
	}
	opts := doctor.Options{
		Registry: registry,
		User:     f.user,
		Password: secret.Secret(password),
		CAFile:   f.caFile,
		Repo:     f.repo,
		Scopes:   f.scopes,
		Timeout:  f.timeout,
	}
	rep := doctor.Report{Registry: registry}
	emit := func(res doctor.Result) {
		rep.Checks = append(rep.Checks, res)
		if !f.json {
			fmt.Fprintln(stdout, doctor.Line(res))
		}
	}
	allOK, err := doctor.Run(ctx, opts, emit)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("doctor: %w", err))
	}
	rep.OK = allOK
	if f.json {
		if err := doctor.WriteJSON(stdout, rep); err != nil {
			return err
		}
	} else if allOK {
		fmt.Fprintln(stdout, "all checks passed")
	} else {
		failed := ""
		for _, r := range rep.Checks {
			if r.Status == doctor.Fail {
				failed = r.Check
				break
			}
		}
		fmt.Fprintf(stdout, "the %s check failed: %s\n", failed, strings.TrimSpace(describeCheck(failed)))
	}
	if !allOK {
		return silentExit{code: exitFailure}
	}
	return nil
}

// describeCheck names what a failed check means for a user.
func describeCheck(check string) string {
	switch check {
	case doctor.CheckDNS, doctor.CheckTLS:
		return "clients cannot reach the registry securely"
	case doctor.CheckChallenge:
		return "the registry does not tell clients how to authenticate"
	case doctor.CheckRealmDNS, doctor.CheckRealmTLS:
		return "clients cannot reach the token server the registry names"
	case doctor.CheckToken:
		return "the token server gives this client no token (docker login fails)"
	case doctor.CheckClaims:
		return "the token is one the registry will refuse"
	case doctor.CheckTrust:
		return "the registry refuses the token server's tokens (docker login fails with unauthorized)"
	case doctor.CheckPull:
		return "logging in works, reading does not"
	}
	return ""
}
