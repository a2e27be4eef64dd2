// Package bootstrap prepares the data directory of `gatehouse serve`: a CA and
// server certificate, a bootstrap admin account, and the two config files
// (docker_auth's auth_config.yml and distribution's config.yml) that the
// drop-in commands would read. What exists is kept, so a second start
// reuses the first one's keys, password and any edits an operator made.
package bootstrap

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// Options says where and how to serve.
type Options struct {
	DataDir      string   // created if missing
	Hosts        []string // extra DNS names or IPs for the server certificate
	PublicHost   string   // the name clients use to reach the auth server (token realm); default "localhost"
	RegistryAddr string   // default ":5000"
	AuthAddr     string   // default ":5001"
	AdminUser    string   // default "admin"
	// AdminPassword is the admin's password on first start; empty: a
	// random one. When admin-password exists already it must hold this
	// password, or Ensure fails (a password that would be ignored is an
	// error, not a surprise at the next login).
	AdminPassword secret.Secret
	// DebugAddr is the registry's debug server (Prometheus metrics), and
	// AuthMetricsAddr the auth server's metrics listener; empty: none.
	DebugAddr       string
	AuthMetricsAddr string
	// Explicit marks the options the caller set on purpose (command-line
	// flags). Such an option that a file made by an earlier start
	// contradicts is an error naming the file: it is never ignored.
	Explicit Explicit
}

// Explicit lists the options given on purpose.
type Explicit struct {
	RegistryAddr, AuthAddr, PublicHost, Hosts, DebugAddr, AuthMetricsAddr bool
}

// Layout names the files in a data directory.
type Layout struct {
	Dir    string
	CACert string
	CAKey  string
	// TrustCA is a copy of the CA certificate alone in a folder of its
	// own, for clients that take a folder (skopeo and podman --cert-dir
	// would take ca.key beside ca.crt for a client certificate).
	TrustCA           string
	ServerCert        string
	ServerKey         string
	AdminPasswordFile string
	AuthConfig        string
	RegistryConfig    string
	StorageDir        string
}

// Result is what Ensure found or made.
type Result struct {
	Layout
	// AdminPassword is set only when Ensure created the admin account, so
	// the caller can show it once.
	AdminPassword secret.Secret
	Created       []string // files written by this call
}

// LayoutOf returns the file names used under dir.
func LayoutOf(dir string) Layout {
	certs := filepath.Join(dir, "certs")
	return Layout{
		Dir:               dir,
		CACert:            filepath.Join(certs, "ca.crt"),
		CAKey:             filepath.Join(certs, "ca.key"),
		TrustCA:           filepath.Join(dir, "trust", "ca.crt"),
		ServerCert:        filepath.Join(certs, "server.crt"),
		ServerKey:         filepath.Join(certs, "server.key"),
		AdminPasswordFile: filepath.Join(dir, "admin-password"),
		AuthConfig:        filepath.Join(dir, "auth_config.yml"),
		RegistryConfig:    filepath.Join(dir, "config.yml"),
		StorageDir:        filepath.Join(dir, "registry"),
	}
}

// Ensure creates whatever is missing in the data directory.
func Ensure(opts Options) (*Result, error) {
	if opts.DataDir == "" {
		return nil, errors.New("bootstrap: no data directory given")
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	if opts.RegistryAddr == "" {
		opts.RegistryAddr = ":5000"
	}
	if opts.AuthAddr == "" {
		opts.AuthAddr = ":5001"
	}
	if opts.AdminUser == "" {
		opts.AdminUser = "admin"
	}
	if opts.PublicHost == "" {
		opts.PublicHost = "localhost"
	}
	res := &Result{Layout: LayoutOf(dir)}
	if err := res.checkExisting(opts); err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Dir(res.CACert), res.StorageDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	if err := res.ensureCerts(opts); err != nil {
		return nil, err
	}
	if err := res.ensureTrust(); err != nil {
		return nil, err
	}
	hash, err := res.ensureAdmin(opts.AdminPassword)
	if err != nil {
		return nil, err
	}
	if err := res.ensureAuthConfig(opts, hash); err != nil {
		return nil, err
	}
	if err := res.ensureRegistryConfig(opts); err != nil {
		return nil, err
	}
	return res, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// ensureCerts makes the server certificate when it is missing, signed by
// the CA in the data directory, which is checked as `gatehouse certs init`
// checks it, or made when there is none. An existing server certificate is
// kept as it is, and then the CA (whose key may be kept offline) is not
// needed.
func (r *Result) ensureCerts(opts Options) error {
	haveCrt, err := exists(r.ServerCert)
	if err != nil {
		return err
	}
	haveKey, err := exists(r.ServerKey)
	if err != nil {
		return err
	}
	switch {
	case haveCrt && haveKey:
		return nil
	case haveCrt || haveKey:
		return fmt.Errorf("bootstrap: %s has only one of %s and %s; restore the other or remove both to have a new server certificate made",
			filepath.Dir(r.ServerCert), filepath.Base(r.ServerCert), filepath.Base(r.ServerKey))
	}
	ca, created, err := tlsutil.LoadOrCreateCA(r.CACert, r.CAKey, tlsutil.NewCA{Name: "Gatehouse CA", Validity: 10 * 365 * 24 * time.Hour})
	if err != nil {
		return fmt.Errorf("bootstrap: the server certificate is missing and no CA can make one: %w", err)
	}
	if created {
		r.Created = append(r.Created, r.CACert, r.CAKey)
	}
	hosts, ips := certNames(opts)
	if _, _, err := ca.IssueServer(r.ServerCert, r.ServerKey, hosts, ips, 825*24*time.Hour); err != nil {
		return fmt.Errorf("bootstrap: make server certificate: %w", err)
	}
	r.Created = append(r.Created, r.ServerCert, r.ServerKey)
	return nil
}

// certNames lists the names the server certificate is valid for.
func certNames(opts Options) ([]string, []net.IP) {
	hosts := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		hosts = append(hosts, h)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, h := range append([]string{opts.PublicHost}, opts.Hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" && !contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts, ips
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ensureTrust copies the CA certificate to trust/ca.crt when that is
// missing: from certs/ca.crt, else from the end of the server
// certificate's chain when that is a CA. With neither there is nothing
// to copy, and clients are told about the server chain instead.
func (r *Result) ensureTrust() error {
	ok, err := exists(r.TrustCA)
	if err != nil || ok {
		return err
	}
	// A ca.crt that does not parse is left to the registry's config check
	// (it is the rootcertbundle): here it is only not copied.
	var ca []byte
	if certs, err := tlsutil.LoadCertificates(r.CACert); err == nil {
		ca = tlsutil.EncodeCertsPEM(certs...)
	} else if chain, err := tlsutil.LoadCertificates(r.ServerCert); err == nil && len(chain) > 1 && chain[len(chain)-1].IsCA {
		ca = tlsutil.EncodeCertsPEM(chain[len(chain)-1])
	}
	if ca == nil {
		r.TrustCA = ""
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(r.TrustCA), 0o755); err != nil { //nolint:gosec // public certificates, inside the private data directory
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := tlsutil.WriteFileAtomic(r.TrustCA, ca, 0o644); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	r.Created = append(r.Created, r.TrustCA)
	return nil
}

// ensureAdmin returns the bcrypt hash of the admin password, taking want
// or making a password when there is none yet.
func (r *Result) ensureAdmin(want secret.Secret) (string, error) {
	data, err := os.ReadFile(r.AdminPasswordFile)
	var pw string
	switch {
	case err == nil:
		pw = strings.TrimSpace(string(data))
		if pw == "" {
			return "", fmt.Errorf("bootstrap: %s is empty; delete it to have a new password made", r.AdminPasswordFile)
		}
		if !want.IsEmpty() && subtle.ConstantTimeCompare([]byte(want.Reveal()), []byte(pw)) != 1 {
			return "", fmt.Errorf("bootstrap: the admin password given for the first start differs from the one in %s, which an earlier start set; "+
				"the admin's password is the hash in %s: change it there (gatehouse hash-password makes one) and stop passing another",
				r.AdminPasswordFile, r.AuthConfig)
		}
	case errors.Is(err, fs.ErrNotExist):
		if !want.IsEmpty() {
			pw = want.Reveal()
			if strings.TrimSpace(pw) != pw || strings.ContainsAny(pw, "\r\n") {
				return "", errors.New("bootstrap: the admin password must not start or end with white space or hold a line break")
			}
			if len(pw) > 72 {
				return "", errors.New("bootstrap: the admin password is longer than bcrypt's 72 bytes")
			}
		} else {
			buf := make([]byte, 18)
			if _, err := rand.Read(buf); err != nil {
				return "", err
			}
			pw = base64.RawURLEncoding.EncodeToString(buf)
		}
		if err := tlsutil.WriteFileAtomic(r.AdminPasswordFile, []byte(pw+"\n"), 0o600); err != nil {
			return "", err
		}
		r.AdminPassword = secret.Secret(pw)
		r.Created = append(r.Created, r.AdminPasswordFile)
	default:
		return "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return string(hash), nil
}

func (r *Result) ensureAuthConfig(opts Options, adminHash string) error {
	ok, err := exists(r.AuthConfig)
	if err != nil || ok {
		return err
	}
	cfg := fmt.Sprintf(`# Token auth server settings for "gatehouse serve", in cesanta/docker_auth's
# auth_config.yml format (gatehouse auth-server reads the same file).
# Made on first start; edit it freely and check it with: gatehouse config check %[1]s
server:
  addr: %[2]s
  certificate: %[3]s
  key: %[4]s
%[8]stoken:
  issuer: gatehouse
  expiration: 900
users:
  # The bootstrap admin. Its password is in %[5]s.
  # Add users with: echo 'their password' | gatehouse hash-password
  %[6]s:
    password: %[7]s
acl:
  - match: {account: %[6]s}
    actions: ["*"]
    comment: the bootstrap admin may do everything
  # Everything else is denied.
`, r.AuthConfig, strconv.Quote(opts.AuthAddr), strconv.Quote(r.ServerCert), strconv.Quote(r.ServerKey),
		r.AdminPasswordFile, strconv.Quote(opts.AdminUser), strconv.Quote(adminHash), authMetrics(opts.AuthMetricsAddr))
	if err := tlsutil.WriteFileAtomic(r.AuthConfig, []byte(cfg), 0o600); err != nil {
		return err
	}
	r.Created = append(r.Created, r.AuthConfig)
	return nil
}

func (r *Result) ensureRegistryConfig(opts Options) error {
	ok, err := exists(r.RegistryConfig)
	if err != nil || ok {
		return err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	_, authPort, err := net.SplitHostPort(opts.AuthAddr)
	if err != nil {
		return fmt.Errorf("bootstrap: auth address %q: %w", opts.AuthAddr, err)
	}
	realm := "https://" + net.JoinHostPort(opts.PublicHost, authPort) + "/auth"
	cfg := fmt.Sprintf(`# Registry settings for "gatehouse serve", in distribution's config.yml format
# (gatehouse registry serve reads the same file).
# Made on first start; edit it freely and check it with: gatehouse config check %[1]s
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %[2]s
  delete:
    enabled: true
http:
  addr: %[3]s
  # Signs upload state; replicas behind one load balancer must share it.
  secret: %[4]s
  tls:
    certificate: %[5]s
    key: %[6]s
%[9]sauth:
  token:
    realm: %[7]s
    service: gatehouse
    issuer: gatehouse
    # Tokens carry their certificate chain (x5c), so the CA is enough here.
    rootcertbundle: %[8]s
`, r.RegistryConfig, strconv.Quote(r.StorageDir), strconv.Quote(opts.RegistryAddr),
		strconv.Quote(base64.RawURLEncoding.EncodeToString(buf)), strconv.Quote(r.ServerCert),
		strconv.Quote(r.ServerKey), strconv.Quote(realm), strconv.Quote(r.CACert), registryDebug(opts.DebugAddr))
	if err := tlsutil.WriteFileAtomic(r.RegistryConfig, []byte(cfg), 0o600); err != nil {
		return err
	}
	r.Created = append(r.Created, r.RegistryConfig)
	return nil
}

// authMetrics is the server.metrics section of a generated auth_config.yml.
func authMetrics(addr string) string {
	if addr == "" {
		return ""
	}
	return fmt.Sprintf(`  # Prometheus metrics on a listener of their own, off the public port.
  metrics:
    addr: %s
`, strconv.Quote(addr))
}

// registryDebug is the http.debug section of a generated config.yml.
func registryDebug(addr string) string {
	if addr == "" {
		return ""
	}
	return fmt.Sprintf(`  # Prometheus metrics (GET /metrics) on a debug listener, off the public port.
  debug:
    addr: %s
    prometheus:
      enabled: true
`, strconv.Quote(addr))
}

// checkExisting compares the options given on purpose with the files an
// earlier start made, and lists every contradiction with the file to edit.
func (r *Result) checkExisting(opts Options) error {
	var problems []string
	differs := func(flag, want, file, key, got string) {
		if want != got {
			problems = append(problems, fmt.Sprintf("%s %s, but %s has %s: %q", flag, want, file, key, got))
		}
	}
	x := opts.Explicit
	if x.RegistryAddr || x.DebugAddr || x.PublicHost {
		var reg struct {
			HTTP struct {
				Addr  string `yaml:"addr"`
				Debug struct {
					Addr string `yaml:"addr"`
				} `yaml:"debug"`
			} `yaml:"http"`
			Auth struct {
				Token struct {
					Realm string `yaml:"realm"`
				} `yaml:"token"`
			} `yaml:"auth"`
		}
		found, err := readYAML(r.RegistryConfig, &reg)
		if err != nil {
			return err
		}
		if found {
			if x.RegistryAddr {
				differs("--registry-addr", opts.RegistryAddr, r.RegistryConfig, "http.addr", reg.HTTP.Addr)
			}
			if x.DebugAddr {
				differs("--debug-addr", opts.DebugAddr, r.RegistryConfig, "http.debug.addr", reg.HTTP.Debug.Addr)
			}
			if x.PublicHost {
				host := reg.Auth.Token.Realm
				if u, err := url.Parse(host); err == nil && u.Host != "" {
					host = u.Hostname()
				}
				differs("--public-host", opts.PublicHost, r.RegistryConfig, "the host of auth.token.realm", host)
			}
		}
	}
	if x.AuthAddr || x.AuthMetricsAddr {
		var auth struct {
			Server struct {
				Addr    string `yaml:"addr"`
				Metrics struct {
					Addr string `yaml:"addr"`
				} `yaml:"metrics"`
			} `yaml:"server"`
		}
		found, err := readYAML(r.AuthConfig, &auth)
		if err != nil {
			return err
		}
		if found {
			if x.AuthAddr {
				differs("--auth-addr", opts.AuthAddr, r.AuthConfig, "server.addr", auth.Server.Addr)
			}
			if x.AuthMetricsAddr {
				differs("--auth-metrics-addr", opts.AuthMetricsAddr, r.AuthConfig, "server.metrics.addr", auth.Server.Metrics.Addr)
			}
		}
	}
	if x.PublicHost || x.Hosts {
		if chain, err := tlsutil.LoadCertificates(r.ServerCert); err == nil && len(chain) > 0 {
			names := opts.Hosts
			if x.PublicHost {
				names = append([]string{opts.PublicHost}, names...)
			}
			for _, h := range names {
				if chain[0].VerifyHostname(h) != nil {
					problems = append(problems, fmt.Sprintf("%s is not a name of the server certificate %s (remove it and %s to have one made for the names given, by the same CA)",
						h, r.ServerCert, filepath.Base(r.ServerKey)))
				}
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("bootstrap: the data directory %s was made by an earlier start with other settings:\n  %s\n"+
		"serve runs on the files it finds: edit the file named (or remove it to have it made again with the flags), or start without the flag",
		r.Dir, strings.Join(problems, "\n  "))
}

// readYAML decodes the keys v names from file, if the file exists.
func readYAML(file string, v any) (bool, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("bootstrap: %s: %w", file, err)
	}
	return true, nil
}
