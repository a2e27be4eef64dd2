//go:build integration

// Package ha tests Gatehouse as stateless replicas behind a real load
// balancer: MinIO as the shared bucket, Redis as the shared cache,
// `gatehouse auth-server` as the one token issuer every replica trusts,
// and Debian's HAProxy in front (round robin, no stickiness, TLS
// terminated at HAProxy), with crane, skopeo and the Docker engine as
// clients.
package ha

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

const (
	user     = "ha-user"
	password = "ha-password-1"
	service  = "gatehouse-ha"
	issuer   = "gatehouse-ha-issuer"
)

// replica is one `gatehouse registry serve` of the cluster. Its addresses
// stay the same across restarts, as the load balancer's config names them.
type replica struct {
	*testenv.Process
	name      string
	addr      string
	debugPort int
	config    string
}

func (r *replica) debugURL() string { return fmt.Sprintf("http://127.0.0.1:%d", r.debugPort) }

// cluster is MinIO, Redis, an auth server, replicas and HAProxy.
type cluster struct {
	t        *testing.T
	bin      string
	certDir  string
	minio    *testenv.MinIO
	redis    *testenv.Redis
	auth     *testenv.AuthServer
	replicas []*replica
	lb       *testenv.HAProxy
	http     *http.Client // trusts the cluster's CA
	env      []string     // for crane and skopeo: CA, DOCKER_CONFIG
	home     string
	opts     clusterOptions
}

// clusterOptions change what the replicas are given.
type clusterOptions struct {
	// s3Endpoint, when set, returns the storage.s3.regionendpoint the
	// replicas use instead of MinIO's own (a proxy in front of it).
	s3Endpoint func(m *testenv.MinIO) string
	// s3Extra is YAML added to storage.s3, indented by four spaces.
	s3Extra string
}

// startCluster starts n replicas on one bucket and one Redis behind
// HAProxy, all trusting one auth server.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return startClusterWith(t, n, clusterOptions{})
}

// startClusterWith is startCluster with options.
func startClusterWith(t *testing.T, n int, opts clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: testenv.Gatehouse(t), certDir: t.TempDir(), home: t.TempDir(), opts: opts}
	testenv.MustRun(t, nil, c.bin, "certs", "init", "--out", c.certDir, "--host", "localhost", "--ip", "127.0.0.1")
	crt, key := filepath.Join(c.certDir, "server.crt"), filepath.Join(c.certDir, "server.key")
	ca := filepath.Join(c.certDir, "ca.crt")

	c.minio = testenv.StartMinIO(t)
	c.redis = testenv.StartRedis(t)
	c.auth = testenv.StartAuthServer(t, testenv.AuthServerOptions{
		Cert: crt, Key: key, Issuer: issuer,
		Users: map[string]string{user: password},
		ACL:   fmt.Sprintf("  - match: {account: %q}\n    actions: [\"*\"]\n", user),
	})
	var backends []testenv.HAProxyBackend
	for i := range n {
		r := &replica{
			name:      fmt.Sprintf("r%d", i+1),
			addr:      fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
			debugPort: testenv.FreePort(t),
		}
		r.config = c.writeReplicaConfig(r, ca)
		c.start(r)
		c.replicas = append(c.replicas, r)
		backends = append(backends, testenv.HAProxyBackend{Name: r.name, Addr: r.addr, HealthPort: r.debugPort})
	}
	pem := filepath.Join(c.certDir, "haproxy.pem")
	writePEM(t, pem, crt, key)
	c.lb = testenv.StartHAProxy(t, backends, testenv.HAProxyOptions{PEM: pem})

	caPEM, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c.http = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	c.env = []string{"SSL_CERT_FILE=" + ca, "DOCKER_CONFIG=" + c.home, "HOME=" + c.home}
	testenv.MustRun(t, c.env, testenv.Tool(t, "crane"), "auth", "login", c.host(), "-u", user, "-p", password)
	return c
}

// host is the registry as clients name it: HAProxy, by a name its
// certificate holds.
func (c *cluster) host() string {
	_, port, _ := strings.Cut(c.lb.Addr, ":")
	return "localhost:" + port
}

func writePEM(t *testing.T, out string, files ...string) {
	t.Helper()
	var b []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, data...)
	}
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeReplicaConfig writes r's config.yml: everything shared (bucket,
// Redis, token trust), nothing of its own but its ports.
func (c *cluster) writeReplicaConfig(r *replica, ca string) string {
	m := c.minio
	endpoint := m.Endpoint()
	if c.opts.s3Endpoint != nil {
		endpoint = c.opts.s3Endpoint(m)
	}
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
    rootdirectory: /ha
    chunksize: 5242880
    multipartcopychunksize: 5242880
    multipartcopythresholdsize: 5242880
%s  cache:
    blobdescriptor: redis
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  draintimeout: 5s
  debug:
    addr: 127.0.0.1:%d
redis:
  addr: %s
auth:
  token:
    realm: %s
    service: %s
    issuer: %s
    rootcertbundle: %s
health:
  storagedriver:
    enabled: true
    interval: 1s
    threshold: 1
`, m.AccessKey, m.SecretKey, m.Region, endpoint, m.Bucket, c.opts.s3Extra, r.addr, r.debugPort, c.redis.Addr,
		c.auth.Realm(), service, issuer, ca)
	p := filepath.Join(c.t.TempDir(), r.name+".yml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// start runs r and waits until its health endpoint says ready.
func (c *cluster) start(r *replica) {
	c.t.Helper()
	r.Process = testenv.Start(c.t, nil, c.bin, "registry", "serve", r.config)
	r.WaitHTTP(c.t, r.debugURL()+"/debug/health")
	testenv.Eventually(c.t, 20*time.Second, r.name+" healthy", func() bool { return c.healthStatus(r) == http.StatusOK })
}

func (c *cluster) healthStatus(r *replica) int {
	resp, err := http.Get(r.debugURL() + "/debug/health") //nolint:noctx // a test probe
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// token gets a bearer token for scope from the auth server.
func (c *cluster) token(scope string) string {
	c.t.Helper()
	u := c.auth.Realm() + "?service=" + url.QueryEscape(service) + "&scope=" + url.QueryEscape(scope)
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		c.t.Fatalf("token for %s: %d %v", scope, resp.StatusCode, err)
	}
	return body.Token
}

// response is what a raw request got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with a bearer token to base (a replica's
// http://addr or HAProxy's https://host) and reads the whole answer.
func (c *cluster) do(method, base, path, tok string, body []byte, hdr map[string]string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (c *cluster) mustDo(method, base, path, tok string, body []byte, hdr map[string]string, want int) response {
	c.t.Helper()
	r, err := c.do(method, base, path, tok, body, hdr)
	if err != nil {
		c.t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	if r.status != want {
		c.t.Fatalf("%s %s%s: %d %s, want %d", method, base, path, r.status, r.body, want)
	}
	return r
}

// storageCheck runs `gatehouse storage check --verify-digests` on the
// bucket; it must be clean.
func (c *cluster) storageCheck() {
	c.t.Helper()
	out, err := testenv.Run(c.t.Context(), nil, c.bin, "storage", "check", "--verify-digests", c.replicas[0].config)
	if err != nil {
		c.t.Fatalf("storage check: %v\n%s", err, out)
	}
}

// randomBytes returns n random bytes.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// multiLayerImage writes an OCI layout with layers gzip layers of size
// random bytes each under tag, and returns the manifest's digest and the
// layers' digests.
func multiLayerImage(t *testing.T, dir, tag string, layers, size int) (string, []string) {
	t.Helper()
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	put := func(b []byte) string {
		d := testenv.Digest(b)
		p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	var layerDescs []desc
	var diffIDs, digests []string
	for range layers {
		raw := randomBytes(t, size)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		d := put(gz.Bytes())
		digests = append(digests, d)
		diffIDs = append(diffIDs, testenv.Digest(raw))
		layerDescs = append(layerDescs, desc{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d, Size: gz.Len()})
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     testenv.MediaTypeOCIManifest,
		"config":        desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: put(config), Size: len(config)},
		"layers":        layerDescs,
	})
	md := put(manifest)
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     testenv.MediaTypeOCIIndex,
		"manifests": []desc{{MediaType: testenv.MediaTypeOCIManifest, Digest: md, Size: len(manifest),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": tag}}},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return md, digests
}

// kill ends r with SIGKILL and waits for it to be gone.
func kill(t *testing.T, r *replica) {
	t.Helper()
	if err := r.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, r.name+" to exit", r.Exited)
}
