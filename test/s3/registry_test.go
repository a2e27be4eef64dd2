//go:build integration

package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
)

// registryConfig is a distribution config.yml on m's bucket under root,
// the same for registry 2.8.2 and Gatehouse. Parts and copies are kept at
// 5 MiB so that a 12 MiB layer takes the multipart paths of both.
func registryConfig(t *testing.T, m *testenv.MinIO, root, addr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  s3:
    accesskey: %s
    secretkey: %s
    region: %s
    regionendpoint: %s
    bucket: %s
    secure: false
    v4auth: true
    rootdirectory: %s
    chunksize: 5242880
    multipartcopychunksize: 5242880
    multipartcopythresholdsize: 5242880
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, m.AccessKey, m.SecretKey, m.Region, m.Endpoint(), m.Bucket, root, addr)
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// server is a registry (2.8.2 or Gatehouse) serving a bucket.
type server struct {
	*testenv.Process
	Addr   string
	Config string
}

func startRegistry(t *testing.T, program string, m *testenv.MinIO, root string) *server {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := registryConfig(t, m, root, addr)
	var p *testenv.Process
	switch program {
	case testenv.Registry2:
		// registry 2.8.2's AWS SDK panics at start when AWS_CA_BUNDLE is
		// set; an empty value counts as unset.
		p = testenv.Start(t, []string{"AWS_CA_BUNDLE="}, testenv.Tool(t, testenv.Registry2), "serve", cfg)
	case testenv.RegistryGatehouse:
		p = testenv.Start(t, nil, testenv.Gatehouse(t), "registry", "serve", cfg)
	default:
		t.Fatalf("unknown registry %q", program)
	}
	p.WaitHTTP(t, "http://"+addr+"/v2/")
	return &server{Process: p, Addr: addr, Config: cfg}
}

// bigImage is an image with a layer above 5 MiB: uploads and moves take
// the multipart paths.
func bigImage(t *testing.T) (*testenv.Image, string) {
	t.Helper()
	noise := make([]byte, 9<<20)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	im := testenv.NewImage(t, map[string]string{
		"s3/" + t.Name() + ".txt": "pushed by " + t.Name() + "\n",
		"s3/noise":                base64.StdEncoding.EncodeToString(noise),
	})
	if len(im.Layer) < 6<<20 {
		t.Fatalf("layer is %d bytes, want more than 6 MiB", len(im.Layer))
	}
	layout := filepath.Join(t.TempDir(), "layout")
	im.WriteOCILayout(t, layout, "v1")
	return im, layout
}

func smallImage(t *testing.T, name string) (*testenv.Image, string) {
	t.Helper()
	im := testenv.NewImage(t, map[string]string{"s3/" + name + ".txt": name + " of " + t.Name() + "\n"})
	layout := filepath.Join(t.TempDir(), "layout-"+name)
	im.WriteOCILayout(t, layout, "v1")
	return im, layout
}

// stored is what a registry serves for one image.
type stored struct {
	Digest   string
	Manifest string
	Tags     string
	Layer    string // digest of the layer as served
	Catalog  string
}

// TestLayoutWithRegistry2 pushes through one registry into a bucket, stops
// it, serves the same bucket and root directory with the other, and
// compares what they serve: registry 2.8.2 to Gatehouse and back.
func TestLayoutWithRegistry2(t *testing.T) {
	for _, dir := range []struct{ from, to string }{
		{testenv.Registry2, testenv.RegistryGatehouse},
		{testenv.RegistryGatehouse, testenv.Registry2},
	} {
		t.Run(dir.from+" to "+dir.to, func(t *testing.T) {
			m := testenv.StartMinIO(t)
			crane := testenv.Tool(t, "crane")
			home := t.TempDir()
			env := []string{"DOCKER_CONFIG=" + home, "HOME=" + home}
			im, layout := bigImage(t)
			root := "/reg"

			first := startRegistry(t, dir.from, m, root)
			ref := first.Addr + "/compat/big"
			testenv.MustRun(t, env, crane, "push", "--insecure", layout, ref+":v1")
			testenv.MustRun(t, env, crane, "tag", "--insecure", ref+":v1", "v2")
			read := func(addr string) stored {
				r := addr + "/compat/big"
				layer := testenv.MustRun(t, env, crane, "blob", "--insecure", r+"@"+im.LayerDigest)
				return stored{
					Digest:   strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", "--insecure", r+":v1")),
					Manifest: testenv.MustRun(t, env, crane, "manifest", "--insecure", r+":v2"),
					Tags:     strings.Join(strings.Fields(testenv.MustRun(t, env, crane, "ls", "--insecure", r)), ","),
					Layer:    testenv.Digest([]byte(layer)),
					Catalog:  strings.TrimSpace(testenv.MustRun(t, env, crane, "catalog", "--insecure", addr)),
				}
			}
			before := read(first.Addr)
			if before.Digest != im.Digest || before.Layer != im.LayerDigest {
				t.Fatalf("%s serves digest %s layer %s, want %s and %s", dir.from, before.Digest, before.Layer, im.Digest, im.LayerDigest)
			}
			first.Stop()
			// The layout in the bucket is distribution's, under rootdirectory.
			key := fmt.Sprintf("reg/docker/registry/v2/blobs/sha256/%s/%s/data", im.LayerDigest[7:9], im.LayerDigest[7:])
			oi, err := m.Client(t).StatObject(context.Background(), m.Bucket, key, minio.StatObjectOptions{})
			if err != nil || oi.Size != int64(len(im.Layer)) {
				t.Fatalf("layer object %s: size %d, %v; want %d", key, oi.Size, err, len(im.Layer))
			}

			second := startRegistry(t, dir.to, m, root)
			after := read(second.Addr)
			if d := cmp.Diff(before, after); d != "" {
				t.Errorf("written by %s and served by %s differ (-%s +%s):\n%s", dir.from, dir.to, dir.from, dir.to, d)
			}
			testenv.MustRun(t, env, crane, "pull", "--insecure", "--format", "oci", second.Addr+"/compat/big:v2", filepath.Join(home, "pulled"))
			// The second one keeps writing into the same bucket.
			testenv.MustRun(t, env, crane, "copy", "--insecure", second.Addr+"/compat/big:v1", second.Addr+"/compat/copy:v1")
			if got := strings.TrimSpace(testenv.MustRun(t, env, crane, "digest", "--insecure", second.Addr+"/compat/copy:v1")); got != im.Digest {
				t.Errorf("copy inside %s: digest %s, want %s", dir.to, got, im.Digest)
			}
		})
	}
}

// TestGCOnS3 deletes one of two images and runs `gatehouse gc` on the
// bucket: the deleted image's blobs go, the other's stay and still pull.
func TestGCOnS3(t *testing.T) {
	m := testenv.StartMinIO(t)
	crane := testenv.Tool(t, "crane")
	home := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + home, "HOME=" + home}
	keep, keepLayout := smallImage(t, "keep")
	drop, dropLayout := smallImage(t, "drop")

	reg := startRegistry(t, testenv.RegistryGatehouse, m, "/gc")
	testenv.MustRun(t, env, crane, "push", "--insecure", keepLayout, reg.Addr+"/gc/keep:v1")
	testenv.MustRun(t, env, crane, "push", "--insecure", dropLayout, reg.Addr+"/gc/drop:v1")
	testenv.MustRun(t, env, crane, "delete", "--insecure", reg.Addr+"/gc/drop@"+drop.Digest)
	reg.Stop()

	blobKey := func(dgst string) string {
		return fmt.Sprintf("gc/docker/registry/v2/blobs/sha256/%s/%s/data", dgst[7:9], dgst[7:])
	}
	exists := func(dgst string) bool {
		_, err := m.Client(t).StatObject(context.Background(), m.Bucket, blobKey(dgst), minio.StatObjectOptions{})
		if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, d := range []string{keep.LayerDigest, drop.LayerDigest, drop.Digest} {
		if !exists(d) {
			t.Fatalf("blob %s missing before gc", d)
		}
	}
	out := testenv.MustRun(t, nil, testenv.Gatehouse(t), "gc", reg.Config, "--i-know-registry-is-read-only")
	t.Logf("gc:\n%s", out)
	for _, d := range []string{drop.LayerDigest, drop.ConfigDigest, drop.Digest} {
		if exists(d) {
			t.Errorf("blob %s of the deleted image survived gc", d)
		}
	}
	for _, d := range []string{keep.LayerDigest, keep.ConfigDigest, keep.Digest} {
		if !exists(d) {
			t.Errorf("blob %s of the kept image was deleted by gc", d)
		}
	}
	reg = startRegistry(t, testenv.RegistryGatehouse, m, "/gc")
	testenv.MustRun(t, env, crane, "pull", "--insecure", "--format", "oci", reg.Addr+"/gc/keep:v1", filepath.Join(home, "pulled"))
}

// TestChunkedSHA512Upload pushes a blob in chunks through Gatehouse on S3,
// across two Gatehouse processes on the same bucket, and commits it with a
// sha512 digest: the registry re-reads the unfinished upload from its
// segments to hash it.
func TestChunkedSHA512Upload(t *testing.T) {
	m := testenv.StartMinIO(t)
	a := startRegistry(t, testenv.RegistryGatehouse, m, "/chunked")
	b := startRegistry(t, testenv.RegistryGatehouse, m, "/chunked")
	blob := make([]byte, 7<<20+123)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(blob)
	dgst := "sha512:" + hex.EncodeToString(sum[:])
	// do makes a request and returns the response with its body read.
	type answer struct {
		StatusCode int
		Status     string
		Header     http.Header
	}
	do := func(method, url string, body []byte, hdr map[string]string) answer {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return answer{resp.StatusCode, resp.Status, resp.Header}
	}
	resp := do(http.MethodPost, "http://"+a.Addr+"/v2/chunked/repo/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/") {
		loc = strings.TrimPrefix(loc, "http://"+a.Addr)
	}
	half := len(blob) / 2
	for i, part := range []struct {
		addr string
		from int
		to   int
	}{{a.Addr, 0, half}, {b.Addr, half, len(blob)}} {
		resp = do(http.MethodPatch, "http://"+part.addr+loc, blob[part.from:part.to], map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", part.from, part.to-1),
		})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH %d: %s", i, resp.Status)
		}
		loc = resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "/") {
			loc = strings.TrimPrefix(loc, "http://"+part.addr)
		}
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp = do(http.MethodPut, "http://"+a.Addr+loc+sep+"digest="+dgst, nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT digest=%s: %s", dgst, resp.Status)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+b.Addr+"/v2/chunked/repo/blobs/"+dgst, nil)
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	body, err := io.ReadAll(got.Body)
	if err != nil || got.StatusCode != http.StatusOK || !bytes.Equal(body, blob) {
		t.Fatalf("GET blob: %s, %d bytes, %v", got.Status, len(body), err)
	}
}
