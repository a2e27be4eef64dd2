package archtest

import (
	"strings"
	"testing"
)

// TestCheckerCatchesBrokenRules runs the checker with the module's rules on
// small made-up graphs, so that the test over the real tree is known to be
// able to fail, and to fail with a message that names the import and the
// rule.
func TestCheckerCatchesBrokenRules(t *testing.T) {
	tests := []struct {
		name      string
		graph     map[string][]string
		fromTests bool
		want      []string // substrings, each of which one problem must contain
	}{
		{
			name: "allowed imports",
			graph: map[string][]string{
				"cmd/gatehouse":                         {"internal/cli"},
				"internal/cli":                          {"internal/registry/app", "internal/authserver", "internal/config/authconfig"},
				"internal/registry/app":                 {"internal/registry/api", "internal/config/regconfig", "internal/registry/storage/driver/filesystem"},
				"internal/registry/api":                 {"internal/registry/storage", "internal/registry/auth", "internal/reference"},
				"internal/registry/auth":                {"internal/token"},
				"internal/authserver":                   {"internal/authn/static", "internal/authz/acl", "internal/credcache"},
				"internal/authz/ext":                    {"internal/authz", "internal/authn", "internal/extprog"},
				"internal/config/authconfig":            {"internal/config", "internal/authz/acl", "internal/secret"},
				"internal/credcache":                    {"internal/authn", "internal/secret"},
				"internal/authz":                        {"internal/authn"},
				"internal/registry/storage/driver/s3x":  {"internal/registry/storage/driver", "internal/tlsutil"},
				"internal/registry/storage/driver/memx": {"internal/registry/storage/driver"},
			},
		},
		{
			name:  "upward import",
			graph: map[string][]string{"internal/token": {"internal/authserver"}},
			want:  []string{`internal/token (logic) imports internal/authserver (http): breaks rule "imports point down the layers"`},
		},
		{
			name:  "same layer, not listed",
			graph: map[string][]string{"internal/token": {"internal/registry/storage"}},
			want:  []string{`internal/token (logic) imports internal/registry/storage (logic): breaks rule "no imports within a layer`},
		},
		{
			name:  "authn imports authz",
			graph: map[string][]string{"internal/authn/static": {"internal/authz"}},
			want:  []string{`internal/authn/static (logic) imports internal/authz (contracts): breaks rule "authentication does not know authorization"`},
		},
		{
			name:  "authz imports an authenticator",
			graph: map[string][]string{"internal/authz/acl": {"internal/authn/static"}},
			want:  []string{`internal/authz/acl (logic) imports internal/authn/static (logic): breaks rule "authorization knows authentication only by its contract"`},
		},
		{
			name:  "authn imports config",
			graph: map[string][]string{"internal/authn/ldap": {"internal/config/authconfig"}},
			// Not the module's known violation: the test passes its own rules below.
			want: []string{`internal/authn/ldap (logic) imports internal/config/authconfig (config): breaks rule "logic reads no configuration files`},
		},
		{
			name:  "storage imports config",
			graph: map[string][]string{"internal/registry/storage": {"internal/config/regconfig"}},
			want:  []string{`internal/registry/storage (logic) imports internal/config/regconfig (config): breaks rule "logic reads no configuration files`},
		},
		{
			name:  "driver imports the registry API",
			graph: map[string][]string{"internal/registry/storage/driver/filesystem": {"internal/registry/api"}},
			want: []string{
				`internal/registry/storage/driver/filesystem (drivers and caches) imports internal/registry/api (http): breaks rule "imports point down the layers"`,
				`breaks rule "a storage driver imports only the driver contract and leaf utilities"`,
			},
		},
		{
			name:  "driver imports a cache",
			graph: map[string][]string{"internal/registry/storage/driver/filesystem": {"internal/cache"}},
			want:  []string{`imports internal/cache (drivers and caches): breaks rule "a storage driver imports only the driver contract and leaf utilities"`},
		},
		{
			name:  "test-only package in production code",
			graph: map[string][]string{"internal/registry/storage": {"internal/testenv"}},
			want:  []string{`internal/registry/storage (logic) imports internal/testenv (leaf): breaks rule "test-only packages are imported from _test.go files only"`},
		},
		{
			name:      "test-only package in tests",
			graph:     map[string][]string{"internal/registry/storage/driver/filesystem": {"internal/registry/storage/driver/drivertest"}, "internal/cli": {"internal/testenv"}, "internal/server": {"internal/testenv"}},
			fromTests: true,
		},
		{
			name:  "package in no layer",
			graph: map[string][]string{"internal/cli": {"internal/mystery"}, "internal/elsewhere": nil},
			want: []string{
				"package internal/mystery (imported by internal/cli) is in no layer",
				"package internal/elsewhere is in no layer",
			},
		},
	}
	r := rules{layers: layers, bans: bans}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := r.check(tt.graph, tt.fromTests)
			if len(tt.want) == 0 && len(got) != 0 {
				t.Fatalf("want no problems, got:\n%s", strings.Join(got, "\n"))
			}
			for _, w := range tt.want {
				if !containsSubstring(got, w) {
					t.Errorf("want a problem containing\n  %s\ngot:\n  %s", w, strings.Join(got, "\n  "))
				}
			}
		})
	}
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestCheckerKnownViolations checks that a listed violation is passed over
// and reported as seen, and that the same import is a problem without the
// entry.
func TestCheckerKnownViolations(t *testing.T) {
	g := map[string][]string{"internal/authn/ldap": {"internal/config/authconfig", "internal/authn"}}
	e := edge{"internal/authn/ldap", "internal/config/authconfig"}

	r := rules{layers: layers, bans: bans, known: map[edge]string{e: "being removed"}}
	got, seen := r.check(g, false)
	if len(got) != 0 {
		t.Errorf("with the entry: want no problems, got %q", got)
	}
	if !seen[e] {
		t.Errorf("with the entry: %v not reported as seen", e)
	}

	r.known = nil
	got, _ = r.check(g, false)
	if !containsSubstring(got, `internal/authn/ldap (logic) imports internal/config/authconfig (config): breaks rule "logic reads no configuration files`) {
		t.Errorf("without the entry: want the config rule broken, got %q", got)
	}
}

func TestPlaceMostSpecific(t *testing.T) {
	tests := []struct {
		pkg  string
		want int
	}{
		{"internal/authn", layerContract},
		{"internal/authn/static", layerLogic},
		{"internal/extprog", layerLeaf},
		{"internal/registry/storage", layerLogic},
		{"internal/registry/storage/driver", layerContract},
		{"internal/registry/storage/driver/filesystem", layerDriver},
		{"internal/config", layerConfig},
		{"cmd/gatehouse", layerCmd},
	}
	for _, tt := range tests {
		p, ok := place(layers, tt.pkg)
		if !ok || p.layer != tt.want {
			t.Errorf("place(%s) = %s (found %v), want %s", tt.pkg, layerName(p.layer), ok, layerName(tt.want))
		}
	}
	if _, ok := place(layers, "internal/registry/storagex"); ok {
		t.Error("internal/registry/storagex placed; a pattern must match whole path elements")
	}
}
