package archtest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// matches reports whether pkg matches pattern ("x" or "x/...").
func matches(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// specificity ranks patterns: an exact path beats any "x/...", and a
// longer "x/..." beats a shorter one.
func specificity(pattern string) int {
	if strings.HasSuffix(pattern, "/...") {
		return len(pattern)
	}
	return 1 << 20
}

// place returns the placement of pkg, or false if no pattern matches it.
func place(table []placement, pkg string) (placement, bool) {
	var best placement
	found := false
	for _, p := range table {
		if matches(p.pattern, pkg) && (!found || specificity(p.pattern) > specificity(best.pattern)) {
			best, found = p, true
		}
	}
	return best, found
}

func matchesAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matches(p, pkg) })
}

// rules is everything the checker needs; tests of the checker pass their own.
type rules struct {
	layers []placement
	bans   []ban
	known  map[edge]string
}

var moduleRules = rules{layers: layers, bans: bans, known: knownViolations}

// check returns one message per import in g that breaks a rule, sorted, and
// the known violations it met. g maps a package (a path relative to the
// module root) to the packages of this module it imports. fromTests says
// the imports are those of _test.go files, which may use test-only
// packages.
func (r rules) check(g map[string][]string, fromTests bool) (problems []string, knownSeen map[edge]bool) {
	knownSeen = map[edge]bool{}
	for from, imports := range g {
		pf, ok := place(r.layers, from)
		if !ok {
			problems = append(problems, fmt.Sprintf("package %s is in no layer: add it to the layers table in internal/archtest/rules_test.go", from))
			continue
		}
		for _, to := range imports {
			if to == from { // an external test package importing its own package
				continue
			}
			if _, ok := r.known[edge{from, to}]; ok {
				knownSeen[edge{from, to}] = true
				continue
			}
			pt, ok := place(r.layers, to)
			if !ok {
				problems = append(problems, fmt.Sprintf("package %s (imported by %s) is in no layer: add it to the layers table in internal/archtest/rules_test.go", to, from))
				continue
			}
			problems = append(problems, r.checkEdge(from, to, pf, pt, fromTests)...)
		}
	}
	sort.Strings(problems)
	return slices.Compact(problems), knownSeen
}

func (r rules) checkEdge(from, to string, pf, pt placement, fromTests bool) []string {
	var out []string
	imp := fmt.Sprintf("%s (%s) imports %s (%s)", from, layerName(pf.layer), to, layerName(pt.layer))
	switch {
	case pt.testOnly && fromTests:
		// Test helpers serve the tests of every layer.
	case pt.layer < pf.layer:
		out = append(out, imp+": breaks rule \"imports point down the layers\"")
	case pt.layer == pf.layer && !matchesAny(pf.sameLayer, to):
		out = append(out, imp+": breaks rule \"no imports within a layer unless listed in sameLayer\"")
	}
	if pt.testOnly && !fromTests {
		out = append(out, imp+": breaks rule \"test-only packages are imported from _test.go files only\"")
	}
	for _, b := range r.bans {
		if b.codeOnly && fromTests {
			continue
		}
		if matches(b.from, from) && matches(b.to, to) &&
			!matchesAny(b.except, to) && !slices.Contains(b.exceptLayers, pt.layer) {
			out = append(out, fmt.Sprintf("%s: breaks rule %q", imp, b.name))
		}
	}
	return out
}

func layerName(l int) string {
	if l >= 0 && l < len(layerNames) {
		return layerNames[l]
	}
	return fmt.Sprintf("layer %d", l)
}
