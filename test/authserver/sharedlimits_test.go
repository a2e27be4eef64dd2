//go:build integration

package authserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

const redisPassword = "redis-pw-7f3a9c1e"

// replica is one auth-server process of a pair sharing a Redis.
type replica struct {
	base, metrics string
	proc          *testenv.Process
}

// startReplicas starts two auth-server processes with the same config
// (but for their listen addresses), sharing r for the failed-login limit
// of 10 per account per minute (no per-address limit). A Redis started
// WithRedisTLS is reached with its CA and client certificate.
func startReplicas(t *testing.T, r *testenv.Redis) ([2]*replica, *http.Client) {
	t.Helper()
	bin := testenv.Gatehouse(t)
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("Test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteCertPEM(filepath.Join(dir, "server.crt"), cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(filepath.Join(dir, "server.key"), key); err != nil {
		t.Fatal(err)
	}
	users := usersYAML(t, "alice", "bob", "carol", "dave")
	redisTLS := ""
	if r.CAFile != "" {
		redisTLS = fmt.Sprintf("\n      tls: {ca: %s, certificate: %s, key: %s}", r.CAFile, r.CertFile, r.KeyFile)
	}
	var reps [2]*replica
	for i := range reps {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		metrics := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		cfg := fmt.Sprintf(`server:
  addr: %s
  certificate: %s
  key: %s
  metrics: {addr: %q}
  rate_limit:
    failed_logins_per_account: 10
    failed_logins_per_ip: 0
    window: 1m
    redis:
      addr: %s
      password_env: TEST_REDIS_PASSWORD
      timeout: 200ms%s
token:
  issuer: %q
  expiration: 900
users:
%s
acl:
  - match: {account: "/.+/"}
    actions: ["*"]
`, addr, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), metrics, r.Addr, redisTLS, issuer, users)
		file := filepath.Join(dir, fmt.Sprintf("auth_config_%d.yml", i))
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		p := testenv.Start(t, []string{"TEST_REDIS_PASSWORD=" + redisPassword}, bin, "auth-server", "--log-format", "json", "--log-level", "debug", file)
		p.WaitTCP(t, addr)
		p.WaitTCP(t, metrics)
		reps[i] = &replica{base: "https://" + addr, metrics: "http://" + metrics + "/metrics", proc: p}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 20,
	}}
	return reps, client
}

// login asks rep for a token as user and returns the status and the
// Retry-After header.
func login(t *testing.T, c *http.Client, rep *replica, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rep.base+"/auth?service=registry&scope=repository:x/y:pull", nil)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.SetBasicAuth(user, pass)
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// burst sends n wrong logins for user at once, alternating between the
// replicas, and counts the answers by status.
func burst(t *testing.T, c *http.Client, reps [2]*replica, user string, n int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			code, _ := login(t, c, reps[i%2], user, "wrong")
			mu.Lock()
			got[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// shared reads rep's gatehouse_auth_rate_limit_shared gauge.
func shared(t *testing.T, rep *replica) string {
	t.Helper()
	resp, err := http.Get(rep.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "gatehouse_auth_rate_limit_shared "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no gatehouse_auth_rate_limit_shared in the metrics of %s", rep.base)
	return ""
}

func TestSharedFailedLoginLimits(t *testing.T) {
	r := testenv.StartRedis(t, testenv.WithRedisPassword(redisPassword))
	reps, c := startReplicas(t, r)
	for i, rep := range reps {
		if got := shared(t, rep); got != "1" {
			t.Fatalf("replica %d: rate_limit_shared = %s at start, want 1", i, got)
		}
	}

	// 20 wrong passwords at once, split between the replicas: the shared
	// budget of 10 lets exactly 10 reach the password check.
	got := burst(t, c, reps, "alice", 20)
	if got[http.StatusUnauthorized] != 10 || got[http.StatusTooManyRequests] != 10 {
		t.Fatalf("20 wrong logins over two replicas: %v, want 10 × 401 and 10 × 429", got)
	}
	keys := r.Keys(ratelimit.SharedKeyPrefix + "*")
	if len(keys) != 1 || strings.Contains(keys[0], "alice") {
		t.Errorf("redis keys %q, want one, without the account name", keys)
	}
	// The right password waits for the window too, on either replica.
	for i, rep := range reps {
		if code, retry := login(t, c, rep, "alice", "alice-pw"); code != http.StatusTooManyRequests || retry == "" {
			t.Errorf("replica %d: right password at once: %d, Retry-After %q; want 429 with Retry-After", i, code, retry)
		}
	}
	// A slot frees after window/limit (6 s).
	testenv.Eventually(t, 20*time.Second, "a free slot for alice", func() bool {
		code, _ := login(t, c, reps[1], "alice", "alice-pw")
		return code == http.StatusOK
	})

	// Redis down: each replica limits alone, with a budget of its own.
	r.Stop()
	for i, rep := range reps {
		for n := range 10 {
			if code, _ := login(t, c, rep, "bob", "wrong"); code != http.StatusUnauthorized {
				t.Fatalf("redis down, replica %d, wrong login %d for bob: %d, want 401", i, n+1, code)
			}
		}
		if code, retry := login(t, c, rep, "bob", "wrong"); code != http.StatusTooManyRequests || retry == "" {
			t.Fatalf("redis down, replica %d, 11th wrong login for bob: %d, Retry-After %q; want 429", i, code, retry)
		}
		if got := shared(t, rep); got != "0" {
			t.Errorf("redis down, replica %d: rate_limit_shared = %s, want 0", i, got)
		}
	}

	// Redis back (empty): both replicas share again once they have
	// tried it (a login at most every second tries).
	r.Start()
	testenv.Eventually(t, 20*time.Second, "both replicas sharing again", func() bool {
		back := true
		for _, rep := range reps {
			login(t, c, rep, "carol", "wrong")
			back = back && shared(t, rep) == "1"
		}
		return back
	})
	got = burst(t, c, reps, "dave", 20)
	if got[http.StatusUnauthorized] != 10 || got[http.StatusTooManyRequests] != 10 {
		t.Fatalf("redis back, 20 wrong logins over two replicas: %v, want 10 × 401 and 10 × 429", got)
	}

	for i, rep := range reps {
		log := rep.proc.Log()
		if strings.Contains(log, redisPassword) {
			t.Errorf("replica %d logged the redis password", i)
		}
		if !strings.Contains(log, "redis unreachable") || !strings.Contains(log, "limits are shared") {
			t.Errorf("replica %d did not log the outage and the recovery:\n%s", i, log)
		}
	}
}

// TestSharedFailedLoginLimitsOverTLS: the replicas share the limits
// through a Redis that speaks only TLS and requires a client certificate.
func TestSharedFailedLoginLimitsOverTLS(t *testing.T) {
	r := testenv.StartRedis(t, testenv.WithRedisPassword(redisPassword), testenv.WithRedisTLS())
	reps, c := startReplicas(t, r)
	for i, rep := range reps {
		if got := shared(t, rep); got != "1" {
			t.Fatalf("replica %d: rate_limit_shared = %s at start, want 1:\n%s", i, got, rep.proc.Log())
		}
	}
	got := burst(t, c, reps, "alice", 20)
	if got[http.StatusUnauthorized] != 10 || got[http.StatusTooManyRequests] != 10 {
		t.Fatalf("20 wrong logins over two replicas: %v, want 10 × 401 and 10 × 429", got)
	}
	if keys := r.Keys(ratelimit.SharedKeyPrefix + "*"); len(keys) != 1 {
		t.Errorf("redis keys %q, want one", keys)
	}
}
