package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

// HAProxyBackend is one registry replica behind the load balancer.
type HAProxyBackend struct {
	// Name is the server's name in the config ("r1").
	Name string
	// Addr is the replica's registry listener (host:port, plain HTTP).
	Addr string
	// HealthPort is the port of the replica's debug server, whose
	// /debug/health the load balancer checks.
	HealthPort int
	// VerifyHost is the name the replica's certificate must hold when
	// HAProxyOptions.BackendCA is set; empty: any name signed by the CA.
	VerifyHost string
}

// HAProxyOptions configure StartHAProxy.
type HAProxyOptions struct {
	// Bind is the address HAProxy listens on; a free port on 127.0.0.1
	// when empty.
	Bind string
	// PEM is a file holding the server certificate (chain) followed by
	// its key: HAProxy terminates TLS with it. Required.
	PEM string
	// BackendCA, when set, is a PEM CA file: HAProxy then talks TLS to the
	// replicas (which serve http.tls) and verifies their certificates
	// with it. Empty: plain HTTP to the replicas.
	BackendCA string
	// HeaderCase lists response header names HAProxy sends to clients
	// spelled as given (h1-case-adjust) rather than lower-cased, for
	// clients that match header names case-sensitively, such as the
	// seed's registry-curl.sh (grep ^Www-Authenticate).
	HeaderCase []string
}

// HAProxyConfig is the data HAProxyTemplate is rendered with.
type HAProxyConfig struct {
	Bind       string
	PEM        string
	Backends   []HAProxyBackend
	BackendCA  string
	HeaderCase []string
}

// HAProxyTemplate is the load balancer configuration of docs/ha.md (a test
// keeps the page's example identical to this template's rendering):
// TLS terminated at HAProxy, X-Forwarded-Proto set so that the replicas'
// Location headers say https, round robin over replicas that share
// everything (no stickiness), health from each replica's debug server,
// and a retry on another replica when a connection to one fails.
//
// BackendCA and HeaderCase add lines only when set, so the rendering
// without them (docs/ha.md's) stays as it is.
const HAProxyTemplate = `global
    maxconn 4096
{{- range .HeaderCase}}
    h1-case-adjust {{lower .}} {{.}}
{{- end}}

defaults
    mode http
    timeout connect 5s
    # Blob transfers take as long as they need while data flows;
    # these bound idle time, not transfers.
    timeout client 5m
    timeout server 5m
    timeout http-request 30s
    timeout http-keep-alive 30s
    # A request whose connection to a replica failed goes to another.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend registry
    bind {{.Bind}} ssl crt {{.PEM}} alpn http/1.1
{{- if .HeaderCase}}
    option h1-case-adjust-bogus-client
{{- end}}
    http-request set-header X-Forwarded-Proto https
    option forwardfor
    default_backend replicas

backend replicas
    balance roundrobin
    # Ready = storage reachable: 200 from the debug server's health
    # endpoint, 503 while storage.health checks fail.
    option httpchk GET /debug/health
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{{- range .Backends}}
    server {{.Name}} {{.Addr}} check port {{.HealthPort}}
{{- if $.BackendCA}} ssl verify required ca-file {{$.BackendCA}}{{with .VerifyHost}} verifyhost {{.}}{{end}}{{end}}
{{- end}}
`

// RenderHAProxyConfig renders HAProxyTemplate.
func RenderHAProxyConfig(c HAProxyConfig) (string, error) {
	tmpl, err := template.New("haproxy").Funcs(template.FuncMap{"lower": strings.ToLower}).Parse(HAProxyTemplate)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, c); err != nil {
		return "", err
	}
	return b.String(), nil
}

// HAProxy is an HAProxy load balancer started for a test.
type HAProxy struct {
	*Process
	Addr   string // host:port it listens on
	Config string // path of the config file
}

// StartHAProxy writes HAProxyTemplate's config for backends and runs
// `haproxy -f CONFIG -db` (in the foreground: no daemon, no system
// service) on 127.0.0.1, waiting until it accepts connections. It is
// stopped when the test ends. The haproxy program is Debian's package.
func StartHAProxy(t testing.TB, backends []HAProxyBackend, opts HAProxyOptions) *HAProxy {
	t.Helper()
	bin := Tool(t, "haproxy")
	if opts.PEM == "" {
		t.Fatal("StartHAProxy: a PEM file (certificate and key) is required")
	}
	h := &HAProxy{Addr: opts.Bind}
	if h.Addr == "" {
		h.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	}
	cfg, err := RenderHAProxyConfig(HAProxyConfig{Bind: h.Addr, PEM: opts.PEM, Backends: backends,
		BackendCA: opts.BackendCA, HeaderCase: opts.HeaderCase})
	if err != nil {
		t.Fatal(err)
	}
	h.Config = filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(h.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	MustRun(t, nil, bin, "-c", "-f", h.Config)
	h.Process = Start(t, nil, bin, "-f", h.Config, "-db")
	h.WaitTCP(t, h.Addr)
	return h
}
