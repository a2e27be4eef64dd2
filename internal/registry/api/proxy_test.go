package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

// fakeStatus is an upstream failure as the cache reports it.
type fakeStatus struct {
	status     int
	retryAfter string
}

func (f fakeStatus) Error() string            { return "upstream: HTTP status" }
func (f fakeStatus) UpstreamStatus() int      { return f.status }
func (f fakeStatus) RetryAfterHeader() string { return f.retryAfter }

// fakeProxy mirrors repositories under "mirror/".
type fakeProxy struct {
	err  error // returned by every call
	blob []byte
}

func (p *fakeProxy) Proxied(name string) bool { return strings.HasPrefix(name, "mirror/") }
func (p *fakeProxy) PrepareManifest(context.Context, string, string) error {
	return p.err
}
func (p *fakeProxy) StatBlob(_ context.Context, _ string, d digest.Digest) (storage.Descriptor, error) {
	return storage.Descriptor{Digest: d, Size: int64(len(p.blob))}, p.err
}
func (p *fakeProxy) FetchBlob(context.Context, string, digest.Digest) (io.ReadCloser, int64, error) {
	if p.err != nil {
		return nil, 0, p.err
	}
	return io.NopCloser(strings.NewReader(string(p.blob))), int64(len(p.blob)), nil
}
func (p *fakeProxy) LinkStored(context.Context, string, digest.Digest) bool { return false }
func (p *fakeProxy) Served(string, digest.Digest)                           {}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil || len(eb.Errors) != 1 {
		t.Fatalf("error body %q", body)
	}
	return eb.Errors[0].Code
}

func TestProxyWritesRefused(t *testing.T) {
	h := newTestHandler(t, func(o *Options) { o.Proxy = &fakeProxy{} })
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v2/mirror/app/blobs/uploads/"},
		{http.MethodPut, "/v2/mirror/app/manifests/v1"},
		{http.MethodDelete, "/v2/mirror/app/manifests/v1"},
		{http.MethodDelete, "/v2/mirror/app/blobs/" + digest.FromString("x").String()},
	} {
		res := do(t, h, c.method, c.path, []byte("{}"))
		if res.Status != http.StatusMethodNotAllowed || errorCode(t, res.Body) != "UNSUPPORTED" {
			t.Errorf("%s %s = %d %s, want 405 UNSUPPORTED", c.method, c.path, res.Status, res.Body)
		}
	}
	// A hosted repository still takes pushes.
	if res := do(t, h, http.MethodPost, "/v2/team/app/blobs/uploads/", nil); res.Status != http.StatusAccepted {
		t.Errorf("upload start on a hosted repository = %d %s", res.Status, res.Body)
	}
}

func TestProxyUpstreamErrors(t *testing.T) {
	d := digest.FromString("x").String()
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{"429", fakeStatus{429, "7"}, 429, "TOOMANYREQUESTS", "7"},
		{"401", fakeStatus{401, ""}, 403, "DENIED", ""},
		{"403", fakeStatus{403, ""}, 403, "DENIED", ""},
		{"503", fakeStatus{503, ""}, 503, "UNAVAILABLE", ""},
		{"unreachable", fakeStatus{0, ""}, 503, "UNAVAILABLE", ""},
		{"404 manifest", storage.ErrManifestUnknown, 404, "MANIFEST_UNKNOWN", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, func(o *Options) { o.Proxy = &fakeProxy{err: tt.err} })
			res := do(t, h, http.MethodGet, "/v2/mirror/app/manifests/v1", nil)
			if res.Status != tt.status || errorCode(t, res.Body) != tt.code || res.Header.Get("Retry-After") != tt.retryAfter {
				t.Errorf("manifest: %d %s Retry-After %q; want %d %s %q", res.Status, res.Body, res.Header.Get("Retry-After"), tt.status, tt.code, tt.retryAfter)
			}
			if tt.code == "MANIFEST_UNKNOWN" {
				return
			}
			res = do(t, h, http.MethodGet, "/v2/mirror/app/blobs/"+d, nil)
			if res.Status != tt.status || errorCode(t, res.Body) != tt.code {
				t.Errorf("blob: %d %s; want %d %s", res.Status, res.Body, tt.status, tt.code)
			}
		})
	}
}

func TestProxyBlobStreamed(t *testing.T) {
	blob := []byte("fetched from upstream")
	h := newTestHandler(t, func(o *Options) { o.Proxy = &fakeProxy{blob: blob} })
	d := digest.FromBytes(blob).String()
	res := do(t, h, http.MethodGet, "/v2/mirror/app/blobs/"+d, nil)
	if res.Status != http.StatusOK || res.Body != string(blob) || res.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("GET = %d %q %v", res.Status, res.Body, res.Header)
	}
	res = do(t, h, http.MethodHead, "/v2/mirror/app/blobs/"+d, nil)
	if res.Status != http.StatusOK || res.Header.Get("Content-Length") != "21" {
		t.Errorf("HEAD = %d %v", res.Status, res.Header)
	}
}
