//go:build integration

// Package clients_test runs the registry clients people use (the Docker
// engine, skopeo, crane, oras, regctl, podman, Helm, cosign and the seed's
// curl script) against `gatehouse registry serve` over TLS with tokens from
// `gatehouse auth-server`, and checks that Gatehouse and distribution's
// registries read each other's storage.
package clients_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

const (
	issuer  = "Gatehouse clients issuer"
	service = "gatehouse-clients"
	// regHost is the registry's name, mapped to ::1 in /etc/hosts: the Docker
	// engine skips TLS verification (and falls back to plain HTTP) for
	// registries on 127.0.0.0/8, but verifies [::1]. Every client uses it,
	// so all of them go through the same verified TLS.
	regHost = "registry.gatehouse-clients.test"

	alice, alicePass = "alice", "alice-clients-pw" // may do everything
	bob, bobPass     = "bob", "bob-clients-pw"     // may only pull
)

// acl: alice everything (the catalog too); bob pull on repositories only.
const acl = `  - match: {account: "alice"}
    actions: ["*"]
    comment: alice pushes, pulls, deletes and lists the catalog
  - match: {account: "bob", type: "repository"}
    actions: ["pull"]
    comment: bob only pulls
`

// env is Gatehouse's registry over TLS on [::1] as regHost, trusting the
// auth server's tokens by the CA in its rootcertbundle.
type env struct {
	hostPort string // regHost:port, the registry as clients name it
	realm    string
	caFile   string
	caPEM    []byte
	certDir  string // a containers/image --cert-dir holding ca.crt
	chain    string
	key      string
	auth     *testenv.AuthServer
	reg      *testenv.Distribution
}

func setup(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("Gatehouse clients CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := tlsutil.GenerateServer(ca, caKey, []string{regHost, "localhost"}, []net.IP{net.IPv6loopback, net.IPv4(127, 0, 0, 1)}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{caFile: filepath.Join(dir, "ca.crt"), certDir: filepath.Join(dir, "certs.d"),
		chain: filepath.Join(dir, "server.crt"), key: filepath.Join(dir, "server.key"), caPEM: tlsutil.EncodeCertsPEM(ca)}
	must(t, os.MkdirAll(e.certDir, 0o700))
	for _, w := range []struct {
		path  string
		certs []*x509.Certificate
	}{{e.caFile, []*x509.Certificate{ca}}, {filepath.Join(e.certDir, "ca.crt"), []*x509.Certificate{ca}}, {e.chain, []*x509.Certificate{leaf, ca}}} {
		must(t, tlsutil.WriteCertPEM(w.path, w.certs...))
	}
	must(t, tlsutil.WriteKeyPEM(e.key, key))

	testenv.MapHostIPv6Loopback(t, regHost)
	authPort := testenv.FreePortIPv6(t)
	e.auth = testenv.StartAuthServer(t, testenv.AuthServerOptions{
		Addr: fmt.Sprintf("[::1]:%d", authPort), Cert: e.chain, Key: e.key, Issuer: issuer,
		Users: map[string]string{alice: alicePass, bob: bobPass}, ACL: acl,
	})
	e.realm = fmt.Sprintf("https://%s:%d/auth", regHost, authPort)
	regPort := testenv.FreePortIPv6(t)
	e.reg = testenv.StartDistribution(t, testenv.DistributionOptions{
		Program: testenv.RegistryGatehouse, Addr: fmt.Sprintf("[::1]:%d", regPort),
		TLSCert: e.chain, TLSKey: e.key,
		Token: &testenv.TokenAuth{Realm: e.realm, Service: service, Issuer: issuer, RootCertBundle: e.caFile},
	})
	e.hostPort = fmt.Sprintf("%s:%d", regHost, regPort)
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// image builds a test image unique to the running test and writes it as an
// OCI layout with tag v1.
func image(t *testing.T) (*testenv.Image, string) {
	t.Helper()
	im := testenv.NewImage(t, map[string]string{"clients/" + t.Name() + ".txt": "pushed by " + t.Name() + "\n"})
	layout := filepath.Join(t.TempDir(), "layout")
	im.WriteOCILayout(t, layout, "v1")
	return im, layout
}

// run runs a client and fails the test on error.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	return testenv.MustRun(t, env, name, args...)
}

// refused runs a client that must fail because the registry denied access,
// and checks that its error says so.
func refused(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := testenv.Run(ctx, env, name, args...)
	if err == nil {
		t.Fatalf("%s %s succeeded for a pull-only user:\n%s", filepath.Base(name), strings.Join(args, " "), out)
	}
	for _, line := range strings.Split(out, "\n") {
		if l := strings.ToLower(line); strings.Contains(l, "denied") || strings.Contains(l, "unauthorized") {
			t.Logf("%s refused the push: %s", filepath.Base(name), strings.TrimSpace(line))
			return
		}
	}
	t.Errorf("%s refused the push without saying denied or unauthorized:\n%s", filepath.Base(name), out)
}

// fails runs a client that must fail (e.g. reading something deleted).
func fails(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := testenv.Run(ctx, env, name, args...)
	if err == nil {
		t.Errorf("%s %s succeeded, want an error:\n%s", filepath.Base(name), strings.Join(args, " "), out)
	}
	return out
}

// TestClients runs every client against one Gatehouse registry: each logs
// in, pushes, pulls, lists tags and deletes where it can, and a pull-only
// user is refused a push.
func TestClients(t *testing.T) {
	e := setup(t)
	t.Run("crane", func(t *testing.T) { testCrane(t, e) })
	t.Run("skopeo", func(t *testing.T) { testSkopeo(t, e) })
	t.Run("oras", func(t *testing.T) { testOras(t, e) })
	t.Run("regctl", func(t *testing.T) { testRegctl(t, e) })
	t.Run("podman", func(t *testing.T) { testPodman(t, e) })
	t.Run("docker", func(t *testing.T) { testDocker(t, e) })
	t.Run("seed curl script", func(t *testing.T) { testCurlScript(t, e) })
}

func testCrane(t *testing.T, e *env) {
	crane := testenv.Tool(t, "crane")
	dir := t.TempDir()
	cfg := func(user string) []string {
		d := filepath.Join(dir, user)
		return []string{"DOCKER_CONFIG=" + d, "HOME=" + d, "SSL_CERT_FILE=" + e.caFile}
	}
	im, layout := image(t)
	a, b := cfg(alice), cfg(bob)
	run(t, a, crane, "auth", "login", e.hostPort, "-u", alice, "-p", alicePass)
	run(t, b, crane, "auth", "login", e.hostPort, "-u", bob, "-p", bobPass)
	repo := e.hostPort + "/clients/crane"
	run(t, a, crane, "push", layout, repo+":v1")
	if got := strings.TrimSpace(run(t, a, crane, "digest", repo+":v1")); got != im.Digest {
		t.Errorf("digest after push %s, want %s", got, im.Digest)
	}
	if got := strings.TrimSpace(run(t, b, crane, "ls", repo)); got != "v1" {
		t.Errorf("crane ls = %q, want v1", got)
	}
	pulled := filepath.Join(dir, "pulled")
	run(t, b, crane, "pull", "--format", "oci", repo+":v1", pulled)
	if _, err := os.Stat(filepath.Join(pulled, "blobs", "sha256", strings.TrimPrefix(im.LayerDigest, "sha256:"))); err != nil {
		t.Errorf("pulled layout lacks the layer: %v", err)
	}
	refused(t, b, crane, "push", layout, repo+":bob")
	run(t, a, crane, "delete", repo+"@"+im.Digest)
	fails(t, a, crane, "digest", repo+":v1")
}

func testSkopeo(t *testing.T, e *env) {
	skopeo := testenv.Tool(t, "skopeo")
	dir := t.TempDir()
	authA, authB := filepath.Join(dir, "alice.json"), filepath.Join(dir, "bob.json")
	im, layout := image(t)
	run(t, nil, skopeo, "login", "--authfile", authA, "--cert-dir", e.certDir, "-u", alice, "-p", alicePass, e.hostPort)
	run(t, nil, skopeo, "login", "--authfile", authB, "--cert-dir", e.certDir, "-u", bob, "-p", bobPass, e.hostPort)
	ref := "docker://" + e.hostPort + "/clients/skopeo"
	run(t, nil, skopeo, "copy", "--authfile", authA, "--dest-cert-dir", e.certDir, "oci:"+layout+":v1", ref+":v1")
	if got := strings.TrimSpace(run(t, nil, skopeo, "inspect", "--authfile", authB, "--cert-dir", e.certDir, "--format", "{{.Digest}}", ref+":v1")); got != im.Digest {
		t.Errorf("digest after push %s, want %s", got, im.Digest)
	}
	if out := run(t, nil, skopeo, "list-tags", "--authfile", authB, "--cert-dir", e.certDir, ref); !strings.Contains(out, `"v1"`) {
		t.Errorf("list-tags lacks v1:\n%s", out)
	}
	pulled := filepath.Join(dir, "pulled")
	run(t, nil, skopeo, "copy", "--authfile", authB, "--src-cert-dir", e.certDir, ref+":v1", "oci:"+pulled+":v1")
	if _, err := os.Stat(filepath.Join(pulled, "blobs", "sha256", strings.TrimPrefix(im.LayerDigest, "sha256:"))); err != nil {
		t.Errorf("pulled layout lacks the layer: %v", err)
	}
	refused(t, nil, skopeo, "copy", "--authfile", authB, "--dest-cert-dir", e.certDir, "oci:"+layout+":v1", ref+":bob")
	run(t, nil, skopeo, "delete", "--authfile", authA, "--cert-dir", e.certDir, ref+":v1")
	fails(t, nil, skopeo, "inspect", "--authfile", authA, "--cert-dir", e.certDir, ref+":v1")
}

func testOras(t *testing.T, e *env) {
	oras := testenv.Tool(t, "oras")
	dir := t.TempDir()
	cfgA, cfgB := filepath.Join(dir, "alice.json"), filepath.Join(dir, "bob.json")
	env := []string{"HOME=" + dir}
	im, layout := image(t)
	run(t, env, oras, "login", "--registry-config", cfgA, "--ca-file", e.caFile, "-u", alice, "-p", alicePass, e.hostPort)
	run(t, env, oras, "login", "--registry-config", cfgB, "--ca-file", e.caFile, "-u", bob, "-p", bobPass, e.hostPort)
	repo := e.hostPort + "/clients/oras"
	run(t, env, oras, "cp", "--from-oci-layout", layout+":v1", "--to-registry-config", cfgA, "--to-ca-file", e.caFile, repo+":v1")
	if got := strings.TrimSpace(run(t, env, oras, "resolve", "--registry-config", cfgB, "--ca-file", e.caFile, repo+":v1")); got != im.Digest {
		t.Errorf("digest after push %s, want %s", got, im.Digest)
	}
	if got := strings.TrimSpace(run(t, env, oras, "repo", "tags", "--registry-config", cfgB, "--ca-file", e.caFile, repo)); got != "v1" {
		t.Errorf("repo tags = %q, want v1", got)
	}
	pulled := filepath.Join(dir, "pulled")
	run(t, env, oras, "cp", "--from-registry-config", cfgB, "--from-ca-file", e.caFile, repo+":v1", "--to-oci-layout", pulled+":v1")
	if _, err := os.Stat(filepath.Join(pulled, "blobs", "sha256", strings.TrimPrefix(im.LayerDigest, "sha256:"))); err != nil {
		t.Errorf("pulled layout lacks the layer: %v", err)
	}
	artifact := filepath.Join(dir, "note.txt")
	must(t, os.WriteFile(artifact, []byte("bob was here\n"), 0o600))
	refused(t, []string{"HOME=" + dir}, oras, "push", "--registry-config", cfgB, "--ca-file", e.caFile, "--disable-path-validation", repo+":bob", artifact+":text/plain")
	run(t, env, oras, "manifest", "delete", "--force", "--registry-config", cfgA, "--ca-file", e.caFile, repo+":v1")
	fails(t, env, oras, "resolve", "--registry-config", cfgA, "--ca-file", e.caFile, repo+":v1")
}

func testRegctl(t *testing.T, e *env) {
	regctl := testenv.Tool(t, "regctl")
	dir := t.TempDir()
	cfg := func(user, pass string) []string {
		env := []string{"REGCTL_CONFIG=" + filepath.Join(dir, user+".json"), "HOME=" + dir}
		run(t, env, regctl, "registry", "set", e.hostPort, "--skip-check", "--cacert", string(e.caPEM))
		run(t, env, regctl, "registry", "login", e.hostPort, "-u", user, "-p", pass)
		return env
	}
	a, b := cfg(alice, alicePass), cfg(bob, bobPass)
	im, layout := image(t)
	repo := e.hostPort + "/clients/regctl"
	run(t, a, regctl, "image", "copy", "ocidir://"+layout+":v1", repo+":v1")
	run(t, a, regctl, "image", "copy", repo+":v1", repo+":v2")
	if got := strings.TrimSpace(run(t, b, regctl, "image", "digest", repo+":v1")); got != im.Digest {
		t.Errorf("digest after push %s, want %s", got, im.Digest)
	}
	if got := strings.Fields(run(t, b, regctl, "tag", "ls", repo)); strings.Join(got, ",") != "v1,v2" {
		t.Errorf("tag ls = %v, want [v1 v2]", got)
	}
	export := filepath.Join(dir, "export.tar")
	run(t, b, regctl, "image", "export", repo+":v1", export)
	if out := run(t, nil, "tar", "-tf", export); !strings.Contains(out, strings.TrimPrefix(im.LayerDigest, "sha256:")) {
		t.Errorf("exported tarball lacks the layer:\n%s", out)
	}
	refused(t, b, regctl, "image", "copy", "ocidir://"+layout+":v1", repo+":bob")
	// regctl deletes a single tag; the other one and the manifest stay.
	run(t, a, regctl, "tag", "delete", repo+":v2")
	if got := strings.Fields(run(t, b, regctl, "tag", "ls", repo)); strings.Join(got, ",") != "v1" {
		t.Errorf("tag ls after deleting v2 = %v, want [v1]", got)
	}
	run(t, a, regctl, "manifest", "delete", repo+"@"+im.Digest)
	fails(t, a, regctl, "image", "digest", repo+":v1")
}

func testPodman(t *testing.T, e *env) {
	podman := testenv.Tool(t, "podman")
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage.conf")
	must(t, os.WriteFile(storage, []byte(fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(dir, "run"), filepath.Join(dir, "root"))), 0o600))
	registries := filepath.Join(dir, "registries.conf")
	must(t, os.WriteFile(registries, []byte("unqualified-search-registries = []\n"), 0o600))
	authA, authB := filepath.Join(dir, "alice.json"), filepath.Join(dir, "bob.json")
	for _, f := range []string{authA, authB} {
		must(t, os.WriteFile(f, []byte("{}"), 0o600))
	}
	// Keep podman's network config out of /etc/containers.
	pf := []string{"--network-config-dir", filepath.Join(dir, "networks")}
	pm := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		return run(t, env, podman, append(pf, args...)...)
	}
	base := []string{"CONTAINERS_STORAGE_CONF=" + storage, "CONTAINERS_REGISTRIES_CONF=" + registries, "TMPDIR=" + dir}
	a := append([]string{"REGISTRY_AUTH_FILE=" + authA}, base...)
	b := append([]string{"REGISTRY_AUTH_FILE=" + authB}, base...)
	// podman search has no --cert-dir: trust the CA the way an operator would.
	testenv.TrustRegistryCAIn(t, testenv.ContainersCertsDir, e.hostPort, e.caPEM)

	// podman names an image pulled from oci:DIR after DIR, which must then
	// be lower-case (test temp dirs are not).
	layout, err := os.MkdirTemp("", "gh-podman-layout-")
	must(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(layout) })
	im := testenv.NewImage(t, map[string]string{"clients/podman.txt": "pushed by podman\n"})
	im.WriteOCILayout(t, layout, "v1")
	ref := e.hostPort + "/clients/podman:v1"
	pm(t, a, "login", "-u", alice, "-p", alicePass, e.hostPort)
	pm(t, b, "login", "-u", bob, "-p", bobPass, e.hostPort)
	out := strings.Fields(pm(t, a, "pull", "oci:"+layout+":v1"))
	if len(out) == 0 {
		t.Fatal("podman pull printed no image ID")
	}
	pm(t, a, "tag", out[len(out)-1], ref)
	digestFile := filepath.Join(dir, "digest")
	pm(t, a, "push", "--digestfile", digestFile, ref)
	pushed, err := os.ReadFile(digestFile)
	must(t, err)
	if out := pm(t, b, "search", "--list-tags", e.hostPort+"/clients/podman"); !strings.Contains(out, "v1") {
		t.Errorf("search --list-tags lacks v1:\n%s", out)
	}
	pm(t, a, "rmi", "--all", "--force")
	pm(t, b, "pull", ref)
	if got := strings.TrimSpace(pm(t, b, "image", "inspect", "--format", "{{.Digest}}", ref)); got != strings.TrimSpace(string(pushed)) {
		t.Errorf("pulled digest %s, pushed %s", got, pushed)
	}
	refused(t, b, podman, pf[0], pf[1], "push", ref, e.hostPort+"/clients/podman:bob")
	// podman cannot delete from a registry (no such command).
}

func testDocker(t *testing.T, e *env) {
	testenv.TrustRegistryCA(t, e.hostPort, e.caPEM)
	d := testenv.StartDockerd(t)
	ref := e.hostPort + "/clients/docker:v1"
	im := testenv.NewImage(t, map[string]string{"clients/docker.txt": "pushed by the docker engine\n"})
	archive := filepath.Join(t.TempDir(), "image.tar")
	im.WriteDockerArchive(t, archive, ref)
	d.Docker(t, "", "load", "-i", archive)
	if out := d.Docker(t, alicePass+"\n", "login", "-u", alice, "--password-stdin", e.hostPort); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %s", out)
	}
	out := d.Docker(t, "", "push", ref)
	i := strings.Index(out, "digest: ")
	if i < 0 {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	pushed := strings.Fields(out[i+len("digest: "):])[0]
	d.Docker(t, "", "rmi", ref)
	d.Docker(t, "", "logout", e.hostPort)
	if out := d.Docker(t, bobPass+"\n", "login", "-u", bob, "--password-stdin", e.hostPort); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login as %s: %s", bob, out)
	}
	if out := d.Docker(t, "", "pull", ref); !strings.Contains(out, "Digest: "+pushed) {
		t.Errorf("docker pull did not get the pushed digest %s:\n%s", pushed, out)
	}
	d.Docker(t, "", "tag", ref, e.hostPort+"/clients/docker:bob")
	out, err := d.Run(context.Background(), "", "push", e.hostPort+"/clients/docker:bob")
	if err == nil {
		t.Fatalf("docker push by a pull-only user succeeded:\n%s", out)
	}
	if l := strings.ToLower(out); !strings.Contains(l, "denied") && !strings.Contains(l, "unauthorized") {
		t.Errorf("docker push refusal does not say denied or unauthorized:\n%s", out)
	}
	t.Logf("docker refused the push: %s", strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))
	// The engine has no commands to list a registry's tags or delete them.
}

// seedScript is the seed's registry-curl.sh flow with the host, the
// credentials and the CA as arguments: ask for the catalog, read realm,
// service and scope from the challenge, get a token with Basic
// credentials, and ask again with the token.
const seedScript = `set -eu
user="$1"; password="$2"; URL="https://$3/v2/_catalog"; ca="$4"
auth=$(curl --include -s --cacert "$ca" "$URL" | grep -i '^Www-Authenticate')
realm=$(echo "$auth" | grep -o 'realm="[^"]*"' | cut -d '"' -f 2)
service=$(echo "$auth" | grep -o 'service="[^"]*"' | cut -d '"' -f 2 | sed 's, ,%20,')
scope=$(echo "$auth" | grep -o 'scope="[^"]*' | cut -d '"' -f 2)
token=$(curl --user "$user:$password" -s --cacert "$ca" "$realm?service=$service&scope=$scope" | jq -r .token)
curl -s --cacert "$ca" -H "Authorization: Bearer $token" "$URL"
`

func testCurlScript(t *testing.T, e *env) {
	crane := testenv.Tool(t, "crane")
	testenv.Tool(t, "curl")
	testenv.Tool(t, "jq")
	dir := t.TempDir()
	_, layout := image(t)
	env := []string{"DOCKER_CONFIG=" + dir, "HOME=" + dir, "SSL_CERT_FILE=" + e.caFile}
	run(t, env, crane, "auth", "login", e.hostPort, "-u", alice, "-p", alicePass)
	run(t, env, crane, "push", layout, e.hostPort+"/clients/curl:v1")
	script := filepath.Join(dir, "registry-curl.sh")
	must(t, os.WriteFile(script, []byte(seedScript), 0o600))
	out := run(t, nil, "bash", script, alice, alicePass, e.hostPort, e.caFile)
	if !strings.Contains(out, `"repositories"`) || !strings.Contains(out, `"clients/curl"`) {
		t.Errorf("catalog through the seed's flow = %s, want clients/curl in repositories", out)
	}
	// bob may not list the catalog: the token carries no access, so the
	// registry answers 401 again.
	if out := run(t, nil, "bash", script, bob, bobPass, e.hostPort, e.caFile); strings.Contains(out, `"repositories"`) {
		t.Errorf("bob listed the catalog: %s", out)
	}
}
