//go:build integration

// Package registry tests the `gatehouse registry serve` binary from the
// outside: bad input gets the spec's status and code and leaves stored
// data intact; bad configs are refused at start; SIGTERM drains.
package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

var client = &http.Client{Timeout: 30 * time.Second}

// result is what a test needs of a response; request has closed the body.
type result struct {
	StatusCode int
	Header     http.Header
}

func request(t *testing.T, method, url string, body []byte, hdr ...string) (result, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header}, b
}

// rawRequest sends a request line exactly as given (no client-side path
// cleaning or re-encoding) and returns the status and body.
func rawRequest(t *testing.T, addr, method, path string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func code(body []byte) string {
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// image is a pushed test image.
type image struct {
	layer, config []byte
	manifest      []byte
	ld, cd, md    digest.Digest
}

func pushImage(t *testing.T, base, name, tag string) image {
	t.Helper()
	im := image{layer: bytes.Repeat([]byte("layer data "), 1000), config: []byte(`{"architecture":"amd64","os":"linux"}`)}
	im.ld, im.cd = digest.FromBytes(im.layer), digest.FromBytes(im.config)
	for _, b := range []struct {
		d       digest.Digest
		content []byte
	}{{im.ld, im.layer}, {im.cd, im.config}} {
		resp, body := request(t, "POST", base+"/v2/"+name+"/blobs/uploads/?digest="+b.d.String(), b.content, "Content-Type", "application/octet-stream")
		if resp.StatusCode != 201 {
			t.Fatalf("push blob: %d %s", resp.StatusCode, body)
		}
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: im.cd, Size: int64(len(im.config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: im.ld, Size: int64(len(im.layer))}}}
	m.SchemaVersion = 2
	im.manifest, _ = json.Marshal(m)
	im.md = digest.FromBytes(im.manifest)
	resp, body := request(t, "PUT", base+"/v2/"+name+"/manifests/"+tag, im.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
	if resp.StatusCode != 201 {
		t.Fatalf("push manifest: %d %s", resp.StatusCode, body)
	}
	return im
}

func (im image) check(t *testing.T, base, name, tag string) {
	t.Helper()
	resp, body := request(t, "GET", base+"/v2/"+name+"/manifests/"+tag, nil, "Accept", ocispec.MediaTypeImageManifest)
	if resp.StatusCode != 200 || !bytes.Equal(body, im.manifest) || resp.Header.Get("Docker-Content-Digest") != im.md.String() {
		t.Errorf("manifest %s:%s changed: %d", name, tag, resp.StatusCode)
	}
	resp, body = request(t, "GET", base+"/v2/"+name+"/blobs/"+im.ld.String(), nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, im.layer) {
		t.Errorf("layer of %s changed: %d", name, resp.StatusCode)
	}
}

func TestBadInput(t *testing.T) {
	reg := testenv.StartRegistry(t, true, "")
	base := reg.URL()
	im := pushImage(t, base, "library/app", "v1")
	missing := digest.FromString("never pushed")

	// Requests that must be refused with a spec status and code.
	raw := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"dotdot name", "GET", "/v2/library/../etc/tags/list", 400, "NAME_INVALID"},
		{"dotdot at start", "GET", "/v2/../../etc/passwd/manifests/latest", 400, "NAME_INVALID"},
		{"encoded dotdot", "GET", "/v2/library/%2e%2e/etc/tags/list", 400, "NAME_INVALID"},
		{"encoded slash", "GET", "/v2/library%2fapp/tags/list", 400, "NAME_INVALID"},
		{"double encoded", "GET", "/v2/library/%252e%252e/tags/list", 400, "NAME_INVALID"},
		{"encoded in blob upload", "PUT", "/v2/library/app/blobs/uploads/%2e%2e%2f%2e%2e?digest=" + missing.String(), 400, "NAME_INVALID"},
		{"traversal upload id", "PATCH", "/v2/library/app/blobs/uploads/..", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"backslash name", "GET", "/v2/library\\app/tags/list", 400, "NAME_INVALID"},
		{"uppercase name", "GET", "/v2/Library/app/tags/list", 400, "NAME_INVALID"},
		{"empty component", "GET", "/v2/library//app/tags/list", 400, "NAME_INVALID"},
		{"long name", "GET", "/v2/" + strings.Repeat("a", 256) + "/tags/list", 400, "NAME_INVALID"},
		{"bad tag", "GET", "/v2/library/app/manifests/.hidden", 400, "TAG_INVALID"},
		{"long tag", "GET", "/v2/library/app/manifests/" + strings.Repeat("t", 129), 400, "TAG_INVALID"},
		{"short digest", "GET", "/v2/library/app/manifests/sha256:abc", 400, "DIGEST_INVALID"},
		{"unknown algorithm", "GET", "/v2/library/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", 400, "DIGEST_INVALID"},
		{"uppercase hex", "GET", "/v2/library/app/blobs/sha256:" + strings.ToUpper(im.ld.Encoded()), 400, "DIGEST_INVALID"},
		{"bad referrers digest", "GET", "/v2/library/app/referrers/sha256:zz", 400, "DIGEST_INVALID"},
		{"negative n", "GET", "/v2/library/app/tags/list?n=-5", 400, "PAGINATION_NUMBER_INVALID"},
		{"garbage n", "GET", "/v2/_catalog?n=ten", 400, "PAGINATION_NUMBER_INVALID"},
		{"unknown upload", "GET", "/v2/library/app/blobs/uploads/00000000-0000-0000-0000-000000000000", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"unknown upload put", "PUT", "/v2/library/app/blobs/uploads/deadbeef?digest=" + missing.String(), 404, "BLOB_UPLOAD_UNKNOWN"},
		{"unknown upload delete", "DELETE", "/v2/library/app/blobs/uploads/deadbeef", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"missing blob", "GET", "/v2/library/app/blobs/" + missing.String(), 404, "BLOB_UNKNOWN"},
		{"missing manifest", "GET", "/v2/library/app/manifests/" + missing.String(), 404, "MANIFEST_UNKNOWN"},
		{"unknown repo", "GET", "/v2/no/such/repo/tags/list", 404, "NAME_UNKNOWN"},
	}
	for _, tt := range raw {
		t.Run(tt.name, func(t *testing.T) {
			status, body := rawRequest(t, reg.Addr, tt.method, tt.path)
			if status != tt.status || code([]byte(body)) != tt.code {
				t.Errorf("%s %s: got %d %s, want %d %s", tt.method, tt.path, status, body, tt.status, tt.code)
			}
		})
	}

	t.Run("huge n is clamped", func(t *testing.T) {
		resp, body := request(t, "GET", base+"/v2/library/app/tags/list?n=999999999999999999999999", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"v1"`) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})

	t.Run("manifests", func(t *testing.T) {
		tests := []struct {
			name, ref string
			body      []byte
			status    int
			code      string
		}{
			{"malformed json", "bad", []byte(`{"schemaVersion":2,`), 400, "MANIFEST_INVALID"},
			{"not an object", "bad", []byte(`[1,2,3]`), 400, "MANIFEST_INVALID"},
			{"unknown layer", "bad", bytes.ReplaceAll(im.manifest, []byte(im.ld.Encoded()), []byte(missing.Encoded())), 400, "MANIFEST_BLOB_UNKNOWN"},
			{"digest mismatch", missing.String(), im.manifest, 400, "DIGEST_INVALID"},
			{"oversized", "big", append([]byte(`{"schemaVersion":2,"x":"`), bytes.Repeat([]byte("a"), 5<<20)...), 413, "MANIFEST_INVALID"},
			{"empty", "empty", []byte{}, 400, "MANIFEST_INVALID"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := request(t, "PUT", base+"/v2/library/app/manifests/"+tt.ref, tt.body, "Content-Type", ocispec.MediaTypeImageManifest)
				if resp.StatusCode != tt.status || code(body) != tt.code {
					t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.status, tt.code)
				}
			})
		}
	})

	t.Run("uploads", func(t *testing.T) {
		content := []byte("0123456789")
		d := digest.FromBytes(content)
		start := func() string {
			resp, _ := request(t, "POST", base+"/v2/library/up/blobs/uploads/", nil)
			if resp.StatusCode != 202 {
				t.Fatalf("start: %d", resp.StatusCode)
			}
			return resp.Header.Get("Location")
		}
		loc := start()
		for _, cr := range []string{"garbage", "5-2", "-1-3", "3-5", "0-99999999999999999999"} {
			resp, body := request(t, "PATCH", loc, content[:3], "Content-Range", cr)
			if resp.StatusCode != 416 || code(body) != "RANGE_INVALID" {
				t.Errorf("Content-Range %q: %d %s", cr, resp.StatusCode, body)
			}
		}
		// digest mismatch at the end
		resp, body := request(t, "PUT", loc+"?digest="+missing.String(), content)
		if resp.StatusCode != 400 || code(body) != "DIGEST_INVALID" {
			t.Errorf("mismatch: %d %s", resp.StatusCode, body)
		}
		resp, body = request(t, "PUT", start()+"?digest=sha256:nothex", content)
		if resp.StatusCode != 400 || code(body) != "DIGEST_INVALID" {
			t.Errorf("bad digest: %d %s", resp.StatusCode, body)
		}
		resp, _ = request(t, "HEAD", base+"/v2/library/up/blobs/"+missing.String(), nil)
		if resp.StatusCode != 404 {
			t.Errorf("mismatched upload became visible: %d", resp.StatusCode)
		}

		// a body cut short: the connection closes after 4 of 10 bytes
		loc = start()
		u := strings.TrimPrefix(loc, base)
		c, err := net.Dial("tcp", reg.Addr)
		if err != nil {
			t.Fatal(err)
		}
		patches := func() int { return strings.Count(reg.Log(), " method=PATCH ") }
		before := patches()
		fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n0123", u, reg.Addr)
		c.Close()
		// The access log line is written when the registry is done with the request.
		testenv.Eventually(t, 10*time.Second, "the cut-off PATCH in the access log", func() bool { return patches() > before })
		resp, body = request(t, "PUT", loc+"?digest="+d.String(), nil)
		if resp.StatusCode == 201 {
			t.Errorf("a truncated upload committed as the full blob: %s", body)
		}
		resp, _ = request(t, "HEAD", base+"/v2/library/up/blobs/"+d.String(), nil)
		if resp.StatusCode != 404 {
			t.Errorf("truncated upload became visible: %d", resp.StatusCode)
		}
		// and a correct upload still works afterwards
		resp, body = request(t, "POST", base+"/v2/library/up/blobs/uploads/?digest="+d.String(), content)
		if resp.StatusCode != 201 {
			t.Errorf("upload after bad ones: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("ranges", func(t *testing.T) {
		tests := []struct {
			rng    string
			status int
		}{
			{"bytes=0-9", 206},
			{"bytes=500-0", 416},
			{"bytes=99999999-", 416},
			{"bytes=garbage", 200},
			{"pages=1-2", 200},
		}
		for _, tt := range tests {
			resp, body := request(t, "GET", base+"/v2/library/app/blobs/"+im.ld.String(), nil, "Range", tt.rng)
			if resp.StatusCode != tt.status {
				t.Errorf("Range %q: %d", tt.rng, resp.StatusCode)
			}
			if tt.status == 206 && !bytes.Equal(body, im.layer[:10]) {
				t.Errorf("Range %q: wrong bytes", tt.rng)
			}
		}
	})

	// Nothing above changed what was stored, or wrote outside the layout.
	im.check(t, base, "library/app", "v1")
	resp, body := request(t, "GET", base+"/v2/_catalog", nil)
	var cat struct{ Repositories []string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &cat) != nil {
		t.Fatalf("catalog: %d %s", resp.StatusCode, body)
	}
	for _, r := range cat.Repositories {
		if r != "library/app" && r != "library/up" {
			t.Errorf("unexpected repository %q in the catalog", r)
		}
	}
	err := filepath.WalkDir(reg.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(reg.Root, p)
		if rel != "." && rel != "docker" && rel != filepath.Join("docker", "registry") && !strings.HasPrefix(rel, filepath.Join("docker", "registry", "v2")) {
			t.Errorf("file outside the storage layout: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(reg.Root)); len(entries) > 2 {
		t.Errorf("files written beside the storage root: %v", entries)
	}
}
