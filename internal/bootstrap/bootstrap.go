// Package bootstrap prepares the data directory of `gatehouse serve`: a CA and
// server certificate, a bootstrap admin account, and the two config files
// (docker_auth's auth_config.yml and distribution's config.yml) that the
// drop-in commands would read. What exists is kept, so a second start
// reuses the first one's keys, password and any edits an operator made.
package bootstrap

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
}

// Layout names the files in a data directory.
type Layout struct {
	Dir               string
	CACert            string
	CAKey             string
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
	for _, d := range []string{dir, filepath.Dir(res.CACert), res.StorageDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	if err := res.ensureCerts(opts); err != nil {
		return nil, err
	}
	hash, err := res.ensureAdmin()
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

// ensureAdmin returns the bcrypt hash of the admin password, making a
// password when there is none yet.
func (r *Result) ensureAdmin() (string, error) {
	data, err := os.ReadFile(r.AdminPasswordFile)
	var pw string
	switch {
	case err == nil:
		pw = strings.TrimSpace(string(data))
		if pw == "" {
			return "", fmt.Errorf("bootstrap: %s is empty; delete it to have a new password made", r.AdminPasswordFile)
		}
	case errors.Is(err, fs.ErrNotExist):
		buf := make([]byte, 18)
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		pw = base64.RawURLEncoding.EncodeToString(buf)
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
token:
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
		r.AdminPasswordFile, strconv.Quote(opts.AdminUser), strconv.Quote(adminHash))
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
auth:
  token:
    realm: %[7]s
    service: gatehouse
    issuer: gatehouse
    # Tokens carry their certificate chain (x5c), so the CA is enough here.
    rootcertbundle: %[8]s
`, r.RegistryConfig, strconv.Quote(r.StorageDir), strconv.Quote(opts.RegistryAddr),
		strconv.Quote(base64.RawURLEncoding.EncodeToString(buf)), strconv.Quote(r.ServerCert),
		strconv.Quote(r.ServerKey), strconv.Quote(realm), strconv.Quote(r.CACert))
	if err := tlsutil.WriteFileAtomic(r.RegistryConfig, []byte(cfg), 0o600); err != nil {
		return err
	}
	r.Created = append(r.Created, r.RegistryConfig)
	return nil
}
