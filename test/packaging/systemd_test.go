//go:build integration

package packaging

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	// to data.
	start := func(t *testing.T, u unit, extra ...string) *testenv.Process {
		var env []string
		for _, e := range u["Service"]["Environment"] {
			env = append(env, strings.ReplaceAll(e, "/var/lib/gatehouse", data))
		}
		args := strings.Fields(strings.ReplaceAll(u.get("Service", "ExecStart"), "/etc/gatehouse", data))
		p := testenv.Start(t, env, args[0], append(args[1:], extra...)...)
		p.WaitHTTP(t, "https://"+regAddrOrAuth(args, regAddr, authAddr)+"/")
		return p
	}
	// reload runs the unit's ExecReload= with $MAINPID and waits until the
	// process logs that each of its n servers reloaded on SIGHUP.
	reload := func(t *testing.T, u unit, p *testenv.Process, n int) {
		args := strings.Fields(strings.ReplaceAll(u.get("Service", "ExecReload"), "$MAINPID", strconv.Itoa(p.Cmd.Process.Pid)))
		testenv.MustRun(t, nil, args[0], args[1:]...)
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
		p := start(t, u, "--registry-addr", regAddr, "--auth-addr", authAddr)
		p.WaitHTTP(t, "https://"+authAddr+"/healthz")
		for _, f := range []string{"admin-password", "auth_config.yml", "config.yml", "certs/ca.crt", "registry"} {
			if _, err := os.Stat(filepath.Join(data, f)); err != nil {
				t.Errorf("serve with the unit's environment made no %s in GATEHOUSE_DATA_DIR: %v", f, err)
			}
		}
		reload(t, u, p, 2)
		p.Stop()
	})
	// The drop-in units, on the configs serve generated.
	t.Run("gatehouse-auth.service", func(t *testing.T) {
		u := load("gatehouse-auth.service")
		p := start(t, u)
		reload(t, u, p, 1)
		p.Stop()
	})
	t.Run("gatehouse-registry.service", func(t *testing.T) {
		u := load("gatehouse-registry.service")
		p := start(t, u)
		reload(t, u, p, 1)
		p.Stop()
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
