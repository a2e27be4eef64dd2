package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// haproxyDocExample is the data docs/ha.md's HAProxy example is rendered
// with: three replicas, each with its debug server on port 5001.
var haproxyDocExample = HAProxyConfig{
	Bind: "*:443",
	PEM:  "/etc/haproxy/registry.pem",
	Backends: []HAProxyBackend{
		{Name: "r1", Addr: "10.0.0.11:5000", HealthPort: 5001},
		{Name: "r2", Addr: "10.0.0.12:5000", HealthPort: 5001},
		{Name: "r3", Addr: "10.0.0.13:5000", HealthPort: 5001},
	},
}

// TestHAProxyDocMatchesTemplate keeps the HAProxy configuration shown in
// docs/ha.md identical to the one test/ha runs.
func TestHAProxyDocMatchesTemplate(t *testing.T) {
	want, err := RenderHAProxyConfig(haproxyDocExample)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(RepoRoot(), "docs", "ha.md"))
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- haproxy.cfg: begin -->\n```text\n", "```\n<!-- haproxy.cfg: end -->"
	_, rest, ok := strings.Cut(string(doc), start)
	if !ok {
		t.Fatalf("docs/ha.md has no %q marker", start)
	}
	got, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("docs/ha.md has no %q marker", end)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("docs/ha.md's HAProxy example differs from testenv.HAProxyTemplate rendered with haproxyDocExample (-template +doc):\n%s", d)
	}
}

// TestHAProxyBackendTLSAndHeaderCase renders the optional lines: TLS to
// the replicas, verified, and header names spelled for case-sensitive
// clients.
func TestHAProxyBackendTLSAndHeaderCase(t *testing.T) {
	c := haproxyDocExample
	c.BackendCA = "/etc/haproxy/ca.crt"
	c.HeaderCase = []string{"Www-Authenticate"}
	c.Backends = []HAProxyBackend{
		{Name: "r1", Addr: "10.0.0.11:5000", HealthPort: 5001, VerifyHost: "coreos2.domain.com"},
		{Name: "r2", Addr: "10.0.0.12:5000", HealthPort: 5001},
	}
	got, err := RenderHAProxyConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n    h1-case-adjust www-authenticate Www-Authenticate\n",
		"\n    option h1-case-adjust-bogus-client\n",
		"\n    server r1 10.0.0.11:5000 check port 5001 ssl verify required ca-file /etc/haproxy/ca.crt verifyhost coreos2.domain.com\n",
		"\n    server r2 10.0.0.12:5000 check port 5001 ssl verify required ca-file /etc/haproxy/ca.crt\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, got)
		}
	}
}
