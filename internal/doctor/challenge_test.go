package doctor

import (
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/auth"
	"github.com/google/go-cmp/cmp"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    []Challenge
		wantErr string
	}{
		{
			name:    "distribution bearer",
			headers: []string{`Bearer realm="https://auth.example.com:5001/auth",service="Docker registry",scope="registry:catalog:*"`},
			want: []Challenge{{Scheme: "Bearer", Params: map[string]string{
				"realm": "https://auth.example.com:5001/auth", "service": "Docker registry", "scope": "registry:catalog:*"}}},
		},
		{
			name:    "error and description, spaces around separators",
			headers: []string{`bearer realm = "r" , service="s", error="invalid_token" ,error_description="the token \"x\" is bad"`},
			want: []Challenge{{Scheme: "bearer", Params: map[string]string{
				"realm": "r", "service": "s", "error": "invalid_token", "error_description": `the token "x" is bad`}}},
		},
		{
			name:    "basic with charset",
			headers: []string{`Basic realm="Registry Realm",charset="UTF-8"`},
			want:    []Challenge{{Scheme: "Basic", Params: map[string]string{"realm": "Registry Realm", "charset": "UTF-8"}}},
		},
		{
			name:    "two challenges in one header",
			headers: []string{`Basic realm="a", Bearer realm="https://x/auth",service="y"`},
			want: []Challenge{
				{Scheme: "Basic", Params: map[string]string{"realm": "a"}},
				{Scheme: "Bearer", Params: map[string]string{"realm": "https://x/auth", "service": "y"}},
			},
		},
		{
			name:    "two headers",
			headers: []string{`Negotiate`, `Bearer realm="r"`},
			want: []Challenge{
				{Scheme: "Negotiate", Params: map[string]string{}},
				{Scheme: "Bearer", Params: map[string]string{"realm": "r"}},
			},
		},
		{
			name:    "token68",
			headers: []string{`Negotiate a87421000492aa874209af8bc028==, Basic realm="b"`},
			want: []Challenge{
				{Scheme: "Negotiate", Params: map[string]string{}, Token68: "a87421000492aa874209af8bc028=="},
				{Scheme: "Basic", Params: map[string]string{"realm": "b"}},
			},
		},
		{
			name:    "unquoted URL value (lenient)",
			headers: []string{`Bearer realm=https://auth/token,service=reg`},
			want:    []Challenge{{Scheme: "Bearer", Params: map[string]string{"realm": "https://auth/token", "service": "reg"}}},
		},
		{
			name:    "empty list elements",
			headers: []string{` , Bearer realm="r",, service="s" ,`},
			want:    []Challenge{{Scheme: "Bearer", Params: map[string]string{"realm": "r", "service": "s"}}},
		},
		{name: "unclosed quote", headers: []string{`Bearer realm="r`}, wantErr: "not closed"},
		{name: "junk after quoted value", headers: []string{`Bearer realm="r"x`}, wantErr: "after the quoted value"},
		{name: "no scheme", headers: []string{`="r"`}, wantErr: "expected an authentication scheme"},
		{name: "duplicate parameter", headers: []string{`Bearer realm="a",realm="b"`}, wantErr: "given twice"},
		{name: "empty", headers: []string{""}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChallenges(tc.headers)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("challenges (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseRegistryChallenges reads what Gatehouse's registry sends.
func TestParseRegistryChallenges(t *testing.T) {
	h := auth.BearerChallenge(`https://a/"auth"`, "svc, 1", []auth.Access{
		{Type: "repository", Name: "a/b", Actions: []string{"pull", "push"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}, "invalid_token")
	got, err := ParseChallenges([]string{h})
	if err != nil {
		t.Fatal(err)
	}
	want := []Challenge{{Scheme: "Bearer", Params: map[string]string{
		"realm": `https://a/"auth"`, "service": "svc, 1", "scope": "repository:a/b:pull,push registry:catalog:*", "error": "invalid_token"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got, err = ParseChallenges([]string{auth.BasicChallenge("Registry")})
	if err != nil || len(got) != 1 || !got[0].Is("basic") || got[0].Params["realm"] != "Registry" {
		t.Errorf("Basic challenge parsed as %+v, %v", got, err)
	}
}

// FuzzParseChallenges: the parser never panics, and what Gatehouse's
// registry writes for any realm and service reads back unchanged.
func FuzzParseChallenges(f *testing.F) {
	f.Add(`Bearer realm="https://auth/token",service="registry"`, "https://auth/token", "registry")
	f.Add(`Basic realm="x", Negotiate abc==`, `a"b\c`, "")
	f.Add(`bearer realm=x,,error="invalid_token"`, "", ",")
	f.Fuzz(func(t *testing.T, header, realm, service string) {
		_, _ = ParseChallenges([]string{header})
		h := auth.BearerChallenge(realm, service, nil, "")
		got, err := ParseChallenges([]string{h})
		if err != nil {
			t.Fatalf("ParseChallenges(%q): %v", h, err)
		}
		// BearerChallenge drops control characters.
		clean := func(s string) string {
			var b []byte
			for i := 0; i < len(s); i++ {
				if s[i] >= 0x20 && s[i] != 0x7f {
					b = append(b, s[i])
				}
			}
			return string(b)
		}
		if len(got) != 1 || got[0].Params["realm"] != clean(realm) || got[0].Params["service"] != clean(service) {
			t.Fatalf("ParseChallenges(%q) = %+v, want realm %q service %q", h, got, clean(realm), clean(service))
		}
	})
}
