package token

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Scope
		wantErr string // substring of the error; empty means success
	}{
		{name: "pull", in: "repository:alpine:pull", want: Scope{Type: "repository", Name: "alpine", Actions: []string{"pull"}}},
		{name: "sorted and deduplicated", in: "repository:library/alpine:push,pull,push", want: Scope{Type: "repository", Name: "library/alpine", Actions: []string{"pull", "push"}}},
		{name: "host and port in name", in: "repository:localhost:5000/alpine:pull", want: Scope{Type: "repository", Name: "localhost:5000/alpine", Actions: []string{"pull"}}},
		{name: "ipv6 host", in: "repository:[::1]:5000/a/b:pull", want: Scope{Type: "repository", Name: "[::1]:5000/a/b", Actions: []string{"pull"}}},
		{name: "dotted host", in: "repository:coreos1.domain.com/team/app:delete", want: Scope{Type: "repository", Name: "coreos1.domain.com/team/app", Actions: []string{"delete"}}},
		{name: "separators", in: "repository:a.b/c__d/e---f/g_h:pull", want: Scope{Type: "repository", Name: "a.b/c__d/e---f/g_h", Actions: []string{"pull"}}},
		{name: "catalog", in: "registry:catalog:*", want: Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{name: "class kept", in: "repository(plugin):vieux/sshfs:pull", want: Scope{Type: "repository", Class: "plugin", Name: "vieux/sshfs", Actions: []string{"pull"}}},
		{name: "other type", in: "plugin:foo:pull", want: Scope{Type: "plugin", Name: "foo", Actions: []string{"pull"}}},

		{name: "no colon", in: "alpine", wantErr: "want type:name:actions"},
		{name: "one colon", in: "repository:alpine", wantErr: "want type:name:actions"},
		{name: "empty", in: "", wantErr: "want type:name:actions"},
		{name: "upper-case type", in: "Repository:alpine:pull", wantErr: `resource type "Repository"`},
		{name: "empty type", in: ":alpine:pull", wantErr: `resource type ""`},
		{name: "bad class", in: "repository(Plugin):a:pull", wantErr: `resource class "Plugin"`},
		{name: "empty class", in: "repository():a:pull", wantErr: `resource class ""`},
		{name: "unclosed class", in: "repository(plugin:a:pull", wantErr: "parentheses"},
		{name: "upper-case name", in: "repository:Alpine:pull", wantErr: "not a valid repository name"},
		{name: "tag in name", in: "repository:alpine:latest:pull", wantErr: "not a valid repository name"},
		{name: "trailing slash", in: "repository:alpine/:pull", wantErr: "not a valid repository name"},
		{name: "double slash", in: "repository:a//b:pull", wantErr: "not a valid repository name"},
		{name: "leading separator", in: "repository:-a:pull", wantErr: "not a valid repository name"},
		{name: "dot dot", in: "repository:a/../b:pull", wantErr: `path component ".."`},
		{name: "empty port", in: "repository:localhost:/a:pull", wantErr: `"localhost:" is not a registry host`},
		{name: "empty name", in: "repository::pull", wantErr: "empty resource name"},
		{name: "too long", in: "repository:" + strings.Repeat("a", 256) + ":pull", wantErr: "limit is 255"},
		{name: "registry not catalog", in: "registry:other:*", wantErr: `only registry resource is "catalog"`},
		{name: "no actions", in: "repository:alpine:", wantErr: "no actions"},
		{name: "empty action", in: "repository:alpine:pull,,push", wantErr: "empty action"},
		{name: "bad action", in: "repository:alpine:PULL", wantErr: `invalid action "PULL"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseScope(%q) = %+v, want error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidScope) {
					t.Fatalf("ParseScope(%q) error = %q, want it to contain %q and wrap ErrInvalidScope", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseScope(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseScope(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			again, err := ParseScope(got.String())
			if err != nil {
				t.Fatalf("ParseScope(String()) = %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("round trip through %q mismatch (-first +second):\n%s", got.String(), diff)
			}
		})
	}
}

func TestScopeString(t *testing.T) {
	s := Scope{Type: "repository", Class: "plugin", Name: "a/b", Actions: []string{"pull", "push"}}
	if got, want := s.String(), "repository(plugin):a/b:pull,push"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []Scope
		wantErr bool
	}{
		{name: "none", in: nil, want: nil},
		{name: "empty values ignored", in: []string{"", "  "}, want: nil},
		{
			name: "repeated and space separated",
			in:   []string{"repository:a:pull repository:b:push", "registry:catalog:*"},
			want: []Scope{
				{Type: "repository", Name: "a", Actions: []string{"pull"}},
				{Type: "repository", Name: "b", Actions: []string{"push"}},
				{Type: "registry", Name: "catalog", Actions: []string{"*"}},
			},
		},
		{name: "one bad", in: []string{"repository:a:pull", "bad"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScopes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseScopes(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseScopes(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"repository:alpine:pull", "repository:localhost:5000/alpine:pull,push", "registry:catalog:*",
		"repository(plugin):a/b:pull", "Repository:a:pull", "a:b:c:d:e", ":::", "repository:[::1]:5000/x:pull",
		"repository:a:pull,,", "x(y):z:*,pull",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		if len(sc.Actions) == 0 {
			t.Fatalf("ParseScope(%q) succeeded with no actions", s)
		}
		again, err := ParseScope(sc.String())
		if err != nil {
			t.Fatalf("ParseScope(%q) ok but its String %q fails: %v", s, sc.String(), err)
		}
		if diff := cmp.Diff(sc, again); diff != "" {
			t.Fatalf("round trip of %q mismatch (-first +second):\n%s", s, diff)
		}
	})
}
