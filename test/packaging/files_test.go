// Package packaging tests how Gatehouse is shipped: the container image
// (Dockerfile, Dockerfile.local, `make image`), the systemd units,
// `make install`, the version a build reports, and the commands
// docs/deploy.md gives. The tests in this file read files only; the others
// (build tag integration) build, install and run.
package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// The commands docs/deploy.md tells users to type. TestDeployDocCommands
// holds the document to exactly this list; the integration tests run each
// one (how, and where they must differ, is said where they do).
const (
	cmdMakeBuild    = "make build"
	cmdMakeInstall  = "sudo make install"
	cmdUseradd      = "sudo useradd --system --home-dir /var/lib/gatehouse --shell /usr/sbin/nologin gatehouse"
	cmdDaemonReload = "sudo systemctl daemon-reload"
	cmdEnable       = "sudo systemctl enable --now gatehouse.service"
	cmdReload       = "sudo systemctl reload gatehouse.service"
	cmdMakeImage    = "make image"
	cmdDockerRun    = "docker run -d --name gatehouse --network host -v gatehouse-data:/data gatehouse:dev"
	cmdCopyPassword = "docker cp gatehouse:/data/admin-password ."
	cmdCopyCA       = "docker cp gatehouse:/data/certs/ca.crt ."
)

var deployCommands = []string{
	cmdMakeBuild, cmdMakeInstall, cmdUseradd, cmdDaemonReload, cmdEnable,
	cmdReload,
	cmdMakeImage, cmdDockerRun, cmdCopyPassword, cmdCopyCA,
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeBlocks returns the lines of the fenced blocks of the given language.
func codeBlocks(doc, lang string) [][]string {
	var blocks [][]string
	var cur []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && trimmed == "```"+lang:
			in, cur = true, nil
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestDeployDocCommands: every command in docs/deploy.md's sh blocks is one
// the tests here run, and every one they run is still in the document.
func TestDeployDocCommands(t *testing.T) {
	var got []string
	for _, block := range codeBlocks(readRepoFile(t, "docs/deploy.md"), "sh") {
		for _, line := range block {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				got = append(got, line)
			}
		}
	}
	if diff := cmp.Diff(deployCommands, got); diff != "" {
		t.Errorf("docs/deploy.md's commands differ from the ones test/packaging runs (-tested +documented):\n%s", diff)
	}
}

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct{ op, args string }

func parseDockerfile(t *testing.T, text string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest)
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(op), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	if cur.Len() != 0 {
		t.Fatalf("Dockerfile ends inside a continued line: %q", cur.String())
	}
	return out
}

// finalStage returns the instructions from the last FROM on.
func finalStage(ins []instruction) []instruction {
	last := -1
	for i, in := range ins {
		if in.op == "FROM" {
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	return ins[last:]
}

// TestDockerfilesInStep: Dockerfile.local is Dockerfile's final stage with
// the files taken from the build context instead of the build stage, and
// that stage declares what the image promises: scratch, a non-root numeric
// user, the entrypoint, the ports and the volume.
func TestDockerfilesInStep(t *testing.T) {
	full := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	local := parseDockerfile(t, readRepoFile(t, "Dockerfile.local"))
	final := finalStage(full)
	var fromBuild []instruction
	for _, in := range final {
		in.args = strings.Replace(in.args, "--from=build ", "", 1)
		fromBuild = append(fromBuild, in)
	}
	if diff := cmp.Diff(fromBuild, local, cmp.AllowUnexported(instruction{})); diff != "" {
		t.Errorf("Dockerfile.local is not Dockerfile's final stage (-Dockerfile +Dockerfile.local):\n%s", diff)
	}
	if len(finalStage(local)) != len(local) {
		t.Error("Dockerfile.local has more than one stage")
	}
	if len(full) == 0 || full[0].op != "FROM" || !strings.HasPrefix(full[0].args, "golang:1.26 ") {
		t.Errorf("Dockerfile's first stage is %v, want FROM golang:1.26", full[:1])
	}

	want := map[string]string{
		"FROM":       "scratch",
		"USER":       "65532:65532",
		"ENTRYPOINT": `["/gatehouse"]`,
		"CMD":        `["serve"]`,
		"EXPOSE":     "5000 5001",
		"VOLUME":     "/data",
		"ENV":        "GATEHOUSE_DATA_DIR=/data",
	}
	got := map[string]string{}
	for _, in := range local {
		if _, ok := want[in.op]; ok {
			if _, dup := got[in.op]; dup {
				t.Errorf("Dockerfile.local has %s twice", in.op)
			}
			got[in.op] = in.args
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final stage (-want +got):\n%s", diff)
	}

	// Both builds write the same passwd and group entries for that user.
	for _, line := range []string{
		"gatehouse:x:65532:65532:gatehouse:/data:/nonexistent",
		"gatehouse:x:65532:",
	} {
		for _, f := range []string{"Dockerfile", "scripts/image.sh"} {
			if !strings.Contains(readRepoFile(t, f), "'"+line+"'") {
				t.Errorf("%s does not write %q", f, line)
			}
		}
	}
}

// TestComposeFile: the compose example runs the image `make image` builds,
// serve on the host network, with /data in a named volume. Where Docker
// Compose is installed (scripts/install-deps.sh does not install it),
// `docker compose config` must accept the file too.
func TestComposeFile(t *testing.T) {
	var f struct {
		Services map[string]struct {
			Image       string   `yaml:"image"`
			Command     []string `yaml:"command"`
			NetworkMode string   `yaml:"network_mode"`
			Volumes     []string `yaml:"volumes"`
			Restart     string   `yaml:"restart"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	dec := yaml.NewDecoder(strings.NewReader(readRepoFile(t, "packaging/compose/compose.yaml")))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	s, ok := f.Services["gatehouse"]
	if !ok {
		t.Fatalf("no service gatehouse in %v", f.Services)
	}
	if s.Image != "gatehouse:dev" || !slices.Equal(s.Command, []string{"serve"}) || s.NetworkMode != "host" {
		t.Errorf("service = %+v, want image gatehouse:dev, command [serve], network_mode host", s)
	}
	if !slices.Equal(s.Volumes, []string{"gatehouse-data:/data"}) {
		t.Errorf("volumes = %v, want [gatehouse-data:/data]", s.Volumes)
	}
	if _, ok := f.Volumes["gatehouse-data"]; !ok {
		t.Errorf("volume gatehouse-data not declared: %v", f.Volumes)
	}

	docker, err := exec.LookPath("docker")
	if err == nil {
		err = exec.Command(docker, "compose", "version").Run()
	}
	if err != nil {
		t.Logf("no docker compose here (%v): checked the file's structure only", err)
		return
	}
	out, err := exec.Command(docker, "compose", "-f", filepath.Join(repoRoot(), "packaging", "compose", "compose.yaml"), "config", "--quiet").CombinedOutput()
	if err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
	}
}

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	section := ""
	keyRe := regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*)=(.*)$`)
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			m := keyRe.FindStringSubmatch(line)
			if m == nil || section == "" {
				t.Fatalf("line %d: not a key=value in a section: %q", i+1, line)
			}
			u[section][m[1]] = append(u[section][m[1]], m[2])
		}
	}
	return u
}

// get returns the last value of key (what systemd uses for most keys).
func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

var unitExecStart = map[string]string{
	"gatehouse.service":          "/usr/local/bin/gatehouse serve",
	"gatehouse-auth.service":     "/usr/local/bin/gatehouse auth-server /etc/gatehouse/auth_config.yml",
	"gatehouse-registry.service": "/usr/local/bin/gatehouse registry serve /etc/gatehouse/config.yml",
}

// TestUnitFiles: each unit runs its command as the user gatehouse with the
// promised hardening, reload by SIGHUP, restart on failure and a raised
// file limit; only the registry and serve may write, and only their data
// directory.
func TestUnitFiles(t *testing.T) {
	common := map[string]string{
		"Type":                    "notify",
		"User":                    "gatehouse",
		"Group":                   "gatehouse",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"Restart":                 "on-failure",
		"LimitNOFILE":             "65536",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"UMask":                   "0077",
	}
	entries, err := filepath.Glob(filepath.Join(repoRoot(), "packaging", "systemd", "*.service"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Base(e))
	}
	if diff := cmp.Diff([]string{"gatehouse-auth.service", "gatehouse-registry.service", "gatehouse.service"}, names); diff != "" {
		t.Fatalf("units (-want +got):\n%s", diff)
	}
	for name, execStart := range unitExecStart {
		t.Run(name, func(t *testing.T) {
			u := parseUnit(t, readRepoFile(t, "packaging/systemd/"+name))
			if got := u.get("Service", "ExecStart"); got != execStart {
				t.Errorf("ExecStart = %q, want %q", got, execStart)
			}
			for k, want := range common {
				if vs, ok := u["Service"][k]; !ok || vs[len(vs)-1] != want {
					t.Errorf("%s = %q, want %q", k, vs, want)
				}
			}
			if got := u["Service"]["SystemCallFilter"]; !slices.Equal(got, []string{"@system-service", "~@privileged @resources"}) {
				t.Errorf("SystemCallFilter = %q", got)
			}
			if got := u.get("Install", "WantedBy"); got != "multi-user.target" {
				t.Errorf("WantedBy = %q", got)
			}
			rw := u.get("Service", "ReadWritePaths")
			env := u["Service"]["Environment"]
			switch name {
			case "gatehouse-auth.service":
				if rw != "" {
					t.Errorf("the auth server may write to %q; it writes nothing", rw)
				}
			case "gatehouse.service":
				if !slices.Equal(env, []string{"GATEHOUSE_DATA_DIR=/var/lib/gatehouse"}) {
					t.Errorf("Environment = %q", env)
				}
				fallthrough
			default:
				if rw != "/var/lib/gatehouse" || u.get("Service", "StateDirectory") != "gatehouse" || u.get("Service", "StateDirectoryMode") != "0700" {
					t.Errorf("ReadWritePaths = %q, StateDirectory = %q, mode %q; want /var/lib/gatehouse, gatehouse, 0700",
						rw, u.get("Service", "StateDirectory"), u.get("Service", "StateDirectoryMode"))
				}
			}
		})
	}
}
