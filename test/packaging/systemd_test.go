//go:build integration

package packaging

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// installUnderPrefix runs `make install PREFIX=<temp>/usr/local`: the
// installed units then name a binary that exists (systemd-analyze verify
// refuses an ExecStart= whose program is missing) without touching this
// machine's /usr/local. It returns the prefix.
func installUnderPrefix(t *testing.T) string {
	t.Helper()
	makeBuild(t)
	prefix := filepath.Join(t.TempDir(), "usr", "local")
	runIn(t, repoRoot(), nil, append(docCommand(t, cmdMakeInstall), "PREFIX="+prefix)...)
	return prefix
}

// analyze runs systemd-analyze with the installed units first in the unit
// search path (the trailing colon keeps systemd's own folders, for the
// targets the units refer to) and returns its output and error.
func analyze(t *testing.T, unitDir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Tool(t, "systemd-analyze"), args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+unitDir+":")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSystemdUnitsVerify: the installed units load without a single
// complaint from systemd-analyze verify (what `systemctl daemon-reload`
// would load), also with deploy.md's --public-host drop-in, and systemd's
// own exposure rating of each is "OK" (2.0 or less out of 10).
func TestSystemdUnitsVerify(t *testing.T) {
	prefix := installUnderPrefix(t)
	unitDir := filepath.Join(prefix, "lib", "systemd", "system")
	for name := range unitExecStart {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(unitDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := parseUnit(t, string(b)).get("Service", "ExecStart"), strings.Replace(unitExecStart[name], "/usr/local", prefix, 1); got != want {
				t.Errorf("installed ExecStart = %q, want %q", got, want)
			}
			out, err := analyze(t, unitDir, "verify", name)
			if err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
			}
			out, err = analyze(t, unitDir, "security", "--offline=true", "--threshold=20", name)
			if err != nil || !regexp.MustCompile(`Overall exposure level for `+regexp.QuoteMeta(name)+`: [0-9.]+ OK`).MatchString(out) {
				t.Errorf("systemd-analyze security %s: not rated OK at 2.0 or less: %v\n%s", name, err, out)
			}
		})
	}

	// deploy.md's drop-in for gatehouse.service.
	var dropIn []string
	for _, block := range codeBlocks(readRepoFile(t, "docs/deploy.md"), "ini") {
		dropIn = block
	}
	text := strings.Join(dropIn, "\n") + "\n"
	if !strings.Contains(text, "ExecStart=/usr/local/bin/gatehouse serve --public-host ") {
		t.Fatalf("deploy.md's drop-in is not the --public-host one:\n%s", text)
	}
	dir := filepath.Join(unitDir, "gatehouse.service.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	text = strings.ReplaceAll(text, "/usr/local/bin/gatehouse", filepath.Join(prefix, "bin", "gatehouse"))
	if err := os.WriteFile(filepath.Join(dir, "override.conf"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := analyze(t, unitDir, "verify", "gatehouse.service")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify gatehouse.service with deploy.md's drop-in: %v\n%s", err, out)
	}
	// The drop-in's command is one serve accepts.
	args := strings.Fields(strings.TrimPrefix(strings.Split(strings.TrimSpace(text), "\n")[2], "ExecStart="))
	if out, err := testenv.Run(context.Background(), nil, args[0], append(args[1:], "--help")...); err != nil {
		t.Errorf("%s --help: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestSystemdUnitsRun runs each installed unit's command the way systemd
// would (its ExecStart=, Environment= and WorkingDirectory=) and reloads it
// with its ExecReload=. No test machine runs systemd as PID 1, so
// `systemctl daemon-reload`, `enable --now` and `reload` from deploy.md
// cannot run here: TestSystemdUnitsVerify loads the units as daemon-reload
// would, and this test does what enable --now and reload then do. Where it
// must differ from the unit: it runs as root, not as gatehouse; the data
// directory is a temporary one instead of /var/lib/gatehouse, and the
// configs of the two drop-in units are the ones serve generated there
// instead of files in /etc/gatehouse; the ports are free ones instead of
// 5000 and 5001, which other tests on this machine may hold.
func TestSystemdUnitsRun(t *testing.T) {
	prefix := installUnderPrefix(t)
	unitDir := filepath.Join(prefix, "lib", "systemd", "system")
	data := filepath.Join(t.TempDir(), "gatehouse")
	regAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	authAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))

	load := func(name string) unit {
		b, err := os.ReadFile(filepath.Join(unitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return parseUnit(t, string(b))
	}
	// start runs the unit's ExecStart= (plus extra arguments) with its
	// Environment=, paths under /var/lib/gatehouse and /etc/gatehouse moved
	// to data, and NOTIFY_SOCKET as systemd sets it for Type=notify. It
	// returns when READY=1 arrives, and checks that the server answers
	// then, without waiting any longer.
	start := func(t *testing.T, u unit, extra ...string) (*testenv.Process, *notifySocket) {
		if got := u.get("Service", "Type"); got != "notify" {
			t.Fatalf("Type=%s, want notify", got)
		}
		ns := listenNotify(t)
		env := []string{"NOTIFY_SOCKET=" + ns.path}
		for _, e := range u["Service"]["Environment"] {
			env = append(env, strings.ReplaceAll(e, "/var/lib/gatehouse", data))
		}
		args := strings.Fields(strings.ReplaceAll(u.get("Service", "ExecStart"), "/etc/gatehouse", data))
		p := testenv.Start(t, env, args[0], append(args[1:], extra...)...)
		ns.expect(t, p, "READY=1")
		url := "https://" + regAddrOrAuth(args, regAddr, authAddr) + "/"
		resp, err := insecureClient.Get(url)
		if err != nil {
			t.Fatalf("READY=1 was sent, but %s does not answer: %v", url, err)
		}
		_ = resp.Body.Close()
		return p, ns
	}
	// stop ends p as systemctl stop does (SIGTERM) and expects STOPPING=1.
	stop := func(t *testing.T, p *testenv.Process, ns *notifySocket) {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		ns.expect(t, p, "STOPPING=1")
		p.Stop()
	}
	// reload runs the unit's ExecReload= with $MAINPID, expects n reloads
	// announced (RELOADING=1 with MONOTONIC_USEC, then READY=1) and waits
	// until the process logs that each of its n servers reloaded on SIGHUP.
	reload := func(t *testing.T, u unit, p *testenv.Process, ns *notifySocket, n int) {
		args := strings.Fields(strings.ReplaceAll(u.get("Service", "ExecReload"), "$MAINPID", strconv.Itoa(p.Cmd.Process.Pid)))
		testenv.MustRun(t, nil, args[0], args[1:]...)
		var reloading, ready int
		for reloading < n || ready < n {
			switch msg := ns.next(t, p); {
			case strings.HasPrefix(msg, "RELOADING=1\nMONOTONIC_USEC="):
				reloading++
			case msg == "READY=1" && ready < reloading:
				ready++
			default:
				t.Fatalf("service manager got %q during a reload (%d RELOADING, %d READY so far)", msg, reloading, ready)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(p.Log(), "msg=reloaded reason=SIGHUP") < n {
			if p.Exited() || time.Now().After(deadline) {
				t.Fatalf("%s: not %d reloads after %s:\n%s", u.get("Unit", "Description"), n, strings.Join(args, " "), p.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if strings.Contains(p.Log(), "reload failed") {
			t.Fatalf("a reload failed:\n%s", p.Log())
		}
		if p.Exited() {
			t.Fatalf("exited on reload:\n%s", p.Log())
		}
	}

	t.Run("gatehouse.service", func(t *testing.T) {
		u := load("gatehouse.service")
		p, ns := start(t, u, "--registry-addr", regAddr, "--auth-addr", authAddr)
		// READY=1 waits for both servers: the auth server answers too.
		if resp, err := insecureClient.Get("https://" + authAddr + "/healthz"); err != nil {
			t.Fatalf("READY=1 was sent before the auth server answered: %v", err)
		} else {
			_ = resp.Body.Close()
		}
		for _, f := range []string{"admin-password", "auth_config.yml", "config.yml", "certs/ca.crt", "registry"} {
			if _, err := os.Stat(filepath.Join(data, f)); err != nil {
				t.Errorf("serve with the unit's environment made no %s in GATEHOUSE_DATA_DIR: %v", f, err)
			}
		}
		reload(t, u, p, ns, 2)
		stop(t, p, ns)
	})
	// The drop-in units, on the configs serve generated.
	t.Run("gatehouse-auth.service", func(t *testing.T) {
		u := load("gatehouse-auth.service")
		p, ns := start(t, u)
		reload(t, u, p, ns, 1)
		stop(t, p, ns)
	})
	t.Run("gatehouse-registry.service", func(t *testing.T) {
		u := load("gatehouse-registry.service")
		p, ns := start(t, u)
		reload(t, u, p, ns, 1)
		stop(t, p, ns)
	})
}

// regAddrOrAuth picks the address a unit's command listens on first: the
// registry's, except for the auth server alone.
func regAddrOrAuth(args []string, regAddr, authAddr string) string {
	for _, a := range args {
		if a == "auth-server" {
			return authAddr
		}
	}
	return regAddr
}

var insecureClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // reachability only; the certificate is the test's own
}}

// notifySocket is the service manager's end of sd_notify: a unix
// datagram socket whose path goes into NOTIFY_SOCKET.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &notifySocket{path: path, conn: conn}
}

// next returns the next message, failing the test after 30 s or if p
// exits first.
func (ns *notifySocket) next(t *testing.T, p *testenv.Process) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		_ = ns.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := ns.conn.Read(buf)
		if err == nil {
			return string(buf[:n])
		}
		if p.Exited() {
			t.Fatalf("exited before notifying the service manager:\n%s", p.Log())
		}
	}
	t.Fatalf("no message to the service manager within 30 s:\n%s", p.Log())
	return ""
}

// expect fails the test unless the next message is want.
func (ns *notifySocket) expect(t *testing.T, p *testenv.Process, want string) {
	t.Helper()
	if got := ns.next(t, p); got != want {
		t.Fatalf("service manager got %q, want %q", got, want)
	}
}
