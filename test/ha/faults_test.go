//go:build integration

package ha

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// TestMinIODownMidPush stops MinIO in the middle of a chunked push: the
// client gets 503 with Retry-After (not 500), /debug/health turns 503
// naming the endpoint and bucket (never the secret), nothing half-written
// becomes visible, and once MinIO is back the same upload resumes and the
// push completes, without restarting Gatehouse.
func TestMinIODownMidPush(t *testing.T) {
	c := startCluster(t, 1)
	r := c.replicas[0]
	base := "http://" + r.addr
	tok := c.token("repository:ha/outage:pull,push")
	data := randomBytes(t, 12<<20)
	dgst := testenv.Digest(data)
	half := len(data) / 2

	loc := c.mustDo(http.MethodPost, base, "/v2/ha/outage/blobs/uploads/", tok, nil, nil, http.StatusAccepted).header.Get("Location")
	path := strings.TrimPrefix(loc, base)
	c.mustDo(http.MethodPatch, base, path, tok, data[:half], map[string]string{"Content-Type": "application/octet-stream"}, http.StatusAccepted)

	c.minio.Stop()
	unavailable := func(what string, resp response, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if resp.status != http.StatusServiceUnavailable {
			t.Errorf("%s with MinIO down: %d %s, want 503", what, resp.status, resp.body)
		}
		if s, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s: 503 without a Retry-After (%q)", what, resp.header.Get("Retry-After"))
		}
		if strings.Contains(string(resp.body), c.minio.SecretKey) {
			t.Errorf("%s: the answer shows the S3 secret", what)
		}
	}
	resp, err := c.do(http.MethodPatch, base, path, tok, data[half:], map[string]string{"Content-Type": "application/octet-stream"})
	unavailable("PATCH", resp, err)
	resp, err = c.do(http.MethodPut, base, path+sep(path)+"digest="+dgst, tok, nil, nil)
	unavailable("PUT (commit)", resp, err)
	resp, err = c.do(http.MethodGet, base, "/v2/ha/outage/tags/list", tok, nil, nil)
	unavailable("GET tags", resp, err)

	// The health check notices and names the endpoint and bucket.
	var detail map[string]string
	testenv.Eventually(t, 20*time.Second, "/debug/health to report storage unhealthy", func() bool {
		code, d := health(t, r)
		detail = d
		return code == http.StatusServiceUnavailable
	})
	msg := detail["storagedriver"]
	if !strings.Contains(msg, c.minio.Addr) || !strings.Contains(msg, fmt.Sprintf("%q", c.minio.Bucket)) || strings.Contains(msg, c.minio.SecretKey) {
		t.Errorf("/debug/health detail %q: want the endpoint %s and bucket %q, never the secret", msg, c.minio.Addr, c.minio.Bucket)
	}

	c.minio.Restart()
	testenv.Eventually(t, 20*time.Second, "/debug/health to pass again", func() bool {
		code, _ := health(t, r)
		return code == http.StatusOK
	})
	// Nothing half-written is visible: the blob was never committed.
	c.mustDo(http.MethodHead, base, "/v2/ha/outage/blobs/"+dgst, tok, nil, nil, http.StatusNotFound)
	// The client resumes where the registry says the upload stands.
	st := c.mustDo(http.MethodGet, base, path, tok, nil, nil, http.StatusNoContent)
	rng := st.header.Get("Range")
	var end int
	if _, err := fmt.Sscanf(rng, "0-%d", &end); err != nil {
		t.Fatalf("upload status Range %q: %v", rng, err)
	}
	if end+1 < half || end+1 > len(data) {
		t.Fatalf("upload status Range %q: want at least the first %d bytes", rng, half)
	}
	c.mustDo(http.MethodPatch, base, path, tok, data[end+1:], map[string]string{
		"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", end+1, len(data)-1)}, http.StatusAccepted)
	c.mustDo(http.MethodPut, base, path+sep(path)+"digest="+dgst, tok, nil, nil, http.StatusCreated)
	got := c.mustDo(http.MethodGet, base, "/v2/ha/outage/blobs/"+dgst, tok, nil, nil, http.StatusOK)
	if testenv.Digest(got.body) != dgst {
		t.Fatal("blob served after the outage does not match its digest")
	}
	// And a whole image pushes through the load balancer again.
	im := testenv.NewImage(t, map[string]string{"ha/after.txt": "after the outage\n"})
	layout := t.TempDir()
	im.WriteOCILayout(t, layout, "v1")
	testenv.MustRun(t, c.env, testenv.Tool(t, "crane"), "push", layout, c.host()+"/ha/outage:v1")
	c.storageCheck()
	if strings.Contains(r.Log(), c.minio.SecretKey) {
		t.Error("the registry's log shows the S3 secret")
	}
}

// health returns a replica's /debug/health status and detail.
func health(t *testing.T, r *replica) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(r.debugURL() + "/debug/health") //nolint:noctx // a test probe
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var detail map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&detail)
	return resp.StatusCode, detail
}
