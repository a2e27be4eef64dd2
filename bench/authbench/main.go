// Command authbench measures `gatehouse auth-server` the way docker_auth was
// measured on this machine: it generates a config (a static user with a
// bcrypt cost 10 password, the anonymous user "", an RSA-2048 key that
// serves TLS and signs tokens), starts the server on loopback, and runs
// bench/authload for four cases. On a server with the defaults: the static
// user with the credential cache warm (4 clients) and anonymous (8
// clients), both answered from the issued-token cache after the first
// request. On a server with both caches off: anonymous (8 clients), so
// every request is signed, and the static user (4 clients), so bcrypt and
// a signature run on every request. It prints requests/s, p50 and p99
// beside the targets, and the token cache's hits and misses.
//
//	go run ./bench/authbench            # 10 s per case
//	go run ./bench/authbench -d 5s
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-registry/gatehouse/bench/internal/benchenv"
)

// Reference figures measured for docker_auth on this machine (2 cores,
// 4 clients, RSA-2048 key, bcrypt cost 10), from the issue.
const (
	dockerAuthStatic    = 29.0
	dockerAuthAnonymous = 1100.0
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authbench:", err)
		os.Exit(1)
	}
}

// summary is bench/authload's -json output.
type summary struct {
	OK       int            `json:"ok"`
	Errors   int            `json:"transport_errors"`
	RPS      float64        `json:"rps"`
	P50      float64        `json:"p50_ms"`
	P99      float64        `json:"p99_ms"`
	Statuses map[string]int `json:"statuses"`
}

// benchCase is one measured case and its targets.
type benchCase struct {
	name    string
	clients int
	user    bool
	minRPS  float64 // 0: no target
	maxP99  float64 // ms; 0: no target
	target  string
	got     summary
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("authbench", flag.ContinueOnError)
	d := fs.Duration("d", 10*time.Second, "duration of each case (at most 2m)")
	gate := fs.String("gatehouse", "", "gatehouse binary (default: go build ./cmd/gatehouse)")
	keyType := fs.String("key", "rsa", "token and TLS key: rsa (RSA-2048, docker_auth's measured setup) or ecdsa (P-256, what gatehouse serve makes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *d <= 0 || *d > 2*time.Minute {
		return fmt.Errorf("-d must be in (0, 2m]")
	}
	if *keyType != "rsa" && *keyType != "ecdsa" {
		return fmt.Errorf("-key must be rsa or ecdsa")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "authbench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	bin := *gate
	if bin == "" {
		if bin, err = benchenv.BuildGatehouse(ctx, filepath.Join(tmp, "bin")); err != nil {
			return err
		}
	}
	load, err := benchenv.Build(ctx, "./bench/authload", filepath.Join(tmp, "bin", "authload"))
	if err != nil {
		return err
	}
	certs := filepath.Join(tmp, "certs")
	if err := benchenv.CertsKey(ctx, bin, certs, *keyType == "rsa"); err != nil {
		return err
	}
	loadBefore := benchenv.LoadAvg()

	warm := &benchCase{name: "static user, credential cache warm", clients: 4, user: true,
		minRPS: 30 * dockerAuthStatic, maxP99: 10, target: fmt.Sprintf(">= %.0f/s (30x docker_auth's %.0f), p99 < 10 ms", 30*dockerAuthStatic, dockerAuthStatic)}
	anon := &benchCase{name: "anonymous", clients: 8,
		minRPS: 3 * dockerAuthAnonymous, maxP99: 10, target: fmt.Sprintf(">= %.0f/s (3x docker_auth's %.0f), p99 < 10 ms", 3*dockerAuthAnonymous, dockerAuthAnonymous)}
	signed := &benchCase{name: "anonymous, token cache off (a signature every request)", clients: 8,
		minRPS: dockerAuthAnonymous, maxP99: 10, target: fmt.Sprintf(">= %.0f/s (1.0x docker_auth), p99 < 10 ms", dockerAuthAnonymous)}
	cold := &benchCase{name: "static user, both caches off (bcrypt every request)", clients: 4, user: true,
		minRPS: dockerAuthStatic, target: fmt.Sprintf(">= %.0f/s (docker_auth)", dockerAuthStatic)}

	var hits, misses string
	cached, err := benchenv.StartAuthServer(ctx, bin, benchenv.AuthOptions{Dir: certs, Name: "cached", TLS: true, Anonymous: true, CacheTTL: "5m", Issuer: "authbench"})
	if err != nil {
		return err
	}
	err = func() error {
		defer cached.Stop()
		// One request fills the credential cache.
		if _, err := authload(ctx, load, cached, true, 1, 0, 1); err != nil {
			return err
		}
		if warm.got, err = authload(ctx, load, cached, true, warm.clients, *d, 0); err != nil {
			return err
		}
		if anon.got, err = authload(ctx, load, cached, false, anon.clients, *d, 0); err != nil {
			return err
		}
		hits, misses, err = tokenCacheCounts(ctx, cached)
		return err
	}()
	if err != nil {
		return err
	}
	uncached, err := benchenv.StartAuthServer(ctx, bin, benchenv.AuthOptions{Dir: certs, Name: "uncached", TLS: true, Anonymous: true, CacheTTL: "0s", TokenCacheTTL: "0s", Issuer: "authbench"})
	if err != nil {
		return err
	}
	err = func() error {
		defer uncached.Stop()
		if signed.got, err = authload(ctx, load, uncached, false, signed.clients, *d, 0); err != nil {
			return err
		}
		cold.got, err = authload(ctx, load, uncached, true, cold.clients, *d, 0)
		return err
	}()
	if err != nil {
		return err
	}

	_, _ = fmt.Fprintf(out, "\n## Auth server benchmark\n\n%s\n", benchenv.Machine())
	keyDesc := "RSA-2048"
	if *keyType == "ecdsa" {
		keyDesc = "ECDSA P-256"
	}
	_, _ = fmt.Fprintf(out, "TLS, %s key, bcrypt cost 10, one scope per request, %s per case, load generator on the same cores.\n", keyDesc, *d)
	_, _ = fmt.Fprintf(out, "Load average (1, 5, 15 min): before %s; after %s\n\n", loadBefore, benchenv.LoadAvg())
	_, _ = fmt.Fprintln(out, "| case | clients | requests/s | p50 (ms) | p99 (ms) | non-200 | target | |")
	_, _ = fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	for _, c := range []*benchCase{warm, anon, signed, cold} {
		other := c.Errors()
		met := c.got.RPS >= c.minRPS && (c.maxP99 == 0 || c.got.P99 < c.maxP99) && other == 0
		v := "missed"
		if met {
			v = "met"
		}
		_, _ = fmt.Fprintf(out, "| %s | %d | %.0f | %.2f | %.2f | %d | %s | %s |\n", c.name, c.clients, c.got.RPS, c.got.P50, c.got.P99, other, c.target, v)
	}
	_, _ = fmt.Fprintf(out, "\nToken cache of the first server (defaults: ttl 1m, token lifetime 1h): %s hits, %s misses.\n\n", hits, misses)
	return nil
}

// tokenCacheCounts reads the hit and miss counts of the issued-token cache
// from the server's /metrics ("?" for a server that has no token cache).
func tokenCacheCounts(ctx context.Context, a *benchenv.AuthServer) (hits, misses string, err error) {
	pem, err := os.ReadFile(a.CA)
	if err != nil {
		return "", "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL()+"/metrics", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", fmt.Errorf("metrics: %w", err)
	}
	hits, misses = metricValue(string(body), `gatehouse_auth_token_cache_total{result="hit"}`), metricValue(string(body), `gatehouse_auth_token_cache_total{result="miss"}`)
	return hits, misses, nil
}

// metricValue returns the value of the series named exactly series in a
// Prometheus text exposition, or "?".
func metricValue(text, series string) string {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			return v
		}
	}
	return "?"
}

// Errors counts the case's transport errors and non-200 answers.
func (c *benchCase) Errors() int {
	n := c.got.Errors
	for code, k := range c.got.Statuses {
		if code != "200" {
			n += k
		}
	}
	return n
}

// authload runs the load command against the server's token endpoint.
// n > 0 stops after n requests.
func authload(ctx context.Context, load string, a *benchenv.AuthServer, user bool, clients int, d time.Duration, n int) (summary, error) {
	q := url.Values{"service": {"registry"}, "scope": {"repository:bench/app:pull"}}
	args := []string{"-url", a.URL() + "/auth?" + q.Encode(), "-c", fmt.Sprint(clients), "-cacert", a.CA, "-json"}
	if d > 0 {
		args = append(args, "-d", d.String())
	}
	if n > 0 {
		args = append(args, "-n", fmt.Sprint(n))
	}
	cmd := exec.CommandContext(ctx, load, args...)
	if user {
		cmd.Args = append(cmd.Args, "-user", benchenv.BenchUser)
		cmd.Env = append(os.Environ(), "AUTHLOAD_PASSWORD="+a.Password)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return summary{}, fmt.Errorf("authload: %w: %s", err, stderr.String())
	}
	var s summary
	if err := json.Unmarshal(b, &s); err != nil {
		return summary{}, fmt.Errorf("authload output: %w: %s", err, b)
	}
	return s, nil
}
