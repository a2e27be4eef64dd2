//go:build integration

package packaging

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// docCommand returns a command of docs/deploy.md as arguments, without the
// leading sudo (the integration tests run as root, and what they install
// goes under temporary folders).
func docCommand(t *testing.T, cmd string) []string {
	t.Helper()
	f := strings.Fields(cmd)
	if f[0] == "sudo" {
		f = f[1:]
	}
	return f
}

// runIn runs args in dir with extra environment and fails the test on error.
func runIn(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out.String())
	}
	return out.String()
}

var buildOnce sync.Once

// makeBuild runs the documented `make build` in the checkout once per test
// process: `make install` installs the bin/gatehouse it makes.
func makeBuild(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() { runIn(t, repoRoot(), nil, docCommand(t, cmdMakeBuild)...) })
	if _, err := os.Stat(filepath.Join(repoRoot(), "bin", "gatehouse")); err != nil {
		t.Fatalf("make build made no bin/gatehouse: %v", err)
	}
}

// TestMakeInstall runs the documented `sudo make install` with DESTDIR (a
// packager's staging root) and checks every file, its mode and content.
func TestMakeInstall(t *testing.T) {
	makeBuild(t)
	dest := t.TempDir()
	runIn(t, repoRoot(), nil, append(docCommand(t, cmdMakeInstall), "DESTDIR="+dest)...)

	want := map[string]os.FileMode{
		"usr/local/bin/gatehouse":                                 0o755,
		"usr/local/lib/systemd/system/gatehouse.service":          0o644,
		"usr/local/lib/systemd/system/gatehouse-auth.service":     0o644,
		"usr/local/lib/systemd/system/gatehouse-registry.service": 0o644,
		"usr/local/share/gatehouse/examples/auth_config.yml":      0o644,
		"usr/local/share/gatehouse/examples/registry-config.yml":  0o644,
		"usr/local/share/gatehouse/examples/compose.yaml":         0o644,
	}
	got := map[string]os.FileMode{}
	err := filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		got[rel] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("installed files:\n got %v\nwant %v", got, want)
	}

	same := map[string]string{
		"usr/local/bin/gatehouse":                                "bin/gatehouse",
		"usr/local/share/gatehouse/examples/auth_config.yml":     "docs/examples/auth_config.yml",
		"usr/local/share/gatehouse/examples/registry-config.yml": "docs/examples/registry-config.yml",
		"usr/local/share/gatehouse/examples/compose.yaml":        "packaging/compose/compose.yaml",
	}
	for _, u := range []string{"gatehouse.service", "gatehouse-auth.service", "gatehouse-registry.service"} {
		// With the default PREFIX the units are installed as they are.
		same["usr/local/lib/systemd/system/"+u] = "packaging/systemd/" + u
	}
	for installed, src := range same {
		a, err := os.ReadFile(filepath.Join(dest, installed))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(repoRoot(), src))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s", installed, src)
		}
	}
	// make build stamps the checkout's commit, worktree or not.
	head := strings.TrimSpace(runIn(t, repoRoot(), nil, "git", "rev-parse", "HEAD"))
	out := runIn(t, dest, nil, filepath.Join(dest, "usr/local/bin/gatehouse"), "version")
	if !strings.HasPrefix(out, "gatehouse ") || !strings.Contains(out, "(commit "+head) {
		t.Errorf("installed gatehouse version = %q, want commit %s", out, head)
	}
}

// TestUseradd runs the documented useradd against a copy of this machine's
// user database (--prefix), so the machine's own is left alone, and checks
// it makes the system user the units name.
func TestUseradd(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"passwd", "group", "shadow", "gshadow", "login.defs"} {
		b, err := os.ReadFile(filepath.Join("/etc", f))
		if os.IsNotExist(err) && (f == "gshadow" || f == "login.defs") {
			continue
		}
		if err != nil {
			t.Fatalf("copy the user database (needs root): %v", err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^gatehouse:`).Match(passwd) {
		t.Fatal("this machine has a user gatehouse already; the test needs a user database without one")
	}
	args := docCommand(t, cmdUseradd)
	args = append(args[:1], append([]string{"--prefix", root}, args[1:]...)...)
	runIn(t, root, nil, args...)
	passwd, err = os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^gatehouse:x:(\d+):(\d+):[^:]*:/var/lib/gatehouse:/usr/sbin/nologin$`).FindSubmatch(passwd)
	if m == nil {
		t.Fatalf("no gatehouse line with home /var/lib/gatehouse and shell nologin in:\n%s", passwd)
	}
	group, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^gatehouse:x:` + string(m[2]) + `:`).Match(group) {
		t.Errorf("no group gatehouse with gid %s in:\n%s", m[2], group)
	}
	if uid := string(m[1]); len(uid) > 3 {
		t.Errorf("uid %s is not a system uid", uid)
	}
	if _, err := os.Stat("/usr/sbin/nologin"); err != nil {
		t.Errorf("the documented shell: %v", err)
	}
}
