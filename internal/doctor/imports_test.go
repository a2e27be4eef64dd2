package doctor

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps doctor a client: it talks to registries and token
// servers over HTTP only, and uses no server package (authserver,
// registry, config, storage). Besides the standard library it may import
// these.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/go-jose/go-jose/v4":                            true,
		"golang.org/x/sys/unix":                                    true,
		"github.com/gatehouse-registry/gatehouse/internal/secret":  true,
		"github.com/gatehouse-registry/gatehouse/internal/tlsutil": true,
		"github.com/gatehouse-registry/gatehouse/internal/token":   true,
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		files++
		f, err := parser.ParseFile(token.NewFileSet(), n, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(p, "/")
			if strings.Contains(first, ".") && !allowed[p] {
				t.Errorf("%s imports %s, which doctor may not use", n, p)
			}
		}
	}
	if files == 0 {
		t.Fatal("no source files found")
	}
}
