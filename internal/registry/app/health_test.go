package app

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestHealthChecks: a file and a TCP check, failing, turn /debug/health
// and the API to 503, naming the failing checks; once they pass both
// answer again.
func TestHealthChecks(t *testing.T) {
	drain := filepath.Join(t.TempDir(), "drain")
	dep, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	depAddr := dep.Addr().String()
	_ = dep.Close() // down at start
	debug := freeAddr(t)
	base := start(t, fmt.Sprintf(`  debug:
    addr: %s
health:
  file:
    - file: %s
      interval: 20ms
  tcp:
    - addr: %s
      interval: 20ms
      timeout: 1s
      threshold: 2
`, debug, drain, depAddr), slog.New(slog.DiscardHandler))

	get := func(url string) (int, map[string]string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var detail map[string]string
		_ = json.Unmarshal(b, &detail)
		return resp.StatusCode, detail
	}
	testenv.Eventually(t, 10*time.Second, "the tcp check failing", func() bool {
		code, detail := get("http://" + debug + "/debug/health")
		_, tcp := detail[depAddr]
		return code == http.StatusServiceUnavailable && tcp && len(detail) == 1
	})
	// /readyz is the same check under the auth server's name; /healthz
	// only says the process serves.
	if code, detail := get("http://" + debug + "/readyz"); code != http.StatusServiceUnavailable || len(detail) != 1 {
		t.Errorf("/readyz while a check fails: %d %v, want 503 naming it", code, detail)
	}
	if code, _ := get("http://" + debug + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while a check fails: %d, want 200", code)
	}
	if code, _ := get(base + "/v2/"); code != http.StatusServiceUnavailable {
		t.Errorf("API while a check fails: %d, want 503", code)
	}

	dep, err = net.Listen("tcp", depAddr)
	if err != nil {
		t.Fatalf("the dependency's port was taken meanwhile: %v", err)
	}
	defer dep.Close()
	testenv.Eventually(t, 10*time.Second, "all checks passing", func() bool {
		code, _ := get("http://" + debug + "/debug/health")
		return code == http.StatusOK
	})
	if code, _ := get("http://" + debug + "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz once checks pass: %d", code)
	}
	if code, _ := get(base + "/v2/"); code != http.StatusOK {
		t.Errorf("API once checks pass: %d", code)
	}

	if err := os.WriteFile(drain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the file check failing", func() bool {
		code, detail := get("http://" + debug + "/debug/health")
		return code == http.StatusServiceUnavailable && detail[drain] == "file exists"
	})
	if code, _ := get(base + "/v2/"); code != http.StatusServiceUnavailable {
		t.Errorf("API while draining: %d, want 503", code)
	}
}
