package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a `gatehouse registry serve` started for a test.
type Registry struct {
	*Process
	Addr   string // host:port on 127.0.0.1
	Root   string // filesystem storage root
	Config string // path of the config file
}

// URL returns the registry's base URL.
func (r *Registry) URL() string { return "http://" + r.Addr }

// StartRegistry runs `gatehouse registry serve` on a free port with
// filesystem storage in a temp dir. extra is YAML appended to the config
// (top-level sections such as auth:); deleteEnabled sets
// storage.delete.enabled. It waits until /v2/ answers.
func StartRegistry(t testing.TB, deleteEnabled bool, extra string) *Registry {
	t.Helper()
	bin := Gatehouse(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: %t
http:
  addr: %s
  draintimeout: 5s
`, root, deleteEnabled, addr)
	if extra != "" {
		cfg += strings.TrimLeft(extra, "\n")
	}
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := Start(t, nil, bin, "registry", "serve", path)
	p.WaitHTTP(t, "http://"+addr+"/v2/")
	return &Registry{Process: p, Addr: addr, Root: root, Config: path}
}

// StartRegistryStorage is StartRegistry with storage (a YAML storage:
// section, possibly followed by other top-level sections such as redis:)
// in place of the filesystem default. Root is empty.
func StartRegistryStorage(t testing.TB, storage, extra string) *Registry {
	t.Helper()
	bin := Gatehouse(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cfg := "version: 0.1\nlog:\n  level: info\n" + strings.TrimLeft(storage, "\n") +
		fmt.Sprintf("http:\n  addr: %s\n  draintimeout: 5s\n", addr) + strings.TrimLeft(extra, "\n")
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := Start(t, nil, bin, "registry", "serve", path)
	p.WaitHTTP(t, "http://"+addr+"/v2/")
	return &Registry{Process: p, Addr: addr, Config: path}
}

// StartRegistryTLS is StartRegistry serving HTTPS with cert and key; it
// waits until the port accepts connections. URL() is not meaningful for it.
func StartRegistryTLS(t testing.TB, cert, key string) *Registry {
	t.Helper()
	bin := Gatehouse(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cfg := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  tls:\n    certificate: %s\n    key: %s\n", root, addr, cert, key)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := Start(t, nil, bin, "registry", "serve", path)
	p.WaitTCP(t, addr)
	return &Registry{Process: p, Addr: addr, Root: root, Config: path}
}

// Programs of the reference registries StartDistribution runs.
const (
	// Registry2 is Debian's docker-registry package: distribution 2.8.2.
	Registry2 = "docker-registry"
	// Registry3 is distribution v3.1.2, installed by scripts/install-deps.sh.
	Registry3 = "registry-v3"
	// RegistryGatehouse is `gatehouse registry serve`, given the same
	// config.yml as the reference registries.
	RegistryGatehouse = "gatehouse"
)

// TokenAuth is the auth.token section of a distribution config.yml.
type TokenAuth struct {
	Realm          string
	Service        string
	Issuer         string
	RootCertBundle string // path; may be empty when JWKS is set (v3 only)
	JWKS           string // path of a JSON Web Key Set file; registry v3 only
}

// DistributionOptions configure a reference registry started by
// StartDistribution.
type DistributionOptions struct {
	// Program is Registry2, Registry3 or RegistryGatehouse.
	Program string
	// Root is the filesystem storage root; a new temp dir when empty.
	// Two registries (Gatehouse's and a reference one) may share it.
	Root string
	// Addr is host:port to listen on; a free port on 127.0.0.1 when empty.
	Addr string
	// TLSCert and TLSKey turn on HTTPS when both are set.
	TLSCert, TLSKey string
	// Token turns on token authentication.
	Token *TokenAuth
}

// Distribution is a reference registry (docker-registry 2.8.2 or
// registry v3) started for a test.
type Distribution struct {
	*Process
	Program string
	Addr    string // host:port
	Root    string // filesystem storage root
	Config  string // path of the generated config.yml
	TLS     bool
}

// URL returns the registry's base URL (https when TLS is on).
func (d *Distribution) URL() string {
	if d.TLS {
		return "https://" + d.Addr
	}
	return "http://" + d.Addr
}

// StartDistribution writes a config.yml for a registry (a reference one or
// Gatehouse's), starts
// it with delete enabled and filesystem storage, and waits until /v2/
// answers. Registry v3 runs with OTEL_TRACES_EXPORTER=none so that it does
// not try to export traces.
func StartDistribution(t testing.TB, opts DistributionOptions) *Distribution {
	t.Helper()
	var bin string
	var args []string
	switch opts.Program {
	case Registry2, Registry3:
		bin, args = Tool(t, opts.Program), []string{"serve"}
	case RegistryGatehouse:
		bin, args = Gatehouse(t), []string{"registry", "serve"}
	default:
		t.Fatalf("StartDistribution: program %q is none of %s, %s, %s", opts.Program, Registry2, Registry3, RegistryGatehouse)
	}
	dir := t.TempDir()
	d := &Distribution{Program: opts.Program, Addr: opts.Addr, Root: opts.Root, Config: filepath.Join(dir, "config.yml")}
	if d.Root == "" {
		d.Root = filepath.Join(dir, "data")
	}
	if d.Addr == "" {
		d.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: info\n  formatter: text\n")
	fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n", d.Root)
	fmt.Fprintf(&b, "  maintenance:\n    uploadpurging:\n      enabled: false\n")
	fmt.Fprintf(&b, "http:\n  addr: %q\n", d.Addr)
	if opts.TLSCert != "" && opts.TLSKey != "" {
		d.TLS = true
		fmt.Fprintf(&b, "  tls:\n    certificate: %q\n    key: %q\n", opts.TLSCert, opts.TLSKey)
	}
	if a := opts.Token; a != nil {
		fmt.Fprintf(&b, "auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n", a.Realm, a.Service, a.Issuer)
		if a.RootCertBundle != "" {
			fmt.Fprintf(&b, "    rootcertbundle: %q\n", a.RootCertBundle)
		}
		if a.JWKS != "" {
			fmt.Fprintf(&b, "    jwks: %q\n", a.JWKS)
		}
	}
	if err := os.WriteFile(d.Config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OTEL_TRACES_EXPORTER=none"}
	d.Process = Start(t, env, bin, append(args, d.Config)...)
	d.WaitHTTP(t, d.URL()+"/v2/")
	return d
}

// AuthServerOptions configure a `gatehouse auth-server` started by
// StartAuthServer.
type AuthServerOptions struct {
	// Addr is host:port to listen on; a free port on 127.0.0.1 when empty.
	Addr string
	// Cert and Key are the TLS certificate (chain) and key; they also sign
	// tokens. Required.
	Cert, Key string
	// Issuer is token.issuer; Expiration token.expiration in seconds
	// (900 when 0).
	Issuer     string
	Expiration int
	// NoX5C sets token.x5c: false; DisableLegacyKeyID sets
	// token.disable_legacy_key_id: true.
	NoX5C, DisableLegacyKeyID bool
	// Users maps account names to plain passwords, hashed here with bcrypt
	// (cost 10, as an operator would).
	Users map[string]string
	// ACL is the YAML list under acl:, indented by two spaces.
	ACL string
}

// AuthServer is a `gatehouse auth-server` started for a test.
type AuthServer struct {
	*Process
	Addr   string
	Config string
}

// Realm returns the token endpoint's URL with host "localhost" (crane
// refuses a realm on a loopback IP literal): https://localhost:PORT/auth.
func (a *AuthServer) Realm() string {
	_, port, _ := net.SplitHostPort(a.Addr)
	return "https://localhost:" + port + "/auth"
}

// StartAuthServer writes an auth_config.yml and runs `gatehouse auth-server
// --log-format json` with it over TLS, waiting until it accepts connections.
func StartAuthServer(t testing.TB, opts AuthServerOptions) *AuthServer {
	t.Helper()
	bin := Gatehouse(t)
	dir := t.TempDir()
	a := &AuthServer{Addr: opts.Addr, Config: filepath.Join(dir, "auth_config.yml")}
	if a.Addr == "" {
		a.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	}
	if opts.Expiration == 0 {
		opts.Expiration = 900
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  addr: %q\n  certificate: %q\n  key: %q\n", a.Addr, opts.Cert, opts.Key)
	fmt.Fprintf(&b, "token:\n  issuer: %q\n  expiration: %d\n  x5c: %t\n  disable_legacy_key_id: %t\n",
		opts.Issuer, opts.Expiration, !opts.NoX5C, opts.DisableLegacyKeyID)
	b.WriteString("users:\n")
	names := make([]string, 0, len(opts.Users))
	for name := range opts.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(opts.Users[name]), bcrypt.DefaultCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %q:\n    password: %q\n", name, h)
	}
	b.WriteString("acl:\n" + opts.ACL)
	if err := os.WriteFile(a.Config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Process = Start(t, nil, bin, "auth-server", "--log-format", "json", a.Config)
	a.WaitTCP(t, a.Addr)
	return a
}
