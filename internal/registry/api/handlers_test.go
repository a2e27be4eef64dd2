package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gatehouse-registry/gatehouse/internal/registry/auth"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

func newTestHandler(t *testing.T, mod func(*Options)) *Handler {
	t.Helper()
	opts := Options{Delete: true, MaxTags: 3, MaxEntries: 3}
	if mod != nil {
		mod(&opts)
	}
	opts.Registry = storage.New(inmemory.New(), storage.Options{Delete: opts.Delete, ReadOnly: opts.ReadOnly})
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type resp struct {
	Status int
	Header http.Header
	Body   string
}

func do(t *testing.T, h http.Handler, method, target string, body []byte, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return resp{w.Code, w.Header(), w.Body.String()}
}

func errCode(t *testing.T, body string) string {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil || len(eb.Errors) != 1 {
		t.Fatalf("not an error body: %q", body)
	}
	return eb.Errors[0].Code
}

// pushBlob uploads content monolithically and returns its digest.
func pushBlob(t *testing.T, h http.Handler, name string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	r := do(t, h, "POST", "/v2/"+name+"/blobs/uploads/?digest="+d.String(), content)
	if r.Status != http.StatusCreated {
		t.Fatalf("push blob: %d %s", r.Status, r.Body)
	}
	return d
}

func pushImage(t *testing.T, h http.Handler, name, tag string, subject *ocispec.Descriptor) (digest.Digest, []byte) {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := []byte("layer-" + tag)
	cd, ld := pushBlob(t, h, name, cfg), pushBlob(t, h, name, layer)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: ld, Size: int64(len(layer))}},
		Subject:   subject,
	}
	m.SchemaVersion = 2
	if subject != nil {
		m.ArtifactType = "application/vnd.example.sig"
	}
	payload, _ := json.Marshal(m)
	r := do(t, h, "PUT", "/v2/"+name+"/manifests/"+tag, payload, "Content-Type", ocispec.MediaTypeImageManifest)
	if r.Status != http.StatusCreated {
		t.Fatalf("push manifest: %d %s", r.Status, r.Body)
	}
	return digest.FromBytes(payload), payload
}

func TestEveryResponseHasAPIVersion(t *testing.T) {
	h := newTestHandler(t, func(o *Options) { o.Headers = http.Header{"X-Content-Type-Options": {"nosniff"}} })
	for _, target := range []string{"/v2/", "/v2/a/tags/list", "/v2/A/tags/list", "/nope", "/v2/a/blobs/sha256:00"} {
		r := do(t, h, "GET", target, nil)
		if r.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", target, r.Header)
		}
	}
}

func TestBadRequestsNeverReachStorage(t *testing.T) {
	h := newTestHandler(t, nil)
	d := pushBlob(t, h, "ok", []byte("x"))
	tests := []struct {
		method, target string
		status         int
		code           string
	}{
		{"GET", "/v2/a/../b/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a/%2e%2e/b/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a%2Fb/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/UPPER/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a/manifests/-bad", 400, "TAG_INVALID"},
		{"GET", "/v2/a/manifests/sha256:abc", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/referrers/nope:x", 400, "DIGEST_INVALID"},
		{"GET", "/v2/ok/tags/list?n=-1", 400, "PAGINATION_NUMBER_INVALID"},
		{"GET", "/v2/_catalog?n=x", 400, "PAGINATION_NUMBER_INVALID"},
		{"GET", "/v2/ok/blobs/uploads/does-not-exist", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"PATCH", "/v2/ok/blobs/uploads/does-not-exist", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"GET", "/v2/ok/blobs/" + digest.FromString("missing").String(), 404, "BLOB_UNKNOWN"},
		{"GET", "/v2/ok/manifests/missing", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/nothere/tags/list", 404, "NAME_UNKNOWN"},
		{"POST", "/v2/ok/blobs/" + d.String(), 405, "UNSUPPORTED"},
		{"PUT", "/v2/", 405, "UNSUPPORTED"},
		{"GET", "/v2/ok", 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := do(t, h, tt.method, tt.target, nil)
			if r.Status != tt.status || errCode(t, r.Body) != tt.code {
				t.Errorf("got %d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
		})
	}
	// HEAD errors carry the status and no body.
	if r := do(t, h, "HEAD", "/v2/ok/manifests/missing", nil); r.Status != 404 || r.Body != "" {
		t.Errorf("HEAD missing manifest: %d %q", r.Status, r.Body)
	}
}

func TestChunkedUpload(t *testing.T) {
	h := newTestHandler(t, nil)
	content := []byte("0123456789abcdef")
	d := digest.SHA512.FromBytes(content)
	r := do(t, h, "POST", "/v2/a/b/blobs/uploads/", nil)
	if r.Status != 202 || r.Header.Get("Range") != "0-0" || r.Header.Get("Docker-Upload-UUID") == "" {
		t.Fatalf("start: %d %v", r.Status, r.Header)
	}
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "http://example.com/v2/a/b/blobs/uploads/") {
		t.Fatalf("location %q", loc)
	}
	path := strings.TrimPrefix(loc, "http://example.com")
	r = do(t, h, "PATCH", path, content[:8], "Content-Range", "0-7")
	if r.Status != 202 || r.Header.Get("Range") != "0-7" {
		t.Fatalf("chunk 1: %d %v %s", r.Status, r.Header, r.Body)
	}
	// out of order: 416 with the current state, nothing changes
	r = do(t, h, "PATCH", path, content[12:], "Content-Range", "12-15")
	if r.Status != 416 || r.Header.Get("Range") != "0-7" || r.Header.Get("Location") == "" || errCode(t, r.Body) != "RANGE_INVALID" {
		t.Fatalf("out of order: %d %v %s", r.Status, r.Header, r.Body)
	}
	for _, cr := range []string{"garbage", "9-7", "8-100"} {
		if r = do(t, h, "PATCH", path, content[8:], "Content-Range", cr); r.Status != 416 {
			t.Errorf("Content-Range %q: %d", cr, r.Status)
		}
	}
	r = do(t, h, "GET", path, nil)
	if r.Status != 204 || r.Header.Get("Range") != "0-7" {
		t.Fatalf("status: %d %v", r.Status, r.Header)
	}
	// wrong digest on the final PUT is refused
	if r = do(t, h, "PUT", path+"?digest="+digest.FromString("other").String(), content[8:], "Content-Range", "8-15"); r.Status != 400 || errCode(t, r.Body) != "DIGEST_INVALID" {
		t.Fatalf("bad digest: %d %s", r.Status, r.Body)
	}
	// a fresh upload, finished properly with the last chunk in the PUT
	r = do(t, h, "POST", "/v2/a/b/blobs/uploads/", nil)
	path = strings.TrimPrefix(r.Header.Get("Location"), "http://example.com")
	do(t, h, "PATCH", path, content[:8], "Content-Range", "0-7")
	r = do(t, h, "PUT", path+"?digest="+d.String(), content[8:], "Content-Range", "8-15")
	if r.Status != 201 || r.Header.Get("Docker-Content-Digest") != d.String() || r.Header.Get("Location") != "http://example.com/v2/a/b/blobs/"+d.String() {
		t.Fatalf("put: %d %v %s", r.Status, r.Header, r.Body)
	}
	r = do(t, h, "GET", "/v2/a/b/blobs/"+d.String(), nil)
	if r.Status != 200 || r.Body != string(content) || r.Header.Get("Docker-Content-Digest") != d.String() || r.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("get: %d %v", r.Status, r.Header)
	}
}

func TestBlobRanges(t *testing.T) {
	h := newTestHandler(t, nil)
	content := []byte("0123456789")
	d := pushBlob(t, h, "r", content)
	tests := []struct {
		rng, body string
		status    int
	}{
		{"bytes=2-4", "234", 206},
		{"bytes=7-", "789", 206},
		{"bytes=-2", "89", 206},
		{"bytes=5-0", "", 416},
		{"bytes=50-100", "", 416},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			r := do(t, h, "GET", "/v2/r/blobs/"+d.String(), nil, "Range", tt.rng)
			if r.Status != tt.status || (tt.status == 206 && r.Body != tt.body) {
				t.Errorf("got %d %q, want %d %q", r.Status, r.Body, tt.status, tt.body)
			}
		})
	}
	r := do(t, h, "HEAD", "/v2/r/blobs/"+d.String(), nil)
	if r.Status != 200 || r.Header.Get("Content-Length") != "10" || r.Body != "" {
		t.Errorf("HEAD: %d %v", r.Status, r.Header)
	}
}

func TestMount(t *testing.T) {
	h := newTestHandler(t, func(o *Options) { o.AnonymousMount = true })
	d := pushBlob(t, h, "src", []byte("shared"))
	tests := []struct {
		name, query string
		status      int
	}{
		{"from", "mount=" + d.String() + "&from=src", 201},
		{"anonymous", "mount=" + d.String(), 201},
		{"unknown blob", "mount=" + digest.FromString("nope").String() + "&from=src", 202},
		{"bad source name", "mount=" + d.String() + "&from=..", 202},
		{"bad digest", "mount=xyz&from=src", 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, h, "POST", "/v2/dst-"+strings.ReplaceAll(tt.name, " ", "-")+"/blobs/uploads/?"+tt.query, nil)
			if r.Status != tt.status {
				t.Errorf("got %d %s, want %d", r.Status, r.Body, tt.status)
			}
		})
	}
}

// Without AnonymousMount (token auth's default) a mount without from starts
// an upload instead: knowing a digest must not be enough to read a blob.
func TestAnonymousMountOff(t *testing.T) {
	h := newTestHandler(t, nil)
	d := pushBlob(t, h, "private", []byte("secret layer"))
	r := do(t, h, "POST", "/v2/mine/blobs/uploads/?mount="+d.String(), nil)
	if r.Status != 202 {
		t.Fatalf("anonymous mount with the option off: got %d %s, want 202 (an upload)", r.Status, r.Body)
	}
	if r := do(t, h, "HEAD", "/v2/mine/blobs/"+d.String(), nil); r.Status != 404 {
		t.Fatalf("blob visible in the target repository after a refused mount: %d", r.Status)
	}
	if r := do(t, h, "POST", "/v2/mine/blobs/uploads/?mount="+d.String()+"&from=private", nil); r.Status != 201 {
		t.Fatalf("mount with from: got %d, want 201", r.Status)
	}
}

func TestManifestsAndReferrers(t *testing.T) {
	h := newTestHandler(t, nil)
	md, payload := pushImage(t, h, "img", "v1", nil)
	subject := &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(payload))}

	r := do(t, h, "GET", "/v2/img/referrers/"+md.String(), nil)
	var idx ocispec.Index
	if r.Status != 200 || r.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex || json.Unmarshal([]byte(r.Body), &idx) != nil || idx.Manifests == nil || len(idx.Manifests) != 0 {
		t.Fatalf("empty referrers: %d %v %s", r.Status, r.Header, r.Body)
	}

	// push a referrer by digest: 201 with OCI-Subject
	cfg := []byte(`{}`)
	cd := pushBlob(t, h, "img", cfg)
	ref := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.sig",
		Config: ocispec.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: cd, Size: 2}, Layers: []ocispec.Descriptor{}, Subject: subject}
	ref.SchemaVersion = 2
	rp, _ := json.Marshal(ref)
	rd := digest.FromBytes(rp)
	r = do(t, h, "PUT", "/v2/img/manifests/"+rd.String()+"?tag=sig1&tag=sig2", rp, "Content-Type", ocispec.MediaTypeImageManifest)
	if r.Status != 201 || r.Header.Get("OCI-Subject") != md.String() || !cmp.Equal(r.Header.Values("OCI-Tag"), []string{"sig1", "sig2"}) {
		t.Fatalf("put referrer: %d %v %s", r.Status, r.Header, r.Body)
	}
	r = do(t, h, "GET", "/v2/img/referrers/"+md.String()+"?artifactType=application/vnd.example.sig", nil)
	if r.Status != 200 || r.Header.Get("OCI-Filters-Applied") != "artifactType" || json.Unmarshal([]byte(r.Body), &idx) != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != rd {
		t.Fatalf("referrers: %d %v %s", r.Status, r.Header, r.Body)
	}

	// GET/HEAD by tag and digest: exact type, length, digest
	for _, refStr := range []string{"v1", md.String()} {
		for _, m := range []string{"GET", "HEAD"} {
			r = do(t, h, m, "/v2/img/manifests/"+refStr, nil)
			if r.Status != 200 || r.Header.Get("Content-Type") != ocispec.MediaTypeImageManifest ||
				r.Header.Get("Content-Length") != fmt.Sprint(len(payload)) || r.Header.Get("Docker-Content-Digest") != md.String() {
				t.Errorf("%s %s: %d %v", m, refStr, r.Status, r.Header)
			}
		}
	}
	// digest mismatch, oversize and garbage
	if r = do(t, h, "PUT", "/v2/img/manifests/"+digest.FromString("x").String(), payload, "Content-Type", ocispec.MediaTypeImageManifest); r.Status != 400 || errCode(t, r.Body) != "DIGEST_INVALID" {
		t.Errorf("mismatch: %d %s", r.Status, r.Body)
	}
	if r = do(t, h, "PUT", "/v2/img/manifests/big", bytes.Repeat([]byte(" "), DefaultMaxManifestSize+1), "Content-Type", ocispec.MediaTypeImageManifest); r.Status != 413 {
		t.Errorf("oversize: %d %s", r.Status, r.Body)
	}
	if r = do(t, h, "PUT", "/v2/img/manifests/bad", []byte("{not json"), "Content-Type", ocispec.MediaTypeImageManifest); r.Status != 400 || errCode(t, r.Body) != "MANIFEST_INVALID" {
		t.Errorf("garbage: %d %s", r.Status, r.Body)
	}
	// tag delete keeps the manifest
	if r = do(t, h, "DELETE", "/v2/img/manifests/v1", nil); r.Status != 202 {
		t.Fatalf("tag delete: %d %s", r.Status, r.Body)
	}
	if r = do(t, h, "GET", "/v2/img/manifests/v1", nil); r.Status != 404 {
		t.Errorf("deleted tag still served: %d", r.Status)
	}
	if r = do(t, h, "GET", "/v2/img/manifests/"+md.String(), nil); r.Status != 200 {
		t.Errorf("manifest gone with its tag: %d", r.Status)
	}
}

func TestTagsPagination(t *testing.T) {
	h := newTestHandler(t, nil)
	for _, tag := range []string{"a", "b", "c", "d", "e"} {
		pushImage(t, h, "p", tag, nil)
	}
	type list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	tests := []struct {
		query string
		want  []string
		link  string
	}{
		{"", []string{"a", "b", "c"}, `</v2/p/tags/list?last=c&n=3>; rel="next"`},
		{"?n=2", []string{"a", "b"}, `</v2/p/tags/list?last=b&n=2>; rel="next"`},
		{"?n=2&last=b", []string{"c", "d"}, `</v2/p/tags/list?last=d&n=2>; rel="next"`},
		{"?last=c", []string{"d", "e"}, ""},
		{"?n=99999999999999999999", []string{"a", "b", "c"}, `</v2/p/tags/list?last=c&n=3>; rel="next"`},
		{"?n=0", []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := do(t, h, "GET", "/v2/p/tags/list"+tt.query, nil)
			var l list
			if r.Status != 200 || json.Unmarshal([]byte(r.Body), &l) != nil {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if diff := cmp.Diff(tt.want, l.Tags); diff != "" || r.Header.Get("Link") != tt.link {
				t.Errorf("tags (-want +got):\n%s\nlink %q, want %q", diff, r.Header.Get("Link"), tt.link)
			}
		})
	}
}

func TestDeleteDisabledAndReadOnly(t *testing.T) {
	h := newTestHandler(t, func(o *Options) { o.Delete = false })
	d := pushBlob(t, h, "x", []byte("x"))
	if r := do(t, h, "DELETE", "/v2/x/blobs/"+d.String(), nil); r.Status != 405 || errCode(t, r.Body) != "UNSUPPORTED" {
		t.Errorf("delete disabled: %d %s", r.Status, r.Body)
	}
	ro := newTestHandler(t, func(o *Options) { o.ReadOnly = true })
	r := do(t, ro, "POST", "/v2/x/blobs/uploads/", nil)
	if r.Status != 405 || !strings.Contains(r.Body, "registry is in read-only mode") {
		t.Errorf("read-only: %d %s", r.Status, r.Body)
	}
	if r := do(t, ro, "GET", "/v2/", nil); r.Status != 200 {
		t.Errorf("read-only GET: %d", r.Status)
	}
}

func TestLocations(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
		path string
		want string
	}{
		{"request host", nil, "/v2/a/blobs/uploads/", "http://example.com/v2/a/blobs/uploads/"},
		{"relative", func(o *Options) { o.RelativeURLs = true }, "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/"},
		{"host", func(o *Options) { o.Host = "https://reg.example.org/base" }, "/v2/a/blobs/uploads/", "https://reg.example.org/base/v2/a/blobs/uploads/"},
		{"prefix", func(o *Options) { o.Prefix = "/registry/"; o.RelativeURLs = true }, "/registry/v2/a/blobs/uploads/", "/registry/v2/a/blobs/uploads/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, tt.mod)
			r := do(t, h, "POST", tt.path, nil)
			if r.Status != 202 || !strings.HasPrefix(r.Header.Get("Location"), tt.want) {
				t.Errorf("got %d %q, want prefix %q", r.Status, r.Header.Get("Location"), tt.want)
			}
		})
	}
	h := newTestHandler(t, func(o *Options) { o.Prefix = "/registry" })
	if r := do(t, h, "GET", "/v2/", nil); r.Status != 404 {
		t.Errorf("unprefixed path served: %d", r.Status)
	}
}

// denyAll challenges every request, recording what it was asked for.
type denyAll struct{ need [][]auth.Access }

func (d *denyAll) CheckAccess(_ context.Context, _ *http.Request, need []auth.Access) (auth.User, error) {
	d.need = append(d.need, need)
	return auth.User{}, &auth.Challenge{Header: auth.BearerChallenge("https://auth/token", "reg", need, ""), Message: "authentication required"}
}

type brokenAuth struct{}

func (brokenAuth) CheckAccess(context.Context, *http.Request, []auth.Access) (auth.User, error) {
	return auth.User{}, errors.New("ldap down: secret-detail")
}

func TestAuthScopes(t *testing.T) {
	d := digest.FromString("x").String()
	tests := []struct {
		method, target string
		scope          string
	}{
		{"GET", "/v2/", ""},
		{"GET", "/v2/_catalog", `scope="registry:catalog:*"`},
		{"GET", "/v2/a/b/tags/list", `scope="repository:a/b:pull"`},
		{"HEAD", "/v2/a/manifests/v1", `scope="repository:a:pull"`},
		{"PUT", "/v2/a/manifests/v1", `scope="repository:a:pull,push"`},
		{"DELETE", "/v2/a/manifests/v1", `scope="repository:a:delete"`},
		{"POST", "/v2/a/blobs/uploads/?mount=" + d + "&from=b/c", `scope="repository:a:pull,push repository:b/c:pull"`},
		{"PATCH", "/v2/a/blobs/uploads/abc", `scope="repository:a:pull,push"`},
		{"GET", "/v2/a/referrers/" + d, `scope="repository:a:pull"`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			h := newTestHandler(t, func(o *Options) { o.Auth = &denyAll{} })
			r := do(t, h, tt.method, tt.target, nil)
			ch := r.Header.Get("WWW-Authenticate")
			if r.Status != 401 || !strings.HasPrefix(ch, `Bearer realm="https://auth/token",service="reg"`) || (tt.scope != "" && !strings.Contains(ch, tt.scope)) {
				t.Errorf("got %d %q, want 401 with %s", r.Status, ch, tt.scope)
			}
			if tt.method != "HEAD" && errCode(t, r.Body) != "UNAUTHORIZED" {
				t.Errorf("code: %s", r.Body)
			}
		})
	}
	h := newTestHandler(t, func(o *Options) { o.Auth = brokenAuth{} })
	r := do(t, h, "GET", "/v2/", nil)
	if r.Status != 503 || strings.Contains(r.Body, "secret-detail") {
		t.Errorf("broken auth: %d %s", r.Status, r.Body)
	}
}

func TestStorageErrorsAreNotLeaked(t *testing.T) {
	e := asAPIError(fmt.Errorf("open /var/lib/registry/docker/x: permission denied"))
	if e.Code != CodeUnknown || strings.Contains(e.message(), "/var/lib") {
		t.Errorf("got %+v", e)
	}
	w := httptest.NewRecorder()
	writeError(w, httptest.NewRequest("GET", "/", nil), e)
	if strings.Contains(w.Body.String(), "permission") || w.Code != 500 {
		t.Errorf("body %q", w.Body.String())
	}
}

// TestOversizedManifestAnswerIsReadable: a client that writes a whole
// oversized manifest before reading (as the Docker engine does) gets the
// 413, not a broken pipe, for both a declared and a chunked length.
func TestOversizedManifestAnswerIsReadable(t *testing.T) {
	srv := httptest.NewServer(newTestHandler(t, nil))
	defer srv.Close()
	body := bytes.Repeat([]byte(" "), 5<<20)
	for _, tc := range []struct {
		name string
		head string
	}{
		{"content-length", fmt.Sprintf("Content-Length: %d\r\n", len(body))},
		{"chunked", "Transfer-Encoding: chunked\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			payload := body
			if strings.Contains(tc.head, "chunked") {
				payload = append([]byte(fmt.Sprintf("%x\r\n", len(body))), body...)
				payload = append(payload, "\r\n0\r\n\r\n"...)
			}
			if _, err := fmt.Fprintf(c, "PUT /v2/img/manifests/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n%s\r\n", tc.head); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(payload); err != nil {
				t.Fatalf("writing the body: %v (the server stopped reading)", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413", resp.StatusCode)
			}
		})
	}
}
