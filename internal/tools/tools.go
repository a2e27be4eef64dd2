// Package tools finds the external programs that the tests and benchmarks
// run: pinned Go tools installed by scripts/install-deps.sh, and Debian's
// packages.
package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Dir is where scripts/install-deps.sh puts pinned tools:
// $GATEHOUSE_TOOLS/bin, else ~/.cache/gatehouse-tools/bin.
func Dir() string {
	if d := os.Getenv("GATEHOUSE_TOOLS"); d != "" {
		return filepath.Join(d, "bin")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "gatehouse-tools", "bin")
}

// Find returns the path of a program from the tools dir, PATH or the
// system binary directories (daemons such as slapd live in /usr/sbin).
func Find(name string) (string, error) {
	if p := filepath.Join(Dir(), name); isExec(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed: run scripts/install-deps.sh (as root) first", name)
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
