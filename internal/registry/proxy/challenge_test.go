package proxy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		in   string
		want []challenge
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"`,
			[]challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/alpine:pull,push"}}}},
		{`Basic realm="Registry Realm"`, []challenge{{"basic", map[string]string{"realm": "Registry Realm"}}}},
		{`Basic realm="a", Bearer realm="https://r/t", service=svc`,
			[]challenge{{"basic", map[string]string{"realm": "a"}}, {"bearer", map[string]string{"realm": "https://r/t", "service": "svc"}}}},
		{`bearer REALM = "x\"y" , error="invalid_token"`, []challenge{{"bearer", map[string]string{"realm": `x"y`, "error": "invalid_token"}}}},
		{`Negotiate`, []challenge{{"negotiate", map[string]string{}}}},
		{`Bearer realm="unterminated`, []challenge{{"bearer", map[string]string{}}}},
		{``, nil},
	}
	for _, tt := range tests {
		got := parseChallenges(tt.in)
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(challenge{})); diff != "" {
			t.Errorf("parseChallenges(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func FuzzParseChallenges(f *testing.F) {
	f.Add(`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a:pull"`)
	f.Add(`Basic realm="a", Bearer realm="b"`)
	f.Add(`x="\`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range parseChallenges(s) {
			if c.scheme == "" || c.params == nil {
				t.Fatalf("parseChallenges(%q): empty challenge %+v", s, c)
			}
		}
	})
}
