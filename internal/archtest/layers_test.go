package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLayers checks every import of every package under cmd/ and internal/,
// its _test.go files included (with the integration build tag too), against
// the rules in rules_test.go.
func TestLayers(t *testing.T) {
	touchSources(t)
	prod, tests := moduleGraph(t)
	if len(prod) < 10 {
		t.Fatalf("go list found %d packages under cmd/ and internal/; expected the whole module", len(prod))
	}

	var problems []string
	seen := map[edge]bool{}
	for _, run := range []struct {
		g         map[string][]string
		fromTests bool
	}{{prod, false}, {tests, true}} {
		p, s := moduleRules.check(run.g, run.fromTests)
		problems = append(problems, p...)
		for e := range s {
			seen[e] = true
		}
	}
	// An import made by both a package and its tests is reported once.
	slices.Sort(problems)
	for _, p := range slices.Compact(problems) {
		t.Error(p)
	}
	for e, why := range knownViolations {
		if !seen[e] {
			t.Errorf("known violation %s -> %s (%s) no longer occurs: delete its entry from knownViolations", e.from, e.to, why)
		}
	}
}

// moduleGraph lists the module's packages with go list and returns, for
// each package under cmd/ or internal/, the module's packages its non-test
// files import and those its _test.go files import. Paths are relative to
// the module root.
func moduleGraph(t *testing.T) (prod, tests map[string][]string) {
	t.Helper()
	mod := strings.TrimSpace(string(run(t, "go", "list", "-m", "-f", "{{.Path}}")))
	out := run(t, "go", "list", "-tags", "integration", "-json", mod+"/...")

	ours := func(p string) (string, bool) {
		return strings.CutPrefix(p, mod+"/")
	}
	prod, tests = map[string][]string{}, map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		rel, ok := ours(p.ImportPath)
		if !ok || (!strings.HasPrefix(rel, "cmd/") && !strings.HasPrefix(rel, "internal/")) {
			continue
		}
		prod[rel] = nil
		for _, imp := range p.Imports {
			if r, ok := ours(imp); ok {
				prod[rel] = append(prod[rel], r)
			}
		}
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if r, ok := ours(imp); ok {
				tests[rel] = append(tests[rel], r)
			}
		}
	}
	return prod, tests
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// touchSources reads the directory tree and stats every Go file under
// cmd/ and internal/. The imports are read by `go list` in another process,
// which go test's result cache does not see; what this process reads it
// does, so a new package or a changed file runs the test again instead of
// reporting a stale pass.
func touchSources(t *testing.T) {
	t.Helper()
	for _, root := range []string{"../../cmd", "../../internal"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") {
				_, err = os.Stat(path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
