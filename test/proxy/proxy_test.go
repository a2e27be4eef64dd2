//go:build integration

// Package proxy_test runs `gatehouse registry serve` as a pull-through
// cache in front of real registries on 127.0.0.1: registry v3.1.2 with
// htpasswd (Basic auth upstream) and a Gatehouse registry behind `gatehouse
// auth-server` (the Docker bearer flow upstream), pulled through with crane,
// skopeo and the Docker engine.
package proxy_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

const (
	upstreamUser, upstreamPass = "mirror", "mirror-upstream-pw"
	clientUser, clientPass     = "puller", "puller-cache-pw"
	pusherUser, pusherPass     = "pusher", "pusher-upstream-pw"
	issuer, service            = "gatehouse-proxy-test", "upstream-registry"
)

// front is a reverse proxy before registry v3: it counts blob GETs by path
// and answers chosen paths with a chosen status instead.
type front struct {
	srv    *httptest.Server
	mu     sync.Mutex
	counts map[string]int
	inject map[string]int // path -> status
}

func newFront(t *testing.T, backend string) *front {
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{counts: map[string]int{}, inject: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if r.Method == http.MethodGet {
			f.counts[r.URL.Path]++
		}
		status := f.inject[r.URL.Path]
		f.mu.Unlock()
		if status != 0 {
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "30")
			}
			w.WriteHeader(status)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *front) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[path]
}

func (f *front) set(path string, status int) {
	f.mu.Lock()
	f.inject[path] = status
	f.mu.Unlock()
}

type env struct {
	dir       string
	v3        *testenv.Process
	v3URL     string
	front     *front
	gh        *testenv.Distribution // Gatehouse upstream with token auth
	auth      *testenv.AuthServer
	caFile    string
	cache     *testenv.Process
	cacheAddr string
	debugAddr string
}

func htpasswd(t *testing.T, path string, users map[string]string) {
	var b strings.Builder
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) string {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func setup(t *testing.T) *env {
	e := &env{dir: t.TempDir()}

	// Upstream 1: registry v3.1.2 with htpasswd, behind the counting front.
	htpasswd(t, filepath.Join(e.dir, "v3.htpasswd"), map[string]string{upstreamUser: upstreamPass})
	v3Addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	v3cfg := writeFile(t, filepath.Join(e.dir, "v3.yml"), fmt.Sprintf(`version: 0.1
log: {level: info}
storage:
  filesystem: {rootdirectory: %q}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: %q}
auth:
  htpasswd: {realm: upstream, path: %q}
`, filepath.Join(e.dir, "v3-data"), v3Addr, filepath.Join(e.dir, "v3.htpasswd")))
	e.v3 = testenv.Start(t, []string{"OTEL_TRACES_EXPORTER=none"}, testenv.Tool(t, testenv.Registry3), "serve", v3cfg)
	e.v3URL = "http://" + v3Addr
	e.v3.WaitHTTP(t, e.v3URL+"/v2/")
	e.front = newFront(t, e.v3URL)

	// Upstream 2: a Gatehouse registry with token auth.
	ca, caKey, err := tlsutil.GenerateCA("Gatehouse proxy test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.caFile = filepath.Join(e.dir, "ca.crt")
	chain, keyFile := filepath.Join(e.dir, "auth.crt"), filepath.Join(e.dir, "auth.key")
	if err := tlsutil.WriteCertPEM(e.caFile, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteCertPEM(chain, leaf, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(keyFile, key); err != nil {
		t.Fatal(err)
	}
	e.auth = testenv.StartAuthServer(t, testenv.AuthServerOptions{
		Cert: chain, Key: keyFile, Issuer: issuer,
		Users: map[string]string{upstreamUser: upstreamPass, pusherUser: pusherPass},
		ACL: `  - match: {account: "` + pusherUser + `"}
    actions: ["*"]
  - match: {account: "` + upstreamUser + `", name: "team/*"}
    actions: ["pull"]
`,
	})
	e.gh = testenv.StartDistribution(t, testenv.DistributionOptions{Program: testenv.RegistryGatehouse,
		Token: &testenv.TokenAuth{Realm: e.auth.Realm(), Service: service, Issuer: issuer, RootCertBundle: e.caFile}})

	// The cache: clients log in with htpasswd; v3/... mirrors registry v3,
	// gh/... the Gatehouse upstream; anything else is hosted.
	htpasswd(t, filepath.Join(e.dir, "cache.htpasswd"), map[string]string{clientUser: clientPass})
	e.cacheAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.debugAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cacheCfg := writeFile(t, filepath.Join(e.dir, "cache.yml"), fmt.Sprintf(`version: 0.1
log: {level: debug}
storage:
  filesystem: {rootdirectory: %q}
  maintenance: {uploadpurging: {enabled: false}}
http:
  addr: %q
  debug: {addr: %q, prometheus: {enabled: true}}
auth:
  htpasswd: {realm: cache, path: %q}
proxy:
  ttl: 168h
  maxsize: 10GiB
  upstreams:
  - {prefix: v3, remoteurl: %q, username: %s, password: %s}
  - {prefix: gh, remoteurl: %q, username: %s, password: %s}
`, filepath.Join(e.dir, "cache-data"), e.cacheAddr, e.debugAddr, filepath.Join(e.dir, "cache.htpasswd"),
		e.front.srv.URL, upstreamUser, upstreamPass, e.gh.URL(), upstreamUser, upstreamPass))
	// The cache trusts the auth server's CA for the token realm.
	e.cache = testenv.Start(t, []string{"SSL_CERT_FILE=" + e.caFile}, testenv.Gatehouse(t), "registry", "serve", cacheCfg)
	e.cache.WaitHTTP(t, "http://"+e.cacheAddr+"/v2/")
	return e
}

// pushRaw pushes blobs and an image manifest over them to a registry
// with Basic auth, as monolithic uploads, and returns the manifest digest.
func pushRaw(t *testing.T, base, repo, tag string, config []byte, layers ...[]byte) string {
	t.Helper()
	put := func(b []byte) map[string]any {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		req, _ := http.NewRequest(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
		req.SetBasicAuth(upstreamUser, upstreamPass)
		hdr := mustDo(t, req, http.StatusAccepted)
		loc, err := url.Parse(hdr.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(base)
		loc = u.ResolveReference(loc)
		q := loc.Query()
		q.Set("digest", d)
		loc.RawQuery = q.Encode()
		req, _ = http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(b))
		req.SetBasicAuth(upstreamUser, upstreamPass)
		req.ContentLength = int64(len(b))
		req.Header.Set("Content-Type", "application/octet-stream")
		mustDo(t, req, http.StatusCreated)
		return map[string]any{"digest": d, "size": len(b)}
	}
	cfg := put(config)
	cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
	var ls []map[string]any
	for _, l := range layers {
		d := put(l)
		d["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
		ls = append(ls, d)
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": ls})
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(m))
	req.SetBasicAuth(upstreamUser, upstreamPass)
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	mustDo(t, req, http.StatusCreated)
	sum := sha256.Sum256(m)
	return "sha256:" + hex.EncodeToString(sum[:])
}

var client = &http.Client{Timeout: 2 * time.Minute}

// mustDo sends req, reads and closes the answer, and returns its headers.
func mustDo(t *testing.T, req *http.Request, want int) http.Header {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", req.Method, req.URL, resp.StatusCode, want, body)
	}
	return resp.Header
}

// cacheDo sends method to the cache as the client user; it returns the
// status, headers and body.
func (e *env) cacheDo(t *testing.T, method, path string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+e.cacheAddr+path, rd)
	req.SetBasicAuth(clientUser, clientPass)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func errorCode(body []byte) string {
	var eb struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

// craneEnv logs crane in to the cache as the client user.
func (e *env) craneEnv(t *testing.T) (string, []string) {
	crane := testenv.Tool(t, "crane")
	dir := t.TempDir()
	cenv := []string{"DOCKER_CONFIG=" + dir, "HOME=" + dir}
	testenv.MustRun(t, cenv, crane, "auth", "login", e.cacheAddr, "-u", clientUser, "-p", clientPass)
	return crane, cenv
}

func TestPullThroughCache(t *testing.T) {
	e := setup(t)

	appV1 := pushRaw(t, e.v3URL, "library/app", "v1", []byte(`{"architecture":"amd64","os":"linux","v":1}`), []byte("layer of app v1 "+t.Name()))

	// A Gatehouse-upstream image, pushed with crane through the bearer flow.
	crane := testenv.Tool(t, "crane")
	pdir := t.TempDir()
	penv := []string{"DOCKER_CONFIG=" + pdir, "HOME=" + pdir, "SSL_CERT_FILE=" + e.caFile}
	testenv.MustRun(t, penv, crane, "auth", "login", e.gh.Addr, "-u", pusherUser, "-p", pusherPass)
	ghImage := testenv.NewImage(t, map[string]string{"proxy/" + t.Name() + ".txt": "from the token-auth upstream\n"})
	layout := filepath.Join(pdir, "layout")
	ghImage.WriteOCILayout(t, layout, "v1")
	testenv.MustRun(t, penv, crane, "push", layout, e.gh.Addr+"/team/tool:v1")
	testenv.MustRun(t, penv, crane, "push", layout, e.gh.Addr+"/private/tool:v1")

	t.Run("clients pull through", func(t *testing.T) {
		crane, cenv := e.craneEnv(t)
		if got := strings.TrimSpace(testenv.MustRun(t, cenv, crane, "digest", e.cacheAddr+"/v3/library/app:v1")); got != appV1 {
			t.Errorf("crane digest via the cache = %s, want %s", got, appV1)
		}
		out := filepath.Join(t.TempDir(), "app.tar")
		testenv.MustRun(t, cenv, crane, "pull", e.cacheAddr+"/v3/library/app:v1", out)

		skopeo := testenv.Tool(t, "skopeo")
		oci := filepath.Join(t.TempDir(), "oci")
		testenv.MustRun(t, nil, skopeo, "copy", "--src-tls-verify=false", "--src-creds", clientUser+":"+clientPass,
			"docker://"+e.cacheAddr+"/gh/team/tool:v1", "oci:"+oci+":v1")
		idx, err := os.ReadFile(filepath.Join(oci, "index.json"))
		if err != nil || !strings.Contains(string(idx), ghImage.Digest) {
			t.Errorf("skopeo copy through the cache: index %s (%v), want %s", idx, err, ghImage.Digest)
		}
		if got := testenv.MustRun(t, cenv, crane, "blob", e.cacheAddr+"/gh/team/tool@"+ghImage.LayerDigest); got != string(ghImage.Layer) {
			t.Errorf("layer through the cache differs (%d bytes, want %d)", len(got), len(ghImage.Layer))
		}
	})

	// The Docker engine: a real image (a layer tar the engine can unpack)
	// on each upstream, pulled by the cache's host name after docker login
	// with the cache's own credentials. The engine treats 127.0.0.0/8 as
	// insecure, so it speaks plain HTTP to the cache.
	engineImage := testenv.NewImage(t, map[string]string{"proxy/engine.txt": "pulled by the docker engine\n"})
	engineDigest := pushRaw(t, e.v3URL, "library/engine", "v1", engineImage.Config, engineImage.RootFS)
	engineRef := e.cacheAddr + "/v3/library/engine:v1"
	d := testenv.StartDockerd(t)
	repoDigest := func(t *testing.T, ref string) string {
		t.Helper()
		return strings.TrimSpace(d.Docker(t, "", "image", "inspect", "--format", "{{index .RepoDigests 0}}", ref))
	}

	t.Run("the docker engine pulls through", func(t *testing.T) {
		out, err := d.Run(t.Context(), "", "pull", engineRef)
		if err == nil {
			t.Fatalf("docker pull from the cache without login succeeded:\n%s", out)
		}
		if l := strings.ToLower(out); !strings.Contains(l, "unauthorized") && !strings.Contains(l, "no basic auth credentials") {
			t.Errorf("anonymous docker pull refusal does not say unauthorized:\n%s", out)
		}
		if out := d.Docker(t, clientPass+"\n", "login", "-u", clientUser, "--password-stdin", e.cacheAddr); !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("docker login to the cache: %s", out)
		}
		d.Docker(t, "", "pull", engineRef)
		if got, want := repoDigest(t, engineRef), e.cacheAddr+"/v3/library/engine@"+engineDigest; got != want {
			t.Errorf("docker pull via the Basic-auth upstream: RepoDigests[0] = %s, want %s", got, want)
		}
		ghRef := e.cacheAddr + "/gh/team/tool:v1"
		d.Docker(t, "", "pull", ghRef)
		if got, want := repoDigest(t, ghRef), e.cacheAddr+"/gh/team/tool@"+ghImage.Digest; got != want {
			t.Errorf("docker pull via the token-auth upstream: RepoDigests[0] = %s, want %s", got, want)
		}
	})

	// registry-mirrors: the engine asks a mirror for Docker Hub names
	// (library/engine for "engine"), so the cache must mirror in
	// distribution's form, the whole registry one upstream. This one has
	// no auth of its own. The upstream at 127.0.0.1 plays Docker Hub.
	t.Run("the docker engine pulls Docker Hub names through registry-mirrors", func(t *testing.T) {
		mirrorAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		cfg := writeFile(t, filepath.Join(e.dir, "mirror.yml"), fmt.Sprintf(`version: 0.1
storage:
  filesystem: {rootdirectory: %q}
http: {addr: %q}
proxy: {remoteurl: %q, username: %s, password: %s}
`, filepath.Join(e.dir, "mirror-data"), mirrorAddr, e.front.srv.URL, upstreamUser, upstreamPass))
		mirror := testenv.Start(t, nil, testenv.Gatehouse(t), "registry", "serve", cfg)
		mirror.WaitHTTP(t, "http://"+mirrorAddr+"/v2/")
		md := testenv.StartDockerdConfig(t, fmt.Sprintf(`{"registry-mirrors": ["http://%s"]}`+"\n", mirrorAddr))
		configPath := "/v2/library/engine/blobs/" + engineImage.ConfigDigest
		before := e.front.count(configPath)
		md.Docker(t, "", "pull", "engine:v1")
		got := strings.TrimSpace(md.Docker(t, "", "image", "inspect", "--format", "{{index .RepoDigests 0}}", "engine:v1"))
		if want := "engine@" + engineDigest; got != want {
			t.Errorf("docker pull through registry-mirrors: RepoDigests[0] = %s, want %s", got, want)
		}
		if n := e.front.count(configPath) - before; n != 1 {
			t.Errorf("upstream GETs of the image's config during the pull = %d, want 1 (by the mirror)", n)
		}
		if log := mirror.Log(); strings.Contains(log, upstreamPass) {
			t.Error("the upstream password reached the mirror's log")
		}
	})

	t.Run("the cache's own auth applies", func(t *testing.T) {
		resp, err := client.Get("http://" + e.cacheAddr + "/v2/v3/library/app/manifests/v1")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous pull from the cache = %d, want 401", resp.StatusCode)
		}
	})

	t.Run("one upstream fetch for concurrent pulls of a large blob", func(t *testing.T) {
		big := make([]byte, 64<<20)
		if _, err := rand.Read(big); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(big)
		d := "sha256:" + hex.EncodeToString(sum[:])
		pushRaw(t, e.v3URL, "library/big", "v1", []byte(`{"architecture":"amd64","os":"linux","big":true}`), big)
		const clients = 8
		var wg sync.WaitGroup
		var bad atomic.Int32
		for range clients {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, "http://"+e.cacheAddr+"/v2/v3/library/big/blobs/"+d, nil)
				req.SetBasicAuth(clientUser, clientPass)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					bad.Add(1)
					return
				}
				defer func() { _ = resp.Body.Close() }()
				h := sha256.New()
				n, err := io.Copy(h, resp.Body)
				if resp.StatusCode != http.StatusOK || err != nil || n != int64(len(big)) || "sha256:"+hex.EncodeToString(h.Sum(nil)) != d {
					t.Errorf("concurrent pull: HTTP %d, %d bytes, %v", resp.StatusCode, n, err)
					bad.Add(1)
				}
			})
		}
		wg.Wait()
		if got := e.front.count("/v2/library/big/blobs/" + d); got != 1 {
			t.Errorf("upstream GETs of the blob for %d concurrent pulls = %d, want 1", clients, got)
		}
		// And later pulls are served from storage.
		if status, _, body := e.cacheDo(t, http.MethodGet, "/v2/v3/library/big/blobs/"+d, nil); status != http.StatusOK || len(body) != len(big) {
			t.Errorf("pull after caching = %d, %d bytes", status, len(body))
		}
		if got := e.front.count("/v2/library/big/blobs/" + d); got != 1 {
			t.Errorf("upstream GETs after a cached pull = %d, want 1", got)
		}
	})

	t.Run("a tag moved upstream is revalidated", func(t *testing.T) {
		crane, cenv := e.craneEnv(t)
		pushRaw(t, e.v3URL, "library/moving", "latest", []byte(`{"architecture":"amd64","os":"linux","v":1}`), []byte("moving one"))
		testenv.MustRun(t, cenv, crane, "digest", e.cacheAddr+"/v3/library/moving:latest")
		second := pushRaw(t, e.v3URL, "library/moving", "latest", []byte(`{"architecture":"amd64","os":"linux","v":2}`), []byte("moving two"))
		if got := strings.TrimSpace(testenv.MustRun(t, cenv, crane, "digest", e.cacheAddr+"/v3/library/moving:latest")); got != second {
			t.Errorf("digest after the upstream moved the tag = %s, want %s", got, second)
		}
	})

	t.Run("upstream errors reach the client", func(t *testing.T) {
		status, _, body := e.cacheDo(t, http.MethodGet, "/v2/v3/library/app/manifests/nope", nil)
		if status != http.StatusNotFound || errorCode(body) != "MANIFEST_UNKNOWN" {
			t.Errorf("unknown tag: %d %s", status, body)
		}
		status, _, body = e.cacheDo(t, http.MethodGet, "/v2/v3/library/app/blobs/sha256:"+strings.Repeat("0", 64), nil)
		if status != http.StatusNotFound || errorCode(body) != "BLOB_UNKNOWN" {
			t.Errorf("unknown blob: %d %s", status, body)
		}
		// The mirror account may not pull private/* upstream.
		status, _, body = e.cacheDo(t, http.MethodGet, "/v2/gh/private/tool/manifests/v1", nil)
		if status != http.StatusForbidden || errorCode(body) != "DENIED" {
			t.Errorf("upstream refusal: %d %s", status, body)
		}
		e.front.set("/v2/library/app/manifests/limited", http.StatusTooManyRequests)
		status, hdr, body := e.cacheDo(t, http.MethodGet, "/v2/v3/library/app/manifests/limited", nil)
		if status != http.StatusTooManyRequests || errorCode(body) != "TOOMANYREQUESTS" || hdr.Get("Retry-After") != "30" {
			t.Errorf("upstream 429: %d %s Retry-After %q", status, body, hdr.Get("Retry-After"))
		}
		// A cached tag is served while the upstream limits or fails.
		for _, s := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
			e.front.set("/v2/library/app/manifests/v1", s)
			status, hdr, _ := e.cacheDo(t, http.MethodGet, "/v2/v3/library/app/manifests/v1", nil)
			if status != http.StatusOK || hdr.Get("Docker-Content-Digest") != appV1 {
				t.Errorf("cached tag while the upstream answers %d: %d %s", s, status, hdr.Get("Docker-Content-Digest"))
			}
		}
		e.front.set("/v2/library/app/manifests/v1", 0)
	})

	t.Run("pushes to a mirror are refused, to a hosted repository accepted", func(t *testing.T) {
		status, _, body := e.cacheDo(t, http.MethodPost, "/v2/v3/library/app/blobs/uploads/", nil)
		if status != http.StatusMethodNotAllowed || errorCode(body) != "UNSUPPORTED" {
			t.Errorf("push to a mirror: %d %s", status, body)
		}
		status, _, body = e.cacheDo(t, http.MethodDelete, "/v2/v3/library/app/manifests/"+appV1, nil)
		if status != http.StatusMethodNotAllowed || errorCode(body) != "UNSUPPORTED" {
			t.Errorf("delete on a mirror: %d %s", status, body)
		}
		crane, cenv := e.craneEnv(t)
		im := testenv.NewImage(t, map[string]string{"hosted/" + t.Name() + ".txt": "hosted beside the mirrors\n"})
		dir := filepath.Join(t.TempDir(), "layout")
		im.WriteOCILayout(t, dir, "v1")
		testenv.MustRun(t, cenv, crane, "push", dir, e.cacheAddr+"/team/hosted:v1")
		if got := strings.TrimSpace(testenv.MustRun(t, cenv, crane, "digest", e.cacheAddr+"/team/hosted:v1")); got != im.Digest {
			t.Errorf("hosted digest = %s, want %s", got, im.Digest)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := client.Get("http://" + e.debugAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for _, m := range []string{`gatehouse_proxy_hits_total{kind="manifest"}`, `gatehouse_proxy_misses_total{kind="blob"}`,
			`gatehouse_proxy_fetched_bytes_total{kind="blob"}`, `gatehouse_proxy_stale_served_total{kind="manifest"}`, "gatehouse_proxy_cached_bytes"} {
			if !strings.Contains(string(b), m) {
				t.Errorf("metrics lack %s", m)
			}
		}
	})

	t.Run("the upstream stopped: cached tags still pull", func(t *testing.T) {
		e.v3.Stop()
		e.front.srv.Close()
		crane, cenv := e.craneEnv(t)
		if got := strings.TrimSpace(testenv.MustRun(t, cenv, crane, "digest", e.cacheAddr+"/v3/library/app:v1")); got != appV1 {
			t.Errorf("digest with the upstream gone = %s, want %s", got, appV1)
		}
		testenv.MustRun(t, cenv, crane, "pull", e.cacheAddr+"/v3/library/app:v1", filepath.Join(t.TempDir(), "app.tar"))
		// The engine pulls the cached tag again from scratch.
		d.Docker(t, "", "rmi", engineRef)
		d.Docker(t, "", "pull", engineRef)
		if got, want := repoDigest(t, engineRef), e.cacheAddr+"/v3/library/engine@"+engineDigest; got != want {
			t.Errorf("docker pull with the upstream gone: RepoDigests[0] = %s, want %s", got, want)
		}
		status, _, body := e.cacheDo(t, http.MethodGet, "/v2/v3/library/app/manifests/never-pulled", nil)
		if status != http.StatusServiceUnavailable || errorCode(body) != "UNAVAILABLE" {
			t.Errorf("uncached tag with the upstream gone: %d %s", status, body)
		}
	})

	if log := e.cache.Log(); strings.Contains(log, upstreamPass) {
		t.Error("the upstream password reached the cache's log")
	}
}
