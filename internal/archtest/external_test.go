package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestExternalImports holds the packages in externalAllowed to the
// standard library, this module and the modules listed for them.
func TestExternalImports(t *testing.T) {
	touchSources(t)
	mod := strings.TrimSpace(string(run(t, "go", "list", "-m", "-f", "{{.Path}}")))
	args := []string{"list", "-json"}
	for pkg := range externalAllowed {
		args = append(args, mod+"/"+pkg)
	}
	dec := json.NewDecoder(bytes.NewReader(run(t, "go", args...)))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		rel := strings.TrimPrefix(p.ImportPath, mod+"/")
		seen++
		for _, msg := range externalProblems(rel, p.Imports, mod, externalAllowed[rel]) {
			t.Error(msg)
		}
	}
	if seen != len(externalAllowed) {
		t.Fatalf("go list described %d of the %d packages in externalAllowed", seen, len(externalAllowed))
	}
}

// externalProblems lists the imports of pkg that are neither the standard
// library (no dot in the first path element), nor this module, nor one of
// allowed (a module path: its packages are allowed too).
func externalProblems(pkg string, imports []string, mod string, allowed []string) []string {
	var out []string
	for _, imp := range imports {
		first, _, _ := strings.Cut(imp, "/")
		if !strings.Contains(first, ".") || imp == mod || strings.HasPrefix(imp, mod+"/") {
			continue
		}
		if slices.ContainsFunc(allowed, func(m string) bool { return imp == m || strings.HasPrefix(imp, m+"/") }) {
			continue
		}
		out = append(out, pkg+" imports "+imp+": only the standard library and "+strings.Join(allowed, ", ")+" are allowed there (externalAllowed in internal/archtest/rules_test.go)")
	}
	return out
}

func TestExternalProblems(t *testing.T) {
	const mod = "example.com/m"
	got := externalProblems("internal/x", []string{"fmt", "net/http", "example.com/m/internal/y", "github.com/ok/mod/sub", "github.com/bad/mod"}, mod, []string{"github.com/ok/mod"})
	if len(got) != 1 || !strings.Contains(got[0], "github.com/bad/mod") {
		t.Fatalf("externalProblems = %q, want one problem naming github.com/bad/mod", got)
	}
	if got := externalProblems("internal/x", []string{"github.com/ok/module"}, mod, []string{"github.com/ok/mod"}); len(got) != 1 {
		t.Fatalf("a module whose path only starts with an allowed one was accepted: %q", got)
	}
}
