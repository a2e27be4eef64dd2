package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/gatehouse-registry/gatehouse/internal/token"
	"github.com/spf13/cobra"
)

// passwordEnv is the environment variable gatehouse token reads the
// password from when --password-stdin is not given.
const passwordEnv = "GATEHOUSE_PASSWORD"

type tokenFlags struct {
	realm, service string
	scopes         []string
	user           string
	passwordStdin  bool
	caFile         string
	insecure       bool
	refresh        bool
	decode         bool
	timeout        time.Duration
}

func newTokenCmd() *cobra.Command {
	var f tokenFlags
	c := &cobra.Command{
		Use:   "token --realm URL --service S [--scope SCOPE]... [-u USER]",
		Short: "Fetch a registry token from a token server",
		Long: `Ask a token server (gatehouse auth-server, docker_auth) for a registry token, as a registry
client does after a 401: GET realm?service=S&scope=... with HTTP Basic credentials.
Prints the server's JSON answer, or with --decode the token's header and claims (not verified).

The password is read from the first line of standard input with --password-stdin, else from
the GATEHOUSE_PASSWORD environment variable, else asked for on the terminal (without echo).
Without -u the request is anonymous.

Without --ca-file, the CA of gatehouse serve's data directory is trusted besides the system
CAs when there is one: $GATEHOUSE_DATA_DIR/trust/ca.crt, else ./gatehouse-data/trust/ca.crt.`,
		Example: `  echo "$PW" | gatehouse token --realm https://auth.example.com:5001/auth --service Docker-registry \
      --scope repository:alpine:pull -u alice --password-stdin --decode`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runToken(ctx, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.realm, "realm", "", "token server URL (the realm of the registry's Bearer challenge)")
	fl.StringVar(&f.service, "service", "", "service name (the registry's auth.token.service)")
	fl.StringArrayVar(&f.scopes, "scope", nil, "scope to ask for, e.g. repository:alpine:pull,push (repeatable)")
	fl.StringVarP(&f.user, "user", "u", "", "account name")
	fl.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from standard input")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of CA certificates to trust besides the system ones (default: gatehouse-data/trust/ca.crt when it exists)")
	fl.BoolVar(&f.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fl.BoolVar(&f.refresh, "refresh", false, "also ask for a refresh token (offline_token=true)")
	fl.BoolVar(&f.decode, "decode", false, "print the decoded token header and claims instead of the JSON answer")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "time limit for the request")
	return c
}

func runToken(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, f tokenFlags) error {
	if f.realm == "" {
		return fail(exitUsage, errors.New("token: --realm URL is required"))
	}
	realm, err := url.Parse(f.realm)
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return fail(exitUsage, fmt.Errorf("token: --realm must be an http or https URL, got %q", f.realm))
	}
	if f.service == "" {
		return fail(exitUsage, errors.New("token: --service is required (the registry's auth.token.service)"))
	}
	scopes, err := token.ParseScopes(f.scopes)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("token: %w", err))
	}
	if f.timeout <= 0 {
		return fail(exitUsage, errors.New("token: --timeout must be positive"))
	}

	var password string
	switch {
	case f.user == "" && f.passwordStdin:
		return fail(exitUsage, errors.New("token: --password-stdin needs -u USER"))
	case f.passwordStdin:
		if password, err = readPasswordLine(bufio.NewReader(stdin)); err != nil {
			return fail(exitUsage, fmt.Errorf("token: %w", err))
		}
	case f.user != "":
		password = os.Getenv(passwordEnv)
		if password != "" {
			break
		}
		fd, ok := terminalFD(stdin)
		if !ok {
			return fail(exitUsage, fmt.Errorf("token: no password for %q: pass --password-stdin or set %s", f.user, passwordEnv))
		}
		if password, err = promptPassword(fd, stderr, fmt.Sprintf("Password for %s: ", f.user)); err != nil {
			return fail(exitUsage, fmt.Errorf("token: %w", err))
		}
	}
	if f.user != "" && realm.Scheme == "http" {
		_, _ = fmt.Fprintln(stderr, "gatehouse: warning: sending the password over plain HTTP")
	}

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.caFile == "" && !f.insecure {
		// Next to a data directory of gatehouse serve, trust its CA.
		if ca := serveTrustCA(); ca != "" {
			f.caFile = ca
			_, _ = fmt.Fprintf(stderr, "gatehouse: trusting %s besides the system CAs (--ca-file to choose another)\n", ca)
		}
	}
	if f.caFile != "" {
		certs, err := tlsutil.LoadCertificates(f.caFile)
		if err != nil {
			return fail(exitUsage, fmt.Errorf("token: --ca-file: %w", err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		tlsCfg.RootCAs = pool
	}
	if f.insecure {
		_, _ = fmt.Fprintln(stderr, "gatehouse: warning: --insecure: the server's certificate is not checked")
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // the operator asked for it, and is warned.
	}
	client := &http.Client{
		Timeout: f.timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSClientConfig:       tlsCfg,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: f.timeout,
		},
		// Never send the credentials on to another host.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Host != via[0].URL.Host {
				return fmt.Errorf("refusing to follow a redirect to another host (%s)", req.URL.Host)
			}
			return nil
		},
	}

	q := realm.Query()
	q.Set("service", f.service)
	for _, s := range scopes {
		q.Add("scope", s.String())
	}
	if f.user != "" {
		q.Set("account", f.user)
	}
	if f.refresh {
		q.Set("offline_token", "true")
		q.Set("client_id", "gatehouse-cli")
	}
	realm.RawQuery = q.Encode()

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("token: %w", err))
	}
	if f.user != "" {
		req.SetBasicAuth(f.user, password)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fail(exitFailure, fmt.Errorf("token: %w", err))
	}
	defer resp.Body.Close() //nolint:errcheck // read-only body.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(exitFailure, fmt.Errorf("token: reading the answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		var envelope struct {
			Errors []struct{ Code, Message string }
		}
		if json.Unmarshal(body, &envelope) == nil && len(envelope.Errors) > 0 {
			msg = strings.ToLower(envelope.Errors[0].Code) + ": " + envelope.Errors[0].Message
		}
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return fail(exitFailure, fmt.Errorf("token: %s answered %s: %s", realm.Host, resp.Status, msg))
	}
	var answer struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fail(exitFailure, fmt.Errorf("token: the answer is not JSON: %w", err))
	}
	if answer.Token == "" {
		answer.Token = answer.AccessToken
	}
	if answer.Token == "" {
		return fail(exitFailure, errors.New("token: the answer has no token"))
	}
	if !f.decode {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body, "", "  "); err != nil {
			return fail(exitFailure, fmt.Errorf("token: %w", err))
		}
		pretty.WriteByte('\n')
		_, err := stdout.Write(pretty.Bytes())
		return err
	}
	decoded, err := decodeJWT(answer.Token)
	if err != nil {
		return fail(exitFailure, fmt.Errorf("token: %w", err))
	}
	_, err = stdout.Write(decoded)
	return err
}

// serveTrustCA returns the trust CA of gatehouse serve's data directory
// ($GATEHOUSE_DATA_DIR, else ./gatehouse-data) when it exists.
func serveTrustCA() string {
	dir := os.Getenv(dataDirEnv)
	if dir == "" {
		dir = "gatehouse-data"
	}
	ca := filepath.Join(dir, "trust", "ca.crt")
	if st, err := os.Stat(ca); err == nil && st.Mode().IsRegular() { //nolint:gosec // the invoking user's own data directory
		return ca
	}
	return ""
}

// decodeJWT returns {"header": ..., "claims": ...} of a compact JWS,
// indented, without verifying the signature.
func decodeJWT(tok string) ([]byte, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("the token is not a JWT (want header.claims.signature)")
	}
	var out struct {
		Header json.RawMessage `json:"header"`
		Claims json.RawMessage `json:"claims"`
	}
	for i, dst := range []*json.RawMessage{&out.Header, &out.Claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("JWT part %d is not base64url: %w", i+1, err)
		}
		if !json.Valid(b) {
			return nil, fmt.Errorf("JWT part %d is not JSON", i+1)
		}
		*dst = b
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
