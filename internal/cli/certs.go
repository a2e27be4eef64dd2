package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
	"github.com/spf13/cobra"
	"software.sslmate.com/src/go-pkcs12"
)

func newCertsCmd() *cobra.Command {
	c := &cobra.Command{Use: "certs", Short: "Certificate tools"}
	c.AddCommand(newCertsInitCmd())
	return c
}

type certsInitFlags struct {
	out         string
	hosts       []string
	ips         []string
	rsa         bool
	days        int
	caDays      int
	caName      string
	force       bool
	pkcs12      bool
	p12PassFile string
}

func newCertsInitCmd() *cobra.Command {
	var f certsInitFlags
	c := &cobra.Command{
		Use:   "init --out DIR --host NAME... [--ip IP]...",
		Short: "Make a CA and a server certificate",
		Long: `Make a certificate authority (ca.crt, ca.key) and a server certificate signed by it
(server.crt holding the server certificate then the CA, server.key) in DIR.

The server certificate carries every --host and --ip as subject alternative names and may be
used for TLS servers and clients. Keys are ECDSA P-256 unless --rsa (RSA 2048). Key files are
written with mode 0600.

If DIR already holds ca.crt and ca.key, that CA signs the new server certificate, so more
server certificates can be added under one CA. Existing server files are kept unless --force.`,
		Example: `  gatehouse certs init --out certs --host registry.example.com --host localhost --ip 127.0.0.1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCertsInit(cmd.OutOrStdout(), f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.out, "out", "", "directory to write the files to (created if missing)")
	fl.StringArrayVar(&f.hosts, "host", nil, "DNS name for the server certificate (repeatable)")
	fl.StringArrayVar(&f.ips, "ip", nil, "IP address for the server certificate (repeatable)")
	fl.BoolVar(&f.rsa, "rsa", false, "make RSA 2048 keys instead of ECDSA P-256")
	fl.IntVar(&f.days, "days", 825, "validity of the server certificate in days")
	fl.IntVar(&f.caDays, "ca-days", 3650, "validity of a new CA in days")
	fl.StringVar(&f.caName, "ca-name", "Gatehouse CA", "common name of a new CA")
	fl.BoolVar(&f.force, "force", false, "overwrite existing server.crt, server.key and server.p12")
	fl.BoolVar(&f.pkcs12, "pkcs12", false, "also write server.p12 (key, certificate and CA)")
	fl.StringVar(&f.p12PassFile, "pkcs12-password-file", "", "file holding the server.p12 password (first line); default: empty password")
	return c
}

func runCertsInit(out io.Writer, f certsInitFlags) error {
	if f.out == "" {
		return fail(exitUsage, errors.New("certs init: --out DIR is required"))
	}
	if len(f.hosts) == 0 && len(f.ips) == 0 {
		return fail(exitUsage, errors.New("certs init: give at least one --host NAME or --ip IP"))
	}
	if f.days <= 0 || f.caDays <= 0 {
		return fail(exitUsage, errors.New("certs init: --days and --ca-days must be positive"))
	}
	if f.p12PassFile != "" && !f.pkcs12 {
		return fail(exitUsage, errors.New("certs init: --pkcs12-password-file needs --pkcs12"))
	}
	var ips []net.IP
	for _, s := range f.ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return fail(exitUsage, fmt.Errorf("certs init: --ip %q is not an IP address", s))
		}
		ips = append(ips, ip)
	}
	for _, h := range f.hosts {
		if net.ParseIP(h) != nil {
			return fail(exitUsage, fmt.Errorf("certs init: --host %q is an IP address; pass it with --ip", h))
		}
		if h == "" || strings.ContainsAny(h, " /:") {
			return fail(exitUsage, fmt.Errorf("certs init: --host %q is not a DNS name", h))
		}
	}
	var opts []tlsutil.GenOption
	if f.rsa {
		opts = append(opts, tlsutil.WithRSA(2048))
	}
	p12Password := ""
	if f.p12PassFile != "" {
		b, err := os.ReadFile(f.p12PassFile)
		if err != nil {
			return fail(exitFailure, fmt.Errorf("certs init: %w", err))
		}
		p12Password = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	}

	var msg strings.Builder
	if err := os.MkdirAll(f.out, 0o750); err != nil {
		return fail(exitFailure, fmt.Errorf("certs init: %w", err))
	}
	path := func(name string) string { return filepath.Join(f.out, name) }
	serverFiles := []string{"server.crt", "server.key"}
	if f.pkcs12 {
		serverFiles = append(serverFiles, "server.p12")
	}
	if !f.force {
		var existing []string
		for _, n := range serverFiles {
			if exists(path(n)) {
				existing = append(existing, path(n))
			}
		}
		if len(existing) > 0 {
			return fail(exitFailure, fmt.Errorf("certs init: %s already exist(s); use --force to replace the server certificate (the CA is kept)", strings.Join(existing, ", ")))
		}
	}

	// The CA: reuse one that is there (after checking it), else make one.
	var wrote []string
	caCrt, caKeyFile := path("ca.crt"), path("ca.key")
	ca, created, err := tlsutil.LoadOrCreateCA(caCrt, caKeyFile, tlsutil.NewCA{
		Name: f.caName, Validity: time.Duration(f.caDays) * 24 * time.Hour, Options: opts,
	})
	if err != nil {
		return fail(exitFailure, fmt.Errorf("certs init: %w", err))
	}
	if created {
		wrote = append(wrote, caCrt+"  (CA certificate: give it to clients)", caKeyFile+"  (CA key, mode 0600: keep it offline)")
	} else {
		fmt.Fprintf(&msg, "Using the existing CA %s (%s, valid until %s)\n", caCrt, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.Format(time.DateOnly))
	}

	cert, key, err := ca.IssueServer(path("server.crt"), path("server.key"), f.hosts, ips, time.Duration(f.days)*24*time.Hour, opts...)
	if err != nil {
		return fail(exitFailure, fmt.Errorf("certs init: %w", err))
	}
	wrote = append(wrote, path("server.crt")+"  (server certificate, then the CA)", path("server.key")+"  (server key, mode 0600)")
	if f.pkcs12 {
		p12, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{ca.Cert}, p12Password)
		if err != nil {
			return fail(exitFailure, fmt.Errorf("certs init: PKCS#12: %w", err))
		}
		if err := tlsutil.WriteFileAtomic(path("server.p12"), p12, 0o600); err != nil {
			return fail(exitFailure, fmt.Errorf("certs init: %w", err))
		}
		note := "empty password"
		if f.p12PassFile != "" {
			note = "password from " + f.p12PassFile
		}
		wrote = append(wrote, path("server.p12")+"  (PKCS#12 of key, certificate and CA, "+note+", mode 0600)")
	}

	fmt.Fprintln(&msg, "Wrote:")
	for _, w := range wrote {
		fmt.Fprintln(&msg, "  "+w)
	}
	names := append([]string{}, f.hosts...)
	for _, ip := range ips {
		names = append(names, ip.String())
	}
	fmt.Fprintf(&msg, "Server certificate for %s, valid until %s.\n", strings.Join(names, ", "), cert.NotAfter.Format(time.DateOnly))
	first := names[0]
	if ip := net.ParseIP(first); ip != nil && ip.To4() == nil {
		first = "[" + first + "]"
	}
	fmt.Fprintf(&msg, `
Next steps:
  - Registry (config.yml):   http.tls.certificate: %[1]s
                             http.tls.key: %[2]s
  - Auth server (auth_config.yml): server.certificate: %[1]s, server.key: %[2]s
    (also the token signing key unless token.certificate/key are set); the registry's
    auth.token.rootcertbundle may be %[1]s or %[3]s.
  - Docker clients: copy %[3]s to /etc/docker/certs.d/%[4]s:5000/ca.crt
    (one directory per host:port the registry is reached by, e.g. also :5001 for the auth server).
  - Other clients (curl, skopeo, podman): add %[3]s to the system trust store
    (Debian: /usr/local/share/ca-certificates/gatehouse.crt, then update-ca-certificates).
`, path("server.crt"), path("server.key"), caCrt, first)
	_, err = io.WriteString(out, msg.String())
	return err
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, fs.ErrNotExist)
}
