package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const aclCheckConfig = `server:
  addr: ":5001"
  certificate: %DIR%/server.crt
  key: %DIR%/server.key
token:
  issuer: test
  expiration: 900
users:
  "": {}
acl:
  - match: {account: admin}
    actions: ["*"]
    comment: "Admin can do anything"
  - match: {labels: {groups: "6000"}}
    actions: ["pull"]
    comment: "DevOps can pull"
  - match: {ip: "10.0.0.0/8", service: "internal"}
    actions: ["pull", "push"]
  - match: {account: "/.+/", name: "${account}/*"}
    actions: ["pull", "push", "delete"]
    comment: "Own namespace"
`

// aclConfig writes an auth config whose certificate exists (made by
// gatehouse certs init) unless broken is set.
func aclConfig(t *testing.T, body string, broken bool) string {
	t.Helper()
	dir := t.TempDir()
	if !broken {
		if code, _, errOut := runMain(t, "", "certs", "init", "--out", dir, "--host", "auth.test"); code != 0 {
			t.Fatalf("certs init: exit %d: %s", code, errOut)
		}
	}
	p := filepath.Join(dir, "auth_config.yml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "%DIR%", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestACLCheck(t *testing.T) {
	good := aclConfig(t, aclCheckConfig, false)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string // lines of stdout
		wantErr  string   // part of stderr
	}{
		{name: "label grants pull",
			args:    []string{"--account", "usera", "--label", "groups=7000", "--label", "groups=6000", "repository:foo/bar:push,pull"},
			wantOut: []string{`repository:foo/bar:push,pull  granted [pull]  by rule #2 "DevOps can pull" (acl[1])`}},
		{name: "admin gets what is asked",
			args:    []string{"--account", "admin", "repository:foo/bar:pull,push,delete", "registry:catalog:*"},
			wantOut: []string{`repository:foo/bar:pull,push,delete  granted [delete,pull,push]  by rule #1 "Admin can do anything" (acl[0])`, `registry:catalog:*  granted [*]  by rule #1 "Admin can do anything" (acl[0])`}},
		{name: "own namespace",
			args:    []string{"--account", "bob", "repository:bob/app:push", "repository:alice/app:pull"},
			wantOut: []string{`repository:bob/app:push  granted [push]  by rule #4 "Own namespace" (acl[3])`, `repository:alice/app:pull  denied: no rule matched (denied by default)`}},
		{name: "ip and service",
			args:    []string{"--account", "", "--ip", "10.2.3.4", "--service", "internal", "repository:x:pull,delete"},
			wantOut: []string{`repository:x:pull,delete  granted [pull]  by rule #3 (acl[2])`}},
		{name: "ip outside",
			args:    []string{"--ip", "192.168.1.1", "--service", "internal", "repository:x:pull"},
			wantOut: []string{`repository:x:pull  denied: no rule matched (denied by default)`}},
		{name: "catalog needs star",
			args:    []string{"--account", "u", "--label", "groups=6000", "registry:catalog:*"},
			wantOut: []string{`registry:catalog:*  granted []  by rule #2 "DevOps can pull" (acl[1])`}},
		{name: "fail on deny",
			args:     []string{"--account", "u", "--fail-on-deny", "repository:u/a:pull", "repository:v/a:pull"},
			wantCode: 1,
			wantOut:  []string{`repository:u/a:pull  granted [pull]  by rule #4 "Own namespace" (acl[3])`, `repository:v/a:pull  denied: no rule matched (denied by default)`}},
		{name: "fail on deny, nothing denied",
			args:    []string{"--account", "u", "--fail-on-deny", "repository:u/a:pull"},
			wantOut: []string{`repository:u/a:pull  granted [pull]  by rule #4 "Own namespace" (acl[3])`}},
		{name: "verbose shows the rule",
			args:    []string{"--account", "admin", "-v", "repository:a:pull"},
			wantOut: []string{`repository:a:pull  granted [pull]  by rule #1 "Admin can do anything" (acl[0])`, `    {match: {account: "admin"}, actions: ["*"], comment: "Admin can do anything"}`}},
		{name: "bad scope", args: []string{"--account", "a", "repository:a"}, wantCode: 2, wantErr: "type:name:actions"},
		{name: "bad label", args: []string{"--label", "groups", "repository:a:pull"}, wantCode: 2, wantErr: "KEY=VALUE"},
		{name: "bad ip", args: []string{"--ip", "10.0.0", "repository:a:pull"}, wantCode: 2, wantErr: "not an IP"},
		{name: "no scope", args: []string{"--account", "a"}, wantCode: 2, wantErr: "requires at least 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"acl", "check", "--config", good}, tt.args...)
			code, out, errOut := runMain(t, "", args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, out, errOut)
			}
			if tt.wantErr != "" && !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.wantErr)
			}
			if tt.wantErr == "" && errOut != "" {
				t.Errorf("unexpected stderr %q", errOut)
			}
			var got []string
			if out != "" {
				got = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantOut, "\n") {
				t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantOut, "\n"))
			}
		})
	}
}

func TestACLCheckConfigProblems(t *testing.T) {
	t.Run("problems outside the acl are a note", func(t *testing.T) {
		cfg := aclConfig(t, aclCheckConfig, true) // the certificate files are missing
		code, out, errOut := runMain(t, "", "acl", "check", "--config", cfg, "--account", "admin", "repository:a:pull")
		if code != 0 || !strings.Contains(out, "granted [pull]") || !strings.Contains(errOut, "outside the acl") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("a file holding only an acl", func(t *testing.T) {
		// The whole-file problems (no server, no authentication section)
		// have no line, so they never count as the acl's own even when
		// the acl comes first.
		cfg := filepath.Join(t.TempDir(), "acl.yml")
		if err := os.WriteFile(cfg, []byte("acl:\n  - match: {account: alice}\n    actions: [\"*\"]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runMain(t, "", "acl", "check", "--config", cfg, "--account", "alice", "repository:a/b:pull")
		if code != 0 || !strings.Contains(out, "granted [pull]") || !strings.Contains(errOut, "outside the acl") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("acl errors stop it with file:line", func(t *testing.T) {
		body := strings.Replace(aclCheckConfig, `name: "${account}/*"`, `name: "${acount}/*"`, 1)
		cfg := aclConfig(t, body, false)
		code, out, errOut := runMain(t, "", "acl", "check", "--config", cfg, "--account", "admin", "repository:a:pull")
		if code != 1 || out != "" || !strings.Contains(errOut, "auth_config.yml:19") || !strings.Contains(errOut, "${acount}") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("seed rule is refused", func(t *testing.T) {
		body := strings.Replace(aclCheckConfig, `{labels: {groups: "6000"}}`, `{"gidNumber": "6000"}`, 1)
		cfg := aclConfig(t, body, false)
		code, _, errOut := runMain(t, "", "acl", "check", "--config", cfg, "--account", "usera", "repository:a:pull")
		if code != 1 || !strings.Contains(errOut, "gidNumber") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("no acl section", func(t *testing.T) {
		body := aclCheckConfig[:strings.Index(aclCheckConfig, "acl:")] + "ext_authz:\n  command: sh\n"
		cfg := aclConfig(t, body, false)
		code, _, errOut := runMain(t, "", "acl", "check", "--config", cfg, "repository:a:pull")
		if code != 1 || !strings.Contains(errOut, "no acl section") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		code, _, errOut := runMain(t, "", "acl", "check", "--config", filepath.Join(t.TempDir(), "nope.yml"), "repository:a:pull")
		if code != 1 || !strings.Contains(errOut, "nope.yml") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("config flag required", func(t *testing.T) {
		code, _, errOut := runMain(t, "", "acl", "check", "repository:a:pull")
		if code != 2 || !strings.Contains(errOut, "config") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
}
