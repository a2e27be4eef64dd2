//go:build integration

// Package conformance runs the OCI distribution-spec conformance suite
// against `gatehouse registry serve`: without auth, with htpasswd Basic
// auth, with bearer tokens from `gatehouse auth-server`, and with bearer
// tokens on S3 storage (MinIO) with the Redis cache (mode s3-token), each
// with the default (1.1) profile and the dev profile. Every run must have no
// failures and no skips. Reports land in results/conformance/.
package conformance

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

const (
	testUser     = "conformance"
	testPassword = "conformance-password-1"
)

// mode is one way of running the registry.
type mode struct {
	name  string
	start func(t *testing.T) (reg *testenv.Registry, creds bool)
}

func TestConformance(t *testing.T) {
	suite := testenv.Tool(t, "conformance.test")
	modes := []mode{
		{"noauth", func(t *testing.T) (*testenv.Registry, bool) { return testenv.StartRegistry(t, true, ""), false }},
		{"htpasswd", startHtpasswd},
		{"token", startToken},
		{"s3-token", startS3Token},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			reg, creds := m.start(t)
			for _, profile := range []string{"1.1", "dev"} {
				t.Run(profile, func(t *testing.T) {
					runSuite(t, suite, reg, creds, m.name, profile)
				})
			}
		})
	}
}

func startHtpasswd(t *testing.T) (*testenv.Registry, bool) {
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(testUser+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return testenv.StartRegistry(t, true, fmt.Sprintf("auth:\n  htpasswd:\n    realm: gatehouse-conformance\n    path: %s\n", path)), true
}

// startToken runs gatehouse auth-server (granting the test user everything,
// the catalog included) and a registry trusting its tokens.
func startToken(t *testing.T) (*testenv.Registry, bool) {
	return startTokenWith(t, "")
}

// startS3Token is startToken with the registry's storage on a MinIO
// bucket (and its blob descriptor cache on Redis), as replicas run.
func startS3Token(t *testing.T) (*testenv.Registry, bool) {
	m := testenv.StartMinIO(t)
	r := testenv.StartRedis(t)
	return startTokenWith(t, fmt.Sprintf(`storage:
  s3:
    accesskey: %s
    secretkey: %s
    region: %s
    regionendpoint: %s
    bucket: %s
    secure: false
    rootdirectory: /conformance
  cache:
    blobdescriptor: redis
  delete:
    enabled: true
  redirect:
    disable: true
redis:
  addr: %s
`, m.AccessKey, m.SecretKey, m.Region, m.Endpoint(), m.Bucket, r.Addr))
}

// startTokenWith is startToken with storage (a storage: section, and
// maybe redis:) replacing the filesystem default when not empty.
func startTokenWith(t *testing.T, storage string) (*testenv.Registry, bool) {
	bin := testenv.Gatehouse(t)
	dir := t.TempDir()
	testenv.MustRun(t, nil, bin, "certs", "init", "--out", dir, "--host", "localhost", "--ip", "127.0.0.1")
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	authCfg := fmt.Sprintf(`server:
  addr: "127.0.0.1:%d"
token:
  issuer: "gatehouse-conformance-issuer"
  expiration: 900
  certificate: %q
  key: %q
users:
  %q:
    password: %q
acl:
  - match: {account: %q}
    actions: ["*"]
    comment: "the conformance user may do everything, the catalog included"
`, port, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), testUser, string(hash), testUser)
	authPath := filepath.Join(dir, "auth_config.yml")
	if err := os.WriteFile(authPath, []byte(authCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	as := testenv.Start(t, nil, bin, "auth-server", authPath)
	as.WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", port))
	// The realm names localhost, not 127.0.0.1: clients must follow it by name.
	start := testenv.StartRegistry
	if storage != "" {
		start = func(t testing.TB, _ bool, extra string) *testenv.Registry {
			return testenv.StartRegistryStorage(t, storage, extra)
		}
	}
	reg := start(t, true, fmt.Sprintf(`auth:
  token:
    realm: "http://localhost:%d/auth"
    service: "gatehouse-conformance"
    issuer: "gatehouse-conformance-issuer"
    rootcertbundle: %q
    # The suite checks anonymous mounts; under token auth they are opt-in.
    anonymousmount: true
`, port, filepath.Join(dir, "ca.crt")))
	return reg, true
}

var statusRe = regexp.MustCompile(`<testcase\b[^>]*\bstatus="([a-z]+)"`)

func runSuite(t *testing.T, suite string, reg *testenv.Registry, creds bool, modeName, profile string) {
	results := t.TempDir()
	work := t.TempDir()
	run := randomHex(4)
	env := []string{
		"OCI_REGISTRY=" + reg.Addr,
		"OCI_TLS=disabled",
		fmt.Sprintf("OCI_REPO1=gatehouse-%s-%s/repo1", run, strings.ReplaceAll(profile, ".", "")),
		fmt.Sprintf("OCI_REPO2=gatehouse-%s-%s/repo2", run, strings.ReplaceAll(profile, ".", "")),
		"OCI_RESULTS_DIR=" + results,
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_LOG=warn",
	}
	if profile != "1.1" {
		env = append(env, "OCI_VERSION="+profile)
	}
	if creds {
		env = append(env, "OCI_USERNAME="+testUser, "OCI_PASSWORD="+testPassword)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite, "-test.v")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()

	dest := filepath.Join(testenv.RepoRoot(), "results", "conformance", modeName+"-"+profile)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"junit.xml", "report.html", "results.yaml"} {
		if data, err := os.ReadFile(filepath.Join(results, f)); err == nil {
			if err := os.WriteFile(filepath.Join(dest, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		} else if f != "results.yaml" {
			t.Errorf("the suite wrote no %s: %v\nstdout tail:\n%s\nstderr tail:\n%s", f, err, tail(string(out), 30), tail(stderr.String(), 30))
		}
	}
	junit, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("no junit.xml (suite error %v)", runErr)
	}
	counts := map[string]int{}
	for _, m := range statusRe.FindAllSubmatch(junit, -1) {
		counts[string(m[1])]++
	}
	t.Logf("%s %s: %d passed, %d failed, %d skipped, %d errors (reports in %s)",
		modeName, profile, counts["passed"], counts["failure"], counts["skipped"], counts["error"], dest)
	if counts["failure"] != 0 || counts["skipped"] != 0 || counts["error"] != 0 {
		t.Errorf("conformance %s/%s: %d failed, %d skipped, %d errors; want none", modeName, profile, counts["failure"], counts["skipped"], counts["error"])
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		shown := 0
		for sc.Scan() && shown < 40 {
			if strings.Contains(sc.Text(), "failed test") || strings.Contains(sc.Text(), "skip") {
				t.Log(sc.Text())
				shown++
			}
		}
	}
	// The default profile has ~690 leaf tests and dev ~790; far fewer means
	// the suite did not really run.
	if counts["passed"] < 600 {
		t.Errorf("only %d tests passed; the suite did not run fully (exit: %v)\n%s", counts["passed"], runErr, tail(stderr.String(), 20))
	}
	if runErr != nil && counts["failure"] == 0 {
		t.Errorf("the suite exited with %v but reported no failures\n%s", runErr, tail(stderr.String(), 20))
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
