//go:build integration

package registry

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// eventually polls ok until it holds or limit passes.
func eventually(limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUnauthenticatedExhaustion attacks the registry without credentials:
// huge methods, paths, query strings and headers, idle and slow-header
// connections by the thousand, bodies announced and never sent. Memory and
// log volume stay bounded, every connection is closed within the
// configured timeouts, and the registry keeps answering others throughout.
func TestUnauthenticatedExhaustion(t *testing.T) {
	// The test process and the registry it starts need more descriptors
	// than the usual soft limit of 1024.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < 8192 && lim.Max >= 8192 {
		lim.Cur = 8192
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t, false, fmt.Sprintf(`auth:
  htpasswd:
    realm: gatehouse
    path: %s
`, htpasswd))
	// The timeouts under test: headers within 1 s, a body that pauses 1 s
	// is cut off.
	cfg, err := os.ReadFile(reg.Config)
	if err != nil {
		t.Fatal(err)
	}
	reg.Stop()
	debugAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	patched := strings.Replace(string(cfg), "  draintimeout: 5s\n", "  draintimeout: 5s\n  timeouts:\n    readheader: 1s\n    bodyread: 1s\n"+
		"  debug:\n    addr: "+debugAddr+"\n    prometheus:\n      enabled: true\n      path: /metrics\n", 1)
	if err := os.WriteFile(reg.Config, []byte(patched), 0o600); err != nil {
		t.Fatal(err)
	}
	p := testenv.Start(t, nil, testenv.Gatehouse(t), "registry", "serve", reg.Config)
	p.WaitHTTP(t, reg.URL()+"/v2/")
	pid := p.Cmd.Process.Pid

	// healthy asks as a legitimate client would, with a short timeout.
	healthy := func() bool {
		c := &http.Client{Timeout: 2 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, reg.URL()+"/v2/", nil)
		req.SetBasicAuth("alice", "pw")
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if !healthy() {
		t.Fatal("registry does not answer before the attack")
	}
	baseRSS := rssKiB(t, pid)
	baseFDs := openFDs(t, pid)
	logBefore := len(p.Log())

	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", reg.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		return c
	}
	status := func(raw string) string {
		c := dial()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(raw)); err != nil {
			return "write: " + err.Error()
		}
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		return line
	}

	t.Run("oversized request parts", func(t *testing.T) {
		big := strings.Repeat("A", 100<<10)  // under the header limit
		huge := strings.Repeat("B", 900<<10) // over it
		for _, tc := range []struct {
			name, raw string
			want      []string
		}{
			{"method", big + " /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", []string{"HTTP/1.1 401", "HTTP/1.1 405"}},
			{"huge method", huge + " /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", []string{"HTTP/1.1 431", "HTTP/1.1 400"}},
			{"path", "GET /v2/" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", []string{"HTTP/1.1 4"}},
			{"query", "GET /v2/?" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", []string{"HTTP/1.1 401"}},
			{"header", "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + huge + "\r\n\r\n", []string{"HTTP/1.1 431", "HTTP/1.1 400"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// 100 of each, 8 at a time.
				var wg sync.WaitGroup
				sem := make(chan struct{}, 8)
				var mu sync.Mutex
				bad := map[string]int{}
				for range 100 {
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						got := status(tc.raw)
						for _, w := range tc.want {
							if strings.HasPrefix(got, w) {
								return
							}
						}
						mu.Lock()
						bad[got]++
						mu.Unlock()
					}()
				}
				wg.Wait()
				if len(bad) > 0 {
					t.Fatalf("unexpected answers (want %v): %v", tc.want, bad)
				}
			})
		}
	})

	t.Run("idle and slow-header connections", func(t *testing.T) {
		const n = 2000
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := range n {
			c := dial()
			if i%2 == 1 {
				// Half start a request and never finish its headers.
				_, _ = c.Write([]byte("GET /v2/ HTTP/1.1\r\nHost: x\r\n"))
			}
			conns = append(conns, c)
		}
		if !healthy() {
			t.Fatal("registry stopped answering others while 2000 connections idle")
		}
		// Every one is closed by the server within the header timeout.
		if !eventually(15*time.Second, func() bool { return openFDs(t, pid) <= baseFDs+20 }) {
			t.Fatalf("server still holds %d descriptors (baseline %d) 15 s after the idle connections opened", openFDs(t, pid), baseFDs)
		}
	})

	t.Run("announced bodies never sent", func(t *testing.T) {
		const n = 500
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := range n {
			c := dial()
			path := "/v2/"
			if i%2 == 1 {
				path = "/v2/a/blobs/uploads/"
			}
			_, _ = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial", path)
			conns = append(conns, c)
		}
		if !healthy() {
			t.Fatal("registry stopped answering others")
		}
		if !eventually(15*time.Second, func() bool { return openFDs(t, pid) <= baseFDs+20 }) {
			t.Fatalf("server still holds %d descriptors (baseline %d) with bodies pending", openFDs(t, pid), baseFDs)
		}
	})

	if !healthy() {
		t.Fatal("registry does not answer after the attacks")
	}
	rss := rssKiB(t, pid)
	t.Logf("RSS %d KiB before, %d KiB after; log grew %d bytes", baseRSS, rss, len(p.Log())-logBefore)
	if rss > baseRSS+96<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB", baseRSS, rss)
	}
	// Made-up methods did not become metric labels.
	resp, err := http.Get("http://" + debugAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(metrics) > 256<<10 || strings.Contains(string(metrics), "AAAAAAAA") || !strings.Contains(string(metrics), `method="OTHER"`) {
		t.Errorf("metrics hold client-made label values (%d bytes)", len(metrics))
	}
	// About 3,000 requests were logged: clipped, that is well under 4 MiB
	// (unclipped, the 100 KiB methods and paths alone would be 30 MiB).
	if grew := len(p.Log()) - logBefore; grew > 4<<20 {
		t.Errorf("the log grew by %d bytes", grew)
	}
}

// TestAuthServerExhaustion gives the token server the same treatment
// without credentials: idle and slow-handshake connections by the thousand,
// huge request lines and headers. Every connection is closed within its
// timeouts, memory stays bounded, and a login keeps working throughout.
func TestAuthServerExhaustion(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < 8192 && lim.Max >= 8192 {
		lim.Cur = 8192
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("Exhaustion CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, keyf := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	if err := tlsutil.WriteCertPEM(crt, cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(keyf, key); err != nil {
		t.Fatal(err)
	}
	a := testenv.StartAuthServer(t, testenv.AuthServerOptions{Cert: crt, Key: keyf, Issuer: "exhaustion",
		Users: map[string]string{"alice": "pw"}, ACL: "  - match: {account: alice}\n    actions: [\"pull\"]\n"})
	pid := a.Cmd.Process.Pid
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // its own test certificate
	login := func() bool {
		req, _ := http.NewRequest(http.MethodGet, "https://"+a.Addr+"/auth?service=registry&scope=repository:a:pull", nil)
		req.SetBasicAuth("alice", "pw")
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if !login() {
		t.Fatal("login fails before the attack")
	}
	baseRSS, baseFDs := rssKiB(t, pid), openFDs(t, pid)

	// Half never start TLS; half finish it and send part of a request.
	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		raw, err := net.DialTimeout("tcp", a.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if i%2 == 1 {
			c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // as above
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if err := c.Handshake(); err == nil {
				_, _ = c.Write([]byte("GET /auth HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10)))
			}
			raw = c
		}
		conns = append(conns, raw)
	}
	if !login() {
		t.Fatal("login failed while 1,000 connections idled")
	}
	if !eventually(30*time.Second, func() bool { return openFDs(t, pid) <= baseFDs+20 }) {
		t.Fatalf("auth server still holds %d descriptors (baseline %d) 30 s after the idle connections opened", openFDs(t, pid), baseFDs)
	}
	if !login() {
		t.Fatal("login fails after the attack")
	}
	if rss := rssKiB(t, pid); rss > baseRSS+96<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB", baseRSS, rss)
	}
}
