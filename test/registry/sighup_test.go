//go:build integration

package registry

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// SIGHUP must not end the registry (Go's default for the signal); it
// reloads the certificate and keeps serving.
func TestSighupKeepsServing(t *testing.T) {
	reg := testenv.StartRegistry(t, true, "")
	if err := reg.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(reg.Log(), "SIGHUP") {
		if time.Now().After(deadline) {
			t.Fatalf("no SIGHUP line in the log:\n%s", reg.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if reg.Exited() {
		t.Fatal("registry exited on SIGHUP")
	}
	resp, err := http.Get(reg.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ after SIGHUP = %d", resp.StatusCode)
	}
}
