//go:build integration

// Package seed_test runs the stack of the article the project started from
// (docker_auth with LDAP, registry:2 on MinIO with Redis, certificates of
// its own CA, the curl script), on Gatehouse, end to end and for real: its
// own config files (testdata, the endpoints pointed at the test's), OpenLDAP
// over LDAPS, MinIO, Redis, two `gatehouse registry serve` replicas and
// `gatehouse auth-server`, HAProxy in front, and the Docker engine, podman,
// skopeo and the seed's curl script as clients, all on loopback.
package seed_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/minio/minio-go/v7"
)

const (
	// frontHost is the seed's registry and token realm host. The test maps
	// it to ::1: the Docker engine treats names on 127.0.0.0/8 as insecure
	// registries (no TLS verification) but verifies [::1].
	frontHost = "coreos1.domain.com"
	// seedBucket is storage.s3.bucket in the seed's registry config.
	seedBucket = "docker"

	// The seed's directory layout, which testenv.StartSlapd reproduces.
	seedBindDN = "cn=proxy,ou=profile,dc=domain,dc=com"
	seedBase   = "o=company1.com,dc=domain,dc=com"

	// The directory's users: Ops (gidNumber 6000, ACL "*"), DevOps (7000,
	// ACL "pull") and one in neither group (no ACL entry matches).
	opsUser    = testenv.LDAPUserOps
	devopsUser = testenv.LDAPUserDevOps
	nobodyUser = testenv.LDAPUserNoGroup
)

// replicaHosts are the seed's other servers' names, one per replica:
// HAProxy checks each replica's certificate for its name.
var replicaHosts = []string{"coreos2.domain.com", "coreos3.domain.com"}

// replica is one `gatehouse registry serve` on the seed's config.
type replica struct {
	*testenv.Process
	host      string
	addr      string // 127.0.0.1:port, TLS
	debugPort int
	config    string
}

func (r *replica) debugURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/debug/health", r.debugPort)
}

// stack is the seed's deployment.
type stack struct {
	bin        string
	certDir    string // what `gatehouse certs init` wrote
	clientCA   string // a --cert-dir holding only ca.crt, for podman and skopeo
	caPEM      []byte
	ldap       *testenv.LDAP
	minio      *testenv.MinIO
	redis      *testenv.Redis
	auth       *testenv.Process
	authConfig string
	replicas   []*replica
	lb         *testenv.HAProxy
	hostPort   string // frontHost:port, the registry as clients name it (HAProxy)
	realm      string // the token realm, on frontHost too
}

// TestSeed is the seed's whole system end to end. See docs/migration.md,
// "The seed's stack, end to end", for what it proves.
func TestSeed(t *testing.T) {
	began := time.Now()
	s := startStack(t)
	t.Logf("stack up after %v: registry %s (HAProxy) -> %s %s, %s %s; realm %s",
		time.Since(began).Round(time.Millisecond), s.hostPort, s.replicas[0].host, s.replicas[0].addr,
		s.replicas[1].host, s.replicas[1].addr, s.realm)

	t.Run("config check", s.testConfigCheck)

	d := testenv.StartDockerd(t)
	// The engine verifies the registry's certificate: without the CA in
	// certs.d, login fails on it (so the TLS below is really checked).
	out, err := d.Run(t.Context(), s.ldap.UserPassword+"\n", "login", "-u", opsUser, "--password-stdin", s.hostPort)
	if err == nil || !strings.Contains(out, "x509") {
		t.Fatalf("docker login without the CA in certs.d: err %v, want an x509 error:\n%s", err, out)
	}
	testenv.TrustRegistryCA(t, s.hostPort, s.caPEM)
	t.Run("docker", func(t *testing.T) { s.testDocker(t, d, "alpine") })

	// Round robin: both replicas served the engine's requests.
	for _, r := range s.replicas {
		if !strings.Contains(r.Log(), "/v2/alpine/") {
			t.Errorf("replica %s served none of the engine's requests for alpine: HAProxy does not balance", r.host)
		}
	}

	killed, survivor := s.replicas[0], s.replicas[1]
	since := len(survivor.Log())
	if err := killed.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, killed.host+" to exit after SIGKILL", killed.Exited)
	t.Logf("killed the replica %s (SIGKILL); %s serves alone", killed.host, survivor.host)

	t.Run("docker after a replica was killed", func(t *testing.T) { s.testDocker(t, d, "hello-world-1.0") })
	t.Run("podman", s.testPodman)
	t.Run("skopeo", s.testSkopeo)
	t.Run("registry-curl.sh", func(t *testing.T) {
		s.testCurlScript(t, []string{"alpine", "hello-world-1.0", "podman/hello", "skopeo/hello"})
	})

	after := survivor.Log()[since:]
	for _, repo := range []string{"hello-world-1.0", "podman/hello", "skopeo/hello"} {
		if !strings.Contains(after, "/v2/"+repo+"/") {
			t.Errorf("the surviving replica %s logged no request for %s after the kill", survivor.host, repo)
		}
	}
	// The blob descriptor cache is the seed's Redis.
	if keys := s.redis.Keys("*"); len(keys) == 0 {
		t.Error("Redis holds no keys: the replicas did not use the seed's redis blob descriptor cache")
	}
	t.Logf("wall time %v", time.Since(began).Round(time.Millisecond))
}

// startStack starts everything the seed runs, on the test's config files.
func startStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{bin: testenv.Gatehouse(t), certDir: t.TempDir()}

	// Certificates: `gatehouse certs init` for the names in the seed's
	// cert.conf, instead of its openssl steps.
	hosts := altNames(t, readFixture(t, "cert.conf"))
	args := []string{"certs", "init", "--out", s.certDir}
	for _, h := range hosts {
		args = append(args, "--host", h)
	}
	testenv.MustRun(t, nil, s.bin, args...)
	s.checkCertificate(t, hosts)
	var err error
	if s.caPEM, err = os.ReadFile(filepath.Join(s.certDir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
	s.clientCA = t.TempDir()
	writeFile(t, filepath.Join(s.clientCA, "ca.crt"), string(s.caPEM))
	cert, key := filepath.Join(s.certDir, "server.crt"), filepath.Join(s.certDir, "server.key")

	testenv.MapHostIPv6Loopback(t, frontHost)

	s.ldap = testenv.StartSlapd(t)
	if s.ldap.BindDN != seedBindDN || s.ldap.Base != seedBase {
		t.Fatalf("testenv.StartSlapd's directory (bind DN %q, base %q) is no longer the seed's (%q, %q), which testdata/auth_config.yml names",
			s.ldap.BindDN, s.ldap.Base, seedBindDN, seedBase)
	}
	s.minio = testenv.StartMinIO(t)
	s.minio.NewBucket(t, seedBucket)
	s.redis = testenv.StartRedis(t)

	authPort := testenv.FreePortIPv6(t)
	authAddr := fmt.Sprintf("[::1]:%d", authPort)
	s.authConfig = render(t, "auth_config.yml", map[string]any{
		"AuthAddr": authAddr, "Cert": cert, "Key": key,
		"LDAPAddr": s.ldap.TLSAddr, "BindPasswordFile": s.ldap.BindPasswordFile,
	})
	s.auth = testenv.Start(t, nil, s.bin, "auth-server", "--log-format", "json", s.authConfig)
	s.auth.WaitTCP(t, authAddr)
	s.realm = fmt.Sprintf("https://%s:%d/auth", frontHost, authPort)

	var backends []testenv.HAProxyBackend
	for i, host := range replicaHosts {
		r := &replica{host: host, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), debugPort: testenv.FreePort(t)}
		r.config = render(t, fmt.Sprintf("docker-registry-config.yml#%d", i+1), map[string]any{
			"S3AccessKey": s.minio.AccessKey, "S3SecretKey": s.minio.SecretKey, "S3Endpoint": s.minio.Endpoint(),
			"Addr": r.addr, "Cert": cert, "Key": key, "DebugPort": r.debugPort,
			"RedisAddr": s.redis.Addr, "AuthPort": authPort,
		})
		r.Process = testenv.Start(t, nil, s.bin, "registry", "serve", r.config)
		s.replicas = append(s.replicas, r)
		backends = append(backends, testenv.HAProxyBackend{Name: strings.Split(host, ".")[0], Addr: r.addr, HealthPort: r.debugPort, VerifyHost: host})
	}
	for _, r := range s.replicas {
		r.WaitHTTP(t, r.debugURL())
		testenv.Eventually(t, 20*time.Second, r.host+" healthy", func() bool {
			resp, err := http.Get(r.debugURL()) //nolint:noctx // a readiness probe
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	pemFile := filepath.Join(t.TempDir(), "haproxy.pem")
	writeFile(t, pemFile, readFile(t, cert)+readFile(t, key))
	s.lb = testenv.StartHAProxy(t, backends, testenv.HAProxyOptions{
		Bind: fmt.Sprintf("[::1]:%d", testenv.FreePortIPv6(t)), PEM: pemFile, BackendCA: filepath.Join(s.certDir, "ca.crt"),
		// The seed's registry-curl.sh greps ^Www-Authenticate, but
		// HAProxy sends header names in lower case.
		HeaderCase: []string{"Www-Authenticate"},
	})
	_, port, _ := net.SplitHostPort(s.lb.Addr)
	s.hostPort = frontHost + ":" + port
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- auth server log:\n%s", tail(s.auth.Log(), 40))
			for _, r := range s.replicas {
				t.Logf("--- %s log:\n%s", r.host, tail(r.Log(), 40))
			}
			t.Logf("--- HAProxy log:\n%s", tail(s.lb.Log(), 20))
		}
	})
	return s
}

// altNames returns the DNS names of cert.conf's [alt_names] section.
func altNames(t *testing.T, conf string) []string {
	t.Helper()
	var names []string
	section := ""
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = strings.TrimSpace(strings.Trim(line, "[]"))
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && section == "alt_names" && strings.HasPrefix(strings.TrimSpace(k), "DNS.") {
			names = append(names, strings.TrimSpace(v))
		}
	}
	if !slices.Contains(names, frontHost) || len(names) != 4 {
		t.Fatalf("cert.conf's alt_names: %v, want the seed's four coreos names", names)
	}
	return names
}

// checkCertificate checks that certs init's server certificate holds
// exactly the seed's names and serves as the seed's did (TLS server and
// client, signed by the CA).
func (s *stack) checkCertificate(t *testing.T, hosts []string) {
	t.Helper()
	b := []byte(readFile(t, filepath.Join(s.certDir, "server.crt")))
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		t.Fatalf("server.crt holds %d certificates, want the server's and the CA's", len(certs))
	}
	leaf := certs[0]
	if !slices.Equal(leaf.DNSNames, hosts) {
		t.Errorf("server certificate names %v, want cert.conf's %v", leaf.DNSNames, hosts)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("server certificate usage %v, want serverAuth and clientAuth as in cert.conf", leaf.ExtKeyUsage)
	}
	if err := leaf.CheckSignatureFrom(certs[1]); err != nil {
		t.Errorf("server certificate not signed by the CA in server.crt: %v", err)
	}
}

// render fills in testdata/name (name#suffix: another copy of it) and
// writes it to the test's temp dir.
func render(t *testing.T, name string, values map[string]any) string {
	t.Helper()
	file, suffix, _ := strings.Cut(name, "#")
	tmpl, err := template.New(file).Option("missingkey=error").Parse(readFile(t, filepath.Join("testdata", file)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, values); err != nil {
		t.Fatalf("testdata/%s: %v", file, err)
	}
	dir := t.TempDir()
	if suffix != "" {
		dir = filepath.Join(dir, suffix)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, file)
	writeFile(t, out, b.String())
	return out
}

// testConfigCheck runs `gatehouse config check` on the test's files (clean)
// and on the seed's original auth_config.yml, which it refuses for the
// gidNumber match that docker_auth reads as "everyone may do everything".
func (s *stack) testConfigCheck(t *testing.T) {
	files := []string{s.authConfig}
	for _, r := range s.replicas {
		files = append(files, r.config)
	}
	out, err := testenv.Run(t.Context(), nil, s.bin, append([]string{"config", "check"}, files...)...)
	if err != nil {
		t.Errorf("gatehouse config check on the test's seed files: %v\n%s", err, out)
	}
	orig := filepath.Join("testdata", "original", "auth_config.yml")
	out, err = testenv.Run(t.Context(), nil, s.bin, "config", "check", orig)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("gatehouse config check on the seed's auth_config.yml: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{`acl.0.match: unknown key "gidNumber"`, "grants actions [\"*\"] to every user", `fix: match: {labels: {groups: "6000"}}`} {
		if !strings.Contains(out, want) {
			t.Errorf("gatehouse config check on the seed's auth_config.yml does not say %q:\n%s", want, out)
		}
	}
}

// testDocker is the seed's `docker login`, push and pull with the Docker
// engine verifying TLS: Ops pushes and pulls repo:latest, DevOps pulls it
// and is refused a push, a user in neither group is refused both.
func (s *stack) testDocker(t *testing.T, d *testenv.Dockerd, repo string) {
	ref := s.hostPort + "/" + repo + ":latest"
	im := testenv.NewImage(t, map[string]string{"etc/motd": "pushed by the Docker engine as " + repo + "\n"})
	archive := filepath.Join(t.TempDir(), "image.tar")
	im.WriteDockerArchive(t, archive, ref)
	d.Docker(t, "", "load", "-i", archive)
	login := func(user string) {
		t.Helper()
		out := d.Docker(t, s.ldap.UserPassword+"\n", "login", "-u", user, "--password-stdin", s.hostPort)
		if !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("docker login as %s: %s", user, out)
		}
	}

	login(opsUser)
	out := d.Docker(t, "", "push", ref)
	i := strings.Index(out, "digest: sha256:")
	if i < 0 {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	pushed := strings.Fields(out[i+len("digest: "):])[0]
	d.Docker(t, "", "rmi", ref)
	if out := d.Docker(t, "", "pull", ref); !strings.Contains(out, "Digest: "+pushed) {
		t.Errorf("docker pull as %s did not get the pushed digest %s:\n%s", opsUser, pushed, out)
	}
	s.wantTag(t, repo, "latest", true)
	d.Docker(t, "", "logout", s.hostPort)

	login(devopsUser)
	d.Docker(t, "", "rmi", ref)
	if out := d.Docker(t, "", "pull", ref); !strings.Contains(out, "Digest: "+pushed) {
		t.Errorf("docker pull as %s did not get the pushed digest %s:\n%s", devopsUser, pushed, out)
	}
	for _, target := range []string{repo + ":devops", "devops/" + repo + ":latest"} {
		d.Docker(t, "", "tag", ref, s.hostPort+"/"+target)
		out, err := d.Run(t.Context(), "", "push", s.hostPort+"/"+target)
		wantRefused(t, "docker push "+target+" as "+devopsUser, out, err)
		r, tag, _ := strings.Cut(target, ":")
		s.wantTag(t, r, tag, false)
	}
	d.Docker(t, "", "logout", s.hostPort)

	// Neither group: the directory knows the user, so login works (a
	// token with no access, as docker_auth gives), but nothing else.
	login(nobodyUser)
	d.Docker(t, "", "rmi", ref)
	out, err := d.Run(t.Context(), "", "pull", ref)
	wantRefused(t, "docker pull as "+nobodyUser, out, err)
	d.Docker(t, "", "load", "-i", archive)
	d.Docker(t, "", "tag", ref, s.hostPort+"/"+repo+":nobody")
	out, err = d.Run(t.Context(), "", "push", s.hostPort+"/"+repo+":nobody")
	wantRefused(t, "docker push as "+nobodyUser, out, err)
	s.wantTag(t, repo, "nobody", false)
	d.Docker(t, "", "logout", s.hostPort)
	// Leave the engine with no images of this repository.
	d.Docker(t, "", "rmi", ref, s.hostPort+"/"+repo+":nobody", s.hostPort+"/"+repo+":devops", s.hostPort+"/devops/"+repo+":latest")
}

// testPodman does the same with podman (image operations only: containers
// do not run here). It pushes an image first pulled from an OCI layout.
func (s *stack) testPodman(t *testing.T) {
	podman := testenv.Tool(t, "podman")
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage.conf")
	writeFile(t, storage, fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(dir, "run"), filepath.Join(dir, "root")))
	registries := filepath.Join(dir, "registries.conf")
	writeFile(t, registries, "unqualified-search-registries = []\n")
	base := []string{"CONTAINERS_STORAGE_CONF=" + storage, "CONTAINERS_REGISTRIES_CONF=" + registries, "TMPDIR=" + dir}
	// Keep podman's network config out of /etc/containers.
	flags := []string{"--network-config-dir", filepath.Join(dir, "networks")}
	envFor := func(user string) []string {
		auth := filepath.Join(dir, user+".json")
		writeFile(t, auth, "{}")
		return append([]string{"REGISTRY_AUTH_FILE=" + auth}, base...)
	}
	pm := func(env []string, stdin string, args ...string) (string, error) {
		return run(t.Context(), env, stdin, podman, append(slices.Clone(flags), args...)...)
	}
	must := func(env []string, stdin string, args ...string) string {
		t.Helper()
		out, err := pm(env, stdin, args...)
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	login := func(env []string, user string) {
		t.Helper()
		must(env, s.ldap.UserPassword+"\n", "login", "--cert-dir", s.clientCA, "-u", user, "--password-stdin", s.hostPort)
	}
	ops, devops, nobody := envFor(opsUser), envFor(devopsUser), envFor(nobodyUser)

	// podman names an image pulled from oci:DIR after DIR, which must be
	// lower case (test temp dirs are not).
	layout, err := os.MkdirTemp("", "gh-seed-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(layout) })
	testenv.NewImage(t, map[string]string{"etc/motd": "pushed by podman\n"}).WriteOCILayout(t, layout, "v1")
	ref := s.hostPort + "/podman/hello:v1"

	login(ops, opsUser)
	ids := strings.Fields(must(ops, "", "pull", "oci:"+layout+":v1"))
	if len(ids) == 0 {
		t.Fatal("podman pull printed no image ID")
	}
	must(ops, "", "tag", ids[len(ids)-1], ref)
	digestFile := filepath.Join(dir, "digest")
	must(ops, "", "push", "--cert-dir", s.clientCA, "--digestfile", digestFile, ref)
	pushed := strings.TrimSpace(readFile(t, digestFile))
	s.wantTag(t, "podman/hello", "v1", true)
	must(ops, "", "rmi", "--all", "--force")

	login(devops, devopsUser)
	must(devops, "", "pull", "--cert-dir", s.clientCA, ref)
	if got := strings.TrimSpace(must(devops, "", "image", "inspect", "--format", "{{.Digest}}", ref)); got != pushed {
		t.Errorf("podman pull as %s got %s, pushed %s", devopsUser, got, pushed)
	}
	out, err := pm(devops, "", "push", "--cert-dir", s.clientCA, ref, s.hostPort+"/podman/hello:devops")
	wantRefused(t, "podman push as "+devopsUser, out, err)
	s.wantTag(t, "podman/hello", "devops", false)
	must(devops, "", "rmi", "--all", "--force")

	login(nobody, nobodyUser)
	out, err = pm(nobody, "", "pull", "--cert-dir", s.clientCA, ref)
	wantRefused(t, "podman pull as "+nobodyUser, out, err)
}

// testSkopeo does the same with skopeo, from and to OCI layouts.
func (s *stack) testSkopeo(t *testing.T) {
	skopeo := testenv.Tool(t, "skopeo")
	dir := t.TempDir()
	im := testenv.NewImage(t, map[string]string{"etc/motd": "pushed by skopeo\n"})
	layout := filepath.Join(dir, "layout")
	im.WriteOCILayout(t, layout, "v1")
	ref := "docker://" + s.hostPort + "/skopeo/hello"
	authFile := func(user string) string {
		t.Helper()
		f := filepath.Join(dir, user+".json")
		out, err := run(t.Context(), nil, s.ldap.UserPassword+"\n", skopeo, "login", "--authfile", f, "--cert-dir", s.clientCA, "-u", user, "--password-stdin", s.hostPort)
		if err != nil {
			t.Fatalf("skopeo login as %s: %v\n%s", user, err, out)
		}
		return f
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(t.Context(), nil, "", skopeo, args...)
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	ops, devops, nobody := authFile(opsUser), authFile(devopsUser), authFile(nobodyUser)

	must("copy", "--authfile", ops, "--dest-cert-dir", s.clientCA, "oci:"+layout+":v1", ref+":v1")
	if got := strings.TrimSpace(must("inspect", "--authfile", devops, "--cert-dir", s.clientCA, "--format", "{{.Digest}}", ref+":v1")); got != im.Digest {
		t.Errorf("skopeo inspect as %s: digest %s, pushed %s", devopsUser, got, im.Digest)
	}
	pulled := filepath.Join(dir, "pulled")
	must("copy", "--authfile", devops, "--src-cert-dir", s.clientCA, ref+":v1", "oci:"+pulled+":v1")
	if _, err := os.Stat(filepath.Join(pulled, "blobs", "sha256", strings.TrimPrefix(im.LayerDigest, "sha256:"))); err != nil {
		t.Errorf("skopeo copy as %s: the pulled layout lacks the layer: %v", devopsUser, err)
	}
	out, err := run(t.Context(), nil, "", skopeo, "copy", "--authfile", devops, "--dest-cert-dir", s.clientCA, "oci:"+layout+":v1", ref+":devops")
	wantRefused(t, "skopeo copy to the registry as "+devopsUser, out, err)
	s.wantTag(t, "skopeo/hello", "devops", false)
	out, err = run(t.Context(), nil, "", skopeo, "inspect", "--authfile", nobody, "--cert-dir", s.clientCA, ref+":v1")
	wantRefused(t, "skopeo inspect as "+nobodyUser, out, err)
}

// testCurlScript runs the seed's registry-curl.sh with bash: the catalog
// by hand (challenge, token with Basic credentials, request with the
// token). Ops gets {"repositories":[...]}; DevOps has no catalog access.
func (s *stack) testCurlScript(t *testing.T, wantRepos []string) {
	testenv.Tool(t, "curl")
	testenv.Tool(t, "jq")
	bash := testenv.Tool(t, "bash")
	_, port, _ := net.SplitHostPort(s.lb.Addr)
	catalog := func(user string) string {
		t.Helper()
		script := render(t, "registry-curl.sh", map[string]any{"User": user, "Password": s.ldap.UserPassword, "Port": port})
		out, err := run(t.Context(), nil, "", bash, script)
		if err != nil {
			t.Fatalf("bash registry-curl.sh as %s: %v\n%s", user, err, out)
		}
		return out
	}
	out := catalog(opsUser)
	var got struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Repositories == nil {
		t.Fatalf("registry-curl.sh as %s printed %q, want {\"repositories\":[...]}", opsUser, out)
	}
	for _, repo := range wantRepos {
		if !slices.Contains(got.Repositories, repo) {
			t.Errorf("registry-curl.sh as %s: repositories %v lack %s", opsUser, got.Repositories, repo)
		}
	}
	t.Logf("registry-curl.sh as %s: %s", opsUser, strings.TrimSpace(out))
	// DevOps may pull, not list the catalog: the token carries no access
	// and the registry answers 401 again.
	if out := catalog(devopsUser); strings.Contains(out, "repositories") || !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("registry-curl.sh as %s printed %q, want an UNAUTHORIZED error", devopsUser, out)
	}
}

// wantTag checks the seed's bucket for repo:tag, in registry:2's layout
// under the seed's rootdirectory "/".
func (s *stack) wantTag(t *testing.T, repo, tag string, want bool) {
	t.Helper()
	key := "docker/registry/v2/repositories/" + repo + "/_manifests/tags/" + tag + "/current/link"
	_, err := s.minio.Client(t).StatObject(t.Context(), seedBucket, key, minio.StatObjectOptions{})
	switch {
	case want && err != nil:
		t.Errorf("bucket %s has no %s after the push: %v", seedBucket, key, err)
	case !want && err == nil:
		t.Errorf("bucket %s has %s although the push was refused", seedBucket, key)
	}
}

// wantRefused checks that a client failed because the registry or the
// token server refused access, and that its error says so.
func wantRefused(t *testing.T, what, out string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded, want it refused:\n%s", what, out)
		return
	}
	low := strings.ToLower(out)
	for _, w := range []string{"denied", "unauthorized", "insufficient_scope", "authentication required"} {
		if strings.Contains(low, w) {
			return
		}
	}
	t.Errorf("%s failed without saying it was refused (denied, unauthorized):\n%s", what, out)
}

// run runs a program with stdin (passwords go there, not into argv) and a
// two-minute timeout, returning its combined output.
func run(ctx context.Context, env []string, stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
