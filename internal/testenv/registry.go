package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
