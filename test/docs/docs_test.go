//go:build integration

package docs

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// remoteHost stands for registry.example.com, the docs' other-machine
// name. It is mapped to ::1 in /etc/hosts: the Docker engine checks the
// certificate of a registry there, but not of one on 127.0.0.0/8.
const remoteHost = "registry.gatehouse-docs.test"

// instance is a `gatehouse serve` started for the docs, in dir (the folder
// holding gatehouse-data/, where the blocks run).
type instance struct {
	dir               string
	regPort, authPort int
	proc              *testenv.Process
	host              string // where it listens: 127.0.0.1 or ::1
	dataDir, authFile string
	authURL           string
	adminPasswordFile string
	trustCA           string
}

// startServe runs `gatehouse serve ARGS` (ARGS from a page) in a folder
// of its own. Only the listen addresses are added: the ports must be
// free ones, and the metrics listeners must not collide with another
// instance.
func startServe(t *testing.T, args []string, onIPv6 bool) *instance {
	t.Helper()
	in := &instance{dir: t.TempDir(), host: "127.0.0.1"}
	free := testenv.FreePort
	if onIPv6 {
		in.host, free = "::1", testenv.FreePortIPv6
	}
	in.regPort, in.authPort = free(t), free(t)
	in.dataDir = filepath.Join(in.dir, "gatehouse-data")
	listen := func(port int) string { return fmt.Sprintf("[%s]:%d", in.host, port) }
	if !onIPv6 {
		listen = func(port int) string { return fmt.Sprintf("%s:%d", in.host, port) }
	}
	full := append(append([]string{}, args...),
		"--data-dir", in.dataDir,
		"--registry-addr", listen(in.regPort), "--auth-addr", listen(in.authPort),
		"--debug-addr", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"--auth-metrics-addr", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	in.proc = testenv.Start(t, nil, testenv.Gatehouse(t), full...)
	in.proc.WaitHTTP(t, "https://"+listen(in.regPort)+"/v2/")
	in.authURL = "https://" + listen(in.authPort)
	in.proc.WaitHTTP(t, in.authURL+"/healthz")
	in.authFile = filepath.Join(in.dataDir, "auth_config.yml")
	in.adminPasswordFile = filepath.Join(in.dataDir, "admin-password")
	in.trustCA = filepath.Join(in.dataDir, "trust", "ca.crt")
	return in
}

// runner runs blocks with the clients on PATH and their state in a home
// folder of the test's: the machine's own configuration is not touched,
// except what a block itself does as root (the Docker engine's certs.d).
type runner struct {
	env []string
}

// d may be nil for blocks that need no Docker engine.
func newRunner(t *testing.T, d *testenv.Dockerd) *runner {
	t.Helper()
	base := t.TempDir()
	bin := filepath.Join(base, "bin")
	home := filepath.Join(base, "home")
	for _, dir := range []string{bin, home} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"gatehouse": testenv.Gatehouse(t)}
	var dockerEnv []string
	if d != nil {
		links["docker"] = d.CLI()
		dockerEnv = d.Env()
	}
	for _, tool := range []string{"crane", "oras", "regctl", "skopeo", "podman", "helm", "cosign"} {
		links[tool] = testenv.Tool(t, tool)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The tests run as root, where sudo is a no-op (and often not
	// installed).
	if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte("#!/bin/sh\nexec \"$@\"\n"), 0o700); err != nil { //nolint:gosec // a script of the test's own
		t.Fatal(err)
	}
	// podman: storage, registries and network config of the test's own.
	storage := filepath.Join(base, "storage.conf")
	must(t, os.WriteFile(storage, []byte(fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n",
		filepath.Join(base, "run"), filepath.Join(base, "root"))), 0o600))
	registries := filepath.Join(base, "registries.conf")
	must(t, os.WriteFile(registries, []byte("unqualified-search-registries = []\n"), 0o600))
	containers := filepath.Join(base, "containers.conf")
	must(t, os.WriteFile(containers, []byte(fmt.Sprintf("[network]\nnetwork_config_dir = %q\n", filepath.Join(base, "networks"))), 0o600))
	env := append(dockerEnv,
		"PATH="+bin+":"+os.Getenv("PATH"),
		"HOME="+home,
		"TMPDIR="+base,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR="+filepath.Join(base, "run"),
		"REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"),
		"CONTAINERS_STORAGE_CONF="+storage,
		"CONTAINERS_REGISTRIES_CONF="+registries,
		"CONTAINERS_CONF="+containers,
		"SSL_CERT_FILE=", // a block sets it where the page says so
	)
	return &runner{env: env}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// substitute applies what must differ from the page (ports, the other
// machine's name). Each replacement must apply: a page that no longer
// says what the test replaces fails here rather than run against
// something else. Nothing of the page's own addresses may be left.
func substitute(t *testing.T, b block, repl ...string) string {
	t.Helper()
	text := b.text
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(text, repl[i]) {
			t.Fatalf("%s:%d: block %q no longer contains %q, which the test replaces: update test/docs", b.page, b.line, b.name, repl[i])
		}
		text = strings.ReplaceAll(text, repl[i], repl[i+1])
	}
	for _, left := range []string{":5000", ":5001", "registry.example.com"} {
		if strings.Contains(text, left) {
			t.Fatalf("%s:%d: block %q uses %q, which the test does not replace: update test/docs", b.page, b.line, b.name, left)
		}
	}
	return text
}

// run runs a block's text with bash -eu -o pipefail in dir, echoing each
// command to the log, and fails the test with the output when a command
// fails.
func (r *runner) run(t *testing.T, b block, dir, text string) string {
	t.Helper()
	out, err := r.exec(t, b, dir, "set -eux -o pipefail\n"+text)
	if err != nil {
		t.Fatalf("%s:%d: block %q failed: %v\n%s", b.page, b.line, b.name, err, out)
	}
	t.Logf("%s:%d: block %q:\n%s", b.page, b.line, b.name, out)
	return out
}

// serveArgs returns the arguments of a block that starts gatehouse serve
// (one line, `gatehouse serve ...`).
func serveArgs(t *testing.T, b block, text string) []string {
	t.Helper()
	f := strings.Fields(text)
	if len(f) < 2 || f[0] != "gatehouse" || f[1] != "serve" || strings.Count(strings.TrimSpace(text), "\n") > 0 {
		t.Fatalf("%s:%d: block %q should be the one line `gatehouse serve [flags]`, is %q", b.page, b.line, b.name, text)
	}
	return f[1:]
}

// makeRunServes checks that `make run` runs `gatehouse serve` with no
// flags, after building it: what the README's first block promises.
func makeRunServes(t *testing.T) {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var target string
	var recipe []string
	for sc.Scan() {
		line := sc.Text()
		if m := regexp.MustCompile(`^([a-z-]+):\s*(.*?)\s*(##.*)?$`).FindStringSubmatch(line); m != nil {
			target = m[1]
			if target == "run" && !strings.Contains(" "+m[2]+" ", " build ") {
				t.Errorf("make run does not build first: prerequisites %q", m[2])
			}
			continue
		}
		if target == "run" && strings.HasPrefix(line, "\t") {
			recipe = append(recipe, strings.TrimSpace(line))
		}
	}
	if len(recipe) != 1 || recipe[0] != "./bin/gatehouse serve" {
		t.Fatalf("make run's recipe is %q, want ./bin/gatehouse serve (the README's test starts exactly that)", recipe)
	}
}

// TestDocumentedCommands runs the tested blocks of README.md and
// docs/serve.md, each page against a `gatehouse serve` of its own and all
// through one Docker engine.
func TestDocumentedCommands(t *testing.T) {
	blocks := loadBlocks(t)
	// Before the engine starts: Go's resolver, the engine's, looks at a
	// changed /etc/hosts only every few seconds.
	testenv.MapHostIPv6Loopback(t, remoteHost)
	d := testenv.StartDockerd(t)
	r := newRunner(t, d)

	t.Run("README", func(t *testing.T) {
		run := blocks["readme-run"]
		if strings.TrimSpace(run.text) != "make run" {
			t.Fatalf("%s:%d: block readme-run is %q; the test starts what `make run` runs", run.page, run.line, run.text)
		}
		makeRunServes(t)
		in := startServe(t, []string{"serve"}, false)
		b := blocks["readme-push-pull"]
		r.run(t, b, in.dir, substitute(t, b, "localhost:5000", fmt.Sprintf("localhost:%d", in.regPort)))
	})

	t.Run("serve.md on this machine", func(t *testing.T) {
		in := startServe(t, []string{"serve"}, false)
		// The first start prints what the page shows, in the data
		// directory the test gives it.
		first := blocks["serve-first-start"]
		cmds, shown := parseConsole(substitute(t, first, "/srv/gatehouse-data", in.dataDir))
		if !slices.Equal(cmds, []string{"gatehouse serve"}) {
			t.Fatalf("%s:%d: block serve-first-start runs %q; the test starts gatehouse serve", first.page, first.line, cmds)
		}
		wantLines(t, first, in.proc.Log(), shown)
		reg := fmt.Sprintf("localhost:%d", in.regPort)
		for _, name := range []string{"serve-docker", "serve-crane", "serve-skopeo", "serve-podman", "serve-oras", "serve-regctl"} {
			b := blocks[name]
			r.run(t, b, in.dir, substitute(t, b, "localhost:5000", reg))
		}
		b := blocks["serve-token"]
		out := r.run(t, b, in.dir, substitute(t, b, "localhost:5001", fmt.Sprintf("localhost:%d", in.authPort)))
		if !strings.Contains(out, `"sub": "admin"`) || !strings.Contains(out, `"hello"`) {
			t.Errorf("gatehouse token printed no token for admin with the hello scope:\n%s", out)
		}
	})

	t.Run("serve.md from another machine", func(t *testing.T) {
		start := blocks["serve-remote-start"]
		in := startServe(t, serveArgs(t, start, substitute(t, start, "registry.example.com", remoteHost)), true)
		hostPort := fmt.Sprintf("%s:%d", remoteHost, in.regPort)
		// The block puts the CA where the engine looks; it goes when the
		// test ends.
		certsDir := filepath.Join(testenv.DockerCertsDir, hostPort)
		if _, err := os.Stat(certsDir); err == nil {
			t.Fatalf("%s exists already: another test uses %s", certsDir, hostPort)
		}
		_, err := os.Stat(testenv.DockerCertsDir)
		createdCertsDir := os.IsNotExist(err)
		t.Cleanup(func() {
			if err := os.RemoveAll(certsDir); err != nil {
				t.Errorf("remove %s: %v", certsDir, err)
			}
			if createdCertsDir {
				_ = os.Remove(testenv.DockerCertsDir) // only if empty
			}
		})
		b := blocks["serve-remote-docker"]
		r.run(t, b, in.dir, substitute(t, b, "registry.example.com:5000", hostPort))
	})
}

// TestDockerSeesRefusals: the token server's refusals reach a Docker user
// in the engine's words (unauthorized, toomanyrequests), never as "error
// parsing HTTP ... response body".
func TestDockerSeesRefusals(t *testing.T) {
	testenv.MapHostIPv6Loopback(t, remoteHost) // before the engine starts, as above
	in := startServe(t, []string{"serve", "--public-host", remoteHost}, true)
	hostPort := fmt.Sprintf("%s:%d", remoteHost, in.regPort)
	ca, err := os.ReadFile(in.trustCA)
	must(t, err)
	testenv.TrustRegistryCA(t, hostPort, ca)
	d := testenv.StartDockerd(t)

	// A second account, dave, who may do everything; the auth server
	// reloads its file on change.
	const davePW = "dave-docs-pw"
	hash, err := bcrypt.GenerateFromPassword([]byte(davePW), bcrypt.DefaultCost)
	must(t, err)
	cfg, err := os.ReadFile(in.authFile)
	must(t, err)
	withDave := strings.Replace(string(cfg), "\nusers:\n", fmt.Sprintf("\nusers:\n  \"dave\":\n    password: %q\n", hash), 1)
	withDave = strings.Replace(withDave, "\nacl:\n", "\nacl:\n  - match: {account: \"dave\"}\n    actions: [\"*\"]\n", 1)
	must(t, os.WriteFile(in.authFile, []byte(withDave), 0o600))
	client := trustingClient(t, ca)
	waitForLogin(t, client, in, "dave", davePW, http.StatusOK)

	parseError := regexp.MustCompile(`(?i)error parsing HTTP|invalid character`)

	t.Run("wrong passwords, then too many", func(t *testing.T) {
		var last string
		for i := 0; i < 20; i++ {
			out, err := d.Run(context.Background(), "not-the-password\n", "login", "-u", "admin", "--password-stdin", hostPort)
			if err == nil {
				t.Fatalf("docker login with a wrong password succeeded:\n%s", out)
			}
			if parseError.MatchString(out) {
				t.Fatalf("attempt %d: the engine could not read the refusal:\n%s", i+1, out)
			}
			last = out
			if strings.Contains(out, "toomanyrequests") {
				if !strings.Contains(out, "Too many failed logins") {
					t.Errorf("the refusal lacks the server's message:\n%s", out)
				}
				t.Logf("attempt %d: %s", i+1, strings.TrimSpace(out))
				return
			}
			if !strings.Contains(out, "unauthorized: Auth failed.") {
				t.Errorf("attempt %d: a wrong password reads %q, want unauthorized: Auth failed.", i+1, strings.TrimSpace(out))
			}
		}
		t.Fatalf("20 wrong passwords and no toomanyrequests; last:\n%s", last)
	})

	t.Run("refresh after the account is removed", func(t *testing.T) {
		if out := d.Docker(t, davePW+"\n", "login", "-u", "dave", "--password-stdin", hostPort); !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("docker login: %s", out)
		}
		// The engine logs in with a refresh token (identity token) from now on.
		stored, err := os.ReadFile(filepath.Join(d.ConfigDir, "config.json"))
		must(t, err)
		if !strings.Contains(string(stored), "identitytoken") {
			t.Fatalf("docker login stored no identity token, so no refresh would be tried:\n%s", stored)
		}
		must(t, os.WriteFile(in.authFile, cfg, 0o600)) // dave is gone
		waitForLogin(t, client, in, "dave", davePW, http.StatusUnauthorized)
		out, err := d.Run(context.Background(), "", "pull", hostPort+"/hello:v1")
		if err == nil {
			t.Fatalf("pull with a removed account's refresh token succeeded:\n%s", out)
		}
		if parseError.MatchString(out) || !strings.Contains(out, "unauthorized: the account no longer exists; log in again") {
			t.Fatalf("the engine says %q, want unauthorized: the account no longer exists; log in again", strings.TrimSpace(out))
		}
		t.Logf("docker pull: %s", strings.TrimSpace(out))
	})
}

// waitForLogin waits until user's login answers want (the auth server
// reloads its file in the background).
func waitForLogin(t *testing.T, client *http.Client, in *instance, user, password string, want int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("the login of %s to answer %d", user, want), func() bool {
		req, err := http.NewRequest(http.MethodGet, in.authURL+"/auth?service=gatehouse&account="+url.QueryEscape(user), nil)
		must(t, err)
		req.SetBasicAuth(user, password)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == want
	})
}

// trustingClient is an HTTP client that trusts the CA in caPEM.
func trustingClient(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the trust CA holds no certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// runFailing runs a block that the page shows failing (a check that
// reports problems): it must exit non-zero, and its output is returned.
func (r *runner) runFailing(t *testing.T, b block, dir, text string) string {
	t.Helper()
	out, err := r.exec(t, b, dir, "set -u -o pipefail\n"+text)
	if err == nil {
		t.Fatalf("%s:%d: block %q succeeded; the page shows it failing:\n%s", b.page, b.line, b.name, out)
	}
	t.Logf("%s:%d: block %q (exit status %v, as the page shows):\n%s", b.page, b.line, b.name, err, out)
	return out
}

// runConsole runs the commands of a console block ($ lines, with their
// continuation lines) in dir and returns their output and the output
// lines the page shows. A command's exit status does not stop the
// others: the page shows what it prints either way.
func (r *runner) runConsole(t *testing.T, b block, dir, prelude, text string) (out string, shown []string) {
	t.Helper()
	cmds, shown := parseConsole(text)
	if len(cmds) == 0 {
		t.Fatalf("%s:%d: console block %q has no $ command", b.page, b.line, b.name)
	}
	out, err := r.exec(t, b, dir, "set -u\n"+prelude+strings.Join(cmds, "\n")+"\n")
	t.Logf("%s:%d: block %q (exit status %v):\n%s", b.page, b.line, b.name, err, out)
	return out, shown
}

// exec runs script with bash in dir and returns its output and exit error.
func (r *runner) exec(t *testing.T, b block, dir, script string) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), b.name+".sh")
	must(t, os.WriteFile(file, []byte(script), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", file)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), r.env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s:%d: block %q did not finish: %v\n%s", b.page, b.line, b.name, ctx.Err(), out)
	}
	return string(out), err
}

// parseConsole splits a console block into its commands (a `$ ` line and
// the lines a trailing backslash continues it on) and the output lines.
func parseConsole(text string) (cmds, output []string) {
	continued := false
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		switch {
		case continued:
			cmds[len(cmds)-1] += "\n" + line
		case strings.HasPrefix(line, "$ "):
			cmds = append(cmds, strings.TrimPrefix(line, "$ "))
		default:
			output = append(output, line)
			continue
		}
		continued = strings.HasSuffix(line, `\`)
	}
	return cmds, output
}

// wantLines checks that the lines a page shows appear in out as whole
// lines, in that order (other lines may come between them).
func wantLines(t *testing.T, b block, out string, shown []string) {
	t.Helper()
	got := strings.Split(out, "\n")
	i := 0
	for _, want := range shown {
		for i < len(got) && strings.TrimRight(got[i], " ") != want {
			i++
		}
		if i == len(got) {
			t.Errorf("%s:%d: block %q: the page shows the line\n\t%s\nbut the command did not print it (in this order); it printed:\n%s", b.page, b.line, b.name, want, out)
			return
		}
		i++
	}
}

// copyFile copies a file of the repository into dir under name.
func copyFile(t *testing.T, repoPath, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), repoPath))
	must(t, err)
	dst := filepath.Join(dir, name)
	must(t, os.WriteFile(dst, data, 0o600))
	return dst
}

// pageFence returns the first block of lang on page whose text starts
// with prefix.
func pageFence(t *testing.T, page, lang, prefix string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), page))
	must(t, err)
	in := false
	var body strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```"+lang:
			in = true
			body.Reset()
		case in && strings.TrimSpace(line) == "```":
			if strings.HasPrefix(body.String(), prefix) {
				return body.String()
			}
			in = false
		case in:
			body.WriteString(line + "\n")
		}
	}
	t.Fatalf("%s has no ```%s block starting with %q", page, lang, prefix)
	return ""
}

// startSplit starts a drop-in command of a page (the one line `gatehouse
// COMMAND... FILE`) with FILE taken from dir.
func startSplit(t *testing.T, b block, dir string) *testenv.Process {
	t.Helper()
	f := strings.Fields(b.text)
	if len(f) < 3 || f[0] != "gatehouse" || strings.Count(strings.TrimSpace(b.text), "\n") > 0 {
		t.Fatalf("%s:%d: block %q should be the one line `gatehouse COMMAND FILE`, is %q", b.page, b.line, b.name, b.text)
	}
	args := f[1:]
	args[len(args)-1] = filepath.Join(dir, args[len(args)-1])
	return testenv.Start(t, nil, testenv.Gatehouse(t), args...)
}

// The seed's files as docker_auth and registry:2 read them: what
// migration.md's first step checks.
const (
	seedAuthConfig     = "test/seed/testdata/original/auth_config.yml"
	seedRegistryConfig = "test/seed/testdata/original/docker-registry-config.yml"
)

// TestOperatorCommands runs the tested blocks of the pages an operator
// follows step by step: certificates, migration, doctor and
// troubleshooting, and the ACL and config checks. None needs a Docker
// engine.
func TestOperatorCommands(t *testing.T) {
	blocks := loadBlocks(t)
	bin := t.TempDir()
	must(t, os.Symlink(testenv.Gatehouse(t), filepath.Join(bin, "gatehouse")))
	r := &runner{env: []string{"PATH=" + bin + ":" + os.Getenv("PATH")}}

	t.Run("certificates.md", func(t *testing.T) {
		dir := t.TempDir()
		b := blocks["certs-init"]
		r.run(t, b, dir, b.text)
		for file, mode := range map[string]os.FileMode{
			"certs/ca.crt": 0, "certs/ca.key": 0o600, "certs/server.crt": 0, "certs/server.key": 0o600,
		} {
			fi, err := os.Stat(filepath.Join(dir, file))
			if err != nil {
				t.Errorf("%s:%d: the page says certs init writes %s: %v", b.page, b.line, file, err)
				continue
			}
			if mode != 0 && fi.Mode().Perm() != mode {
				t.Errorf("%s has mode %v, the page says %v", file, fi.Mode().Perm(), mode)
			}
		}
		b = blocks["certs-seed"]
		r.run(t, b, dir, b.text)
		if _, err := os.Stat(filepath.Join(dir, "ssl", "server.p12")); err != nil {
			t.Errorf("%s:%d: --pkcs12 wrote no ssl/server.p12: %v", b.page, b.line, err)
		}
		b = blocks["certs-verify"]
		if out := r.run(t, b, dir, b.text); !strings.Contains(out, "ssl/server.crt: OK") {
			t.Errorf("%s:%d: openssl verify did not say ssl/server.crt: OK:\n%s", b.page, b.line, out)
		}
	})

	t.Run("auth-config.md", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, seedAuthConfig, dir, "auth_config.yml")
		b := blocks["auth-config-check"]
		out, shown := r.runConsole(t, b, dir, "", b.text)
		wantLines(t, b, out, shown)
	})

	t.Run("acl.md", func(t *testing.T) {
		// The page's example list alone, as the page says.
		dir := t.TempDir()
		acl := pageFence(t, "docs/acl.md", "yaml", "acl:\n")
		must(t, os.WriteFile(filepath.Join(dir, "auth_config.yml"), []byte(acl), 0o600))
		b := blocks["acl-check"]
		out, shown := r.runConsole(t, b, dir, "", b.text)
		wantLines(t, b, out, shown)
	})

	t.Run("troubleshooting.md", func(t *testing.T) {
		// The reference auth_config.yml of docs/examples, where alice is a
		// logged-in user like any other.
		dir := t.TempDir()
		copyFile(t, "docs/examples/auth_config.yml", dir, "auth_config.yml")
		b := blocks["troubleshooting-acl-check"]
		out := r.run(t, b, dir, b.text)
		// "It prints the granted actions and the rule (index and comment) that decided."
		if !regexp.MustCompile(`(?m)^repository:team/app:pull,push  granted \[pull\]  by rule #\d+ "[^"]+" \(acl\[\d+\]\)$`).MatchString(out) {
			t.Errorf("%s:%d: acl check printed no granted actions with the deciding rule:\n%s", b.page, b.line, out)
		}
	})

	t.Run("migration.md", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, seedAuthConfig, dir, "auth_config.yml")
		copyFile(t, seedRegistryConfig, dir, "config.yml")
		b := blocks["migration-check"]
		out := strings.Join(strings.Fields(r.runFailing(t, b, dir, b.text)), " ")
		shown := strings.Join(strings.Fields(b.output), " ")
		if shown == "" || !strings.Contains(out, shown) {
			t.Fatalf("%s:%d: config check did not print what the page shows:\n%s\nit printed:\n%s", b.page, b.line, shown, out)
		}
		// Apply the fix the message gives, as the page says to.
		fix := regexp.MustCompile(`\(fix: (match: \{labels: \{groups: "6000"\}\})`).FindStringSubmatch(shown)
		if fix == nil {
			t.Fatalf("the message the page shows has no fix of the form match: {labels: {groups: \"6000\"}}: %s", shown)
		}
		path := filepath.Join(dir, "auth_config.yml")
		cfg, err := os.ReadFile(path)
		must(t, err)
		const broken = `match: {"gidNumber": "6000"}`
		if !strings.Contains(string(cfg), broken) {
			t.Fatalf("%s no longer holds %s", seedAuthConfig, broken)
		}
		must(t, os.WriteFile(path, []byte(strings.Replace(string(cfg), broken, fix[1], 1)), 0o600))
		b = blocks["migration-acl"]
		out = r.run(t, b, dir, b.text)
		var results []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "repository:") {
				results = append(results, line)
			}
		}
		// The seed's one rule, fixed: usera (6000) may do anything, userb
		// (7000) nothing.
		if len(results) != 2 || !strings.HasPrefix(results[0], "repository:team/app:push,pull  granted [pull,push]  by rule #1") ||
			!strings.HasPrefix(results[1], "repository:team/app:push,pull  denied") {
			t.Errorf("%s:%d: acl check after the fix printed %q, want usera granted [pull,push] by rule #1 and userb denied", b.page, b.line, results)
		}

		// Steps 2 and 3 on the files gatehouse serve writes (docker_auth's
		// and distribution's formats), once serve has stopped.
		in := startServe(t, []string{"serve"}, false)
		in.proc.Stop()
		pw, err := os.ReadFile(in.adminPasswordFile)
		must(t, err)
		ca, err := os.ReadFile(in.trustCA)
		must(t, err)
		auth := startSplit(t, blocks["migration-auth-server"], in.dataDir)
		auth.WaitHTTP(t, in.authURL+"/healthz")
		waitForLogin(t, trustingClient(t, ca), in, "admin", strings.TrimSpace(string(pw)), http.StatusOK)
		reg := startSplit(t, blocks["migration-registry"], in.dataDir)
		regURL := fmt.Sprintf("https://%s:%d/v2/", in.host, in.regPort)
		reg.WaitHTTP(t, regURL)
		resp, err := trustingClient(t, ca).Get(regURL)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="https://localhost:`) {
			t.Errorf("GET /v2/ of gatehouse registry serve: %d %q, want 401 with a Bearer challenge naming the auth server", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("auth-server.md", func(t *testing.T) {
		// In the data folder of a running gatehouse serve; the test
		// writes alice's password file.
		in := startServe(t, []string{"serve"}, false)
		const alicePW = "alice-docs-password"
		must(t, os.WriteFile(filepath.Join(in.dataDir, "alice-password"), []byte(alicePW+"\n"), 0o600))
		b := blocks["users-add"]
		out, shown := r.runConsole(t, b, in.dataDir, "", b.text)
		wantLines(t, b, out, shown)
		ca, err := os.ReadFile(in.trustCA)
		must(t, err)
		waitForLogin(t, trustingClient(t, ca), in, "alice", alicePW, http.StatusOK)
	})

	t.Run("doctor.md", func(t *testing.T) {
		// The healthy sample, against gatehouse serve: its registry
		// address, account and CA file replaced, its password in $PW.
		in := startServe(t, []string{"serve"}, false)
		b := blocks["doctor-sample"]
		text := substitute(t, b, "localhost:44001", fmt.Sprintf("localhost:%d", in.regPort),
			"-u alice", "-u admin", "--ca-file ca.crt", "--ca-file gatehouse-data/trust/ca.crt")
		out, shown := r.runConsole(t, b, in.dir, "PW=$(head -n 1 gatehouse-data/admin-password)\n", text)
		// The details name the sample's own CA, ports and dates; the
		// checks, their order and their verdicts must be the page's.
		verdicts := func(lines []string) []string {
			var v []string
			for _, l := range lines {
				f := strings.Fields(l)
				switch {
				case len(f) >= 2 && (f[0] == "ok" || f[0] == "FAIL" || f[0] == "skip"):
					v = append(v, f[0]+" "+f[1])
				case strings.TrimSpace(l) == "all checks passed":
					v = append(v, l)
				}
			}
			return v
		}
		got, want := verdicts(strings.Split(out, "\n")), verdicts(shown)
		if len(want) != 10 || !slices.Equal(got, want) {
			t.Errorf("%s:%d: gatehouse doctor printed the checks %q, the page shows %q", b.page, b.line, got, want)
		}
	})
}
