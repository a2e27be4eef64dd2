//go:build integration

package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionFromGoBuild: a plain `go build` in a git clone of this checkout
// (no Makefile stamps) reports the clone's commit and its time from the
// build info, and "-dirty" once a tracked file is changed.
//
// The build runs in a clone because the Go toolchain finds no VCS in a
// `git worktree` checkout (it looks for a .git directory, and a worktree has
// a .git file), and with GOFLAGS=-buildvcs=true because a machine's go env
// may turn VCS stamping off.
func TestVersionFromGoBuild(t *testing.T) {
	clone := filepath.Join(t.TempDir(), "gatehouse")
	runIn(t, repoRoot(), nil, "git", "clone", "--quiet", "--shared", repoRoot(), clone)
	head := strings.TrimSpace(runIn(t, repoRoot(), nil, "git", "rev-parse", "HEAD"))
	if got := strings.TrimSpace(runIn(t, clone, nil, "git", "rev-parse", "HEAD")); got != head {
		t.Fatalf("the clone is at %s, the checkout at %s", got, head)
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	env := []string{"GOFLAGS=-buildvcs=true"}
	build := func() string {
		t.Helper()
		runIn(t, clone, env, "go", "build", "-trimpath", "-o", bin, "./cmd/gatehouse")
		return strings.TrimSpace(runIn(t, clone, nil, bin, "version"))
	}

	// The version is the module version Go derives from the VCS: a
	// pseudo-version naming the commit, or the tag at HEAD.
	clean := regexp.MustCompile(`^gatehouse v[^ +]+ \(commit ` + head + `, committed \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, go1\.\S+ linux/\S+\)$`)
	if out := build(); !clean.MatchString(out) {
		t.Errorf("version of a clean go build = %q, want it to match %s", out, clean)
	}

	readme := filepath.Join(clone, "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(readme, append(b, "\nchanged\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	dirty := regexp.MustCompile(`^gatehouse v[^ +]+\+dirty \(commit ` + head + `-dirty, committed `)
	if out := build(); !dirty.MatchString(out) {
		t.Errorf("version of a go build with a changed file = %q, want it to match %s", out, dirty)
	}
}
