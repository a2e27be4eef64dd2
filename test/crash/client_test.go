//go:build integration

// Package crash kills the real registry at random moments and fills its
// disk, then checks that what it stored is consistent and pullable.
package crash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

const manifestType = "application/vnd.oci.image.manifest.v1+json"

// client speaks the OCI distribution API to one registry.
type client struct {
	base string
	http *http.Client
}

func newClient(base string) *client {
	return &client{base: base, http: &http.Client{Timeout: 10 * time.Second}}
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// statusError is an unexpected HTTP answer.
type statusError struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, strings.TrimSpace(e.Body))
}

// do sends a request and returns the answer's header and body; an answer
// with a status not in want is a *statusError.
func (c *client) do(ctx context.Context, method, path string, body []byte, hdr map[string]string, want ...int) (http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.Header, nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp.Header, b, nil
		}
	}
	return resp.Header, b, &statusError{Method: method, URL: path, Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// pushBlob uploads b monolithically (POST with digest) or, when chunked,
// as POST + PATCH + PUT.
func (c *client) pushBlob(ctx context.Context, repo string, b []byte, chunked bool) (string, error) {
	dg := sha256Digest(b)
	if !chunked {
		_, _, err := c.do(ctx, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+dg, b,
			map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated)
		return dg, err
	}
	h, _, err := c.do(ctx, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	loc := h.Get("Location")
	h, _, err = c.do(ctx, "PATCH", loc, b, map[string]string{
		"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", len(b)-1),
	}, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	loc = h.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	_, _, err = c.do(ctx, "PUT", loc+sep+"digest="+dg, nil, nil, http.StatusCreated)
	return dg, err
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// pushImage pushes a config and layers made from seed, then the manifest
// under ref (a tag or ""), and returns the manifest's digest.
func (c *client) pushImage(ctx context.Context, repo, ref, seed string, layerSize int, chunked bool) (string, error) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`)
	cd, err := c.pushBlob(ctx, repo, cfg, false)
	if err != nil {
		return "", err
	}
	layer := bytes.Repeat([]byte(seed+"\n"), layerSize/(len(seed)+1)+1)[:layerSize]
	ld, err := c.pushBlob(ctx, repo, layer, chunked)
	if err != nil {
		return "", err
	}
	m, _ := json.Marshal(manifest{
		SchemaVersion: 2, MediaType: manifestType,
		Config: descriptor{"application/vnd.oci.image.config.v1+json", cd, len(cfg)},
		Layers: []descriptor{{"application/vnd.oci.image.layer.v1.tar", ld, len(layer)}},
	})
	md := sha256Digest(m)
	if ref == "" {
		ref = md
	}
	_, _, err = c.do(ctx, "PUT", "/v2/"+repo+"/manifests/"+ref, m, map[string]string{"Content-Type": manifestType}, http.StatusCreated)
	return md, err
}

func (c *client) catalog(ctx context.Context) ([]string, error) {
	_, b, err := c.do(ctx, "GET", "/v2/_catalog", nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var v struct{ Repositories []string }
	return v.Repositories, json.Unmarshal(b, &v)
}

func (c *client) tags(ctx context.Context, repo string) ([]string, error) {
	_, b, err := c.do(ctx, "GET", "/v2/"+repo+"/tags/list", nil, nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	var v struct{ Tags []string }
	return v.Tags, json.Unmarshal(b, &v)
}

// pull fetches ref's manifest and every blob it names, checking digests.
func (c *client) pull(ctx context.Context, repo, ref string) (string, error) {
	h, m, err := c.do(ctx, "GET", "/v2/"+repo+"/manifests/"+ref, nil, map[string]string{"Accept": manifestType}, http.StatusOK)
	if err != nil {
		return "", err
	}
	md := sha256Digest(m)
	if got := h.Get("Docker-Content-Digest"); got != md {
		return "", fmt.Errorf("%s:%s: Docker-Content-Digest %s, content hashes to %s", repo, ref, got, md)
	}
	var mf manifest
	if err := json.Unmarshal(m, &mf); err != nil {
		return "", fmt.Errorf("%s:%s: %w", repo, ref, err)
	}
	for _, d := range append([]descriptor{mf.Config}, mf.Layers...) {
		_, b, err := c.do(ctx, "GET", "/v2/"+repo+"/blobs/"+d.Digest, nil, nil, http.StatusOK)
		if err != nil {
			return "", fmt.Errorf("%s:%s: %w", repo, ref, err)
		}
		if sha256Digest(b) != d.Digest || len(b) != d.Size {
			return "", fmt.Errorf("%s:%s: blob %s: got %d bytes hashing to %s", repo, ref, d.Digest, len(b), sha256Digest(b))
		}
	}
	return md, nil
}

// registry is a `gatehouse registry serve` on a storage root the test
// keeps across restarts.
type registry struct {
	t      *testing.T
	bin    string
	config string
	addr   string
	proc   *testenv.Process
}

func newRegistry(t *testing.T, root string, readOnly bool) *registry {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    readonly:
      enabled: %t
http:
  addr: %s
  draintimeout: 1s
`, root, readOnly, addr)
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return &registry{t: t, bin: testenv.Gatehouse(t), config: path, addr: addr}
}

func (r *registry) url() string { return "http://" + r.addr }

func (r *registry) start() {
	r.t.Helper()
	r.proc = testenv.Start(r.t, nil, r.bin, "registry", "serve", r.config)
	r.proc.WaitHTTP(r.t, r.url()+"/v2/")
}

// kill sends SIGKILL and waits until the process is gone.
func (r *registry) kill() {
	r.t.Helper()
	if err := r.proc.Signal(9); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Fatal(err)
	}
	waitUntil(r.t, 10*time.Second, "the killed registry to exit", r.proc.Exited)
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// storageCheck runs `gatehouse storage check` and returns its exit code
// and output.
func storageCheck(t *testing.T, bin, config string, args ...string) (int, string) {
	t.Helper()
	out, err := testenv.Run(context.Background(), nil, bin, append(append([]string{"storage", "check"}, args...), config)...)
	if err == nil {
		return 0, out
	}
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) {
		return ee.ExitCode(), out
	}
	t.Fatalf("storage check: %v\n%s", err, out)
	return 0, ""
}

// verifyAll pulls every tag of every repository and returns how many it
// pulled.
func verifyAll(t *testing.T, ctx context.Context, c *client) int {
	t.Helper()
	repos, err := c.catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, repo := range repos {
		tags, err := c.tags(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			if _, err := c.pull(ctx, repo, tag); err != nil {
				t.Errorf("listed tag does not pull: %v", err)
			}
			n++
		}
	}
	return n
}
