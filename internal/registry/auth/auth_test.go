package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/token"
)

type fakeVerifier map[string]*token.Claims

func (f fakeVerifier) Verify(s string) (*token.Claims, error) {
	if c, ok := f[s]; ok {
		return c, nil
	}
	return nil, errors.New("bad signature")
}

func TestBearerChallenge(t *testing.T) {
	tests := []struct {
		name   string
		need   []Access
		reason string
		want   string
	}{
		{"ping", nil, "", `Bearer realm="https://auth/token",service="reg"`},
		{"pull", []Access{{"repository", "a/b", []string{"pull"}}}, "", `Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull"`},
		{"mount", []Access{{"repository", "a", []string{"pull", "push"}}, {"repository", "b", []string{"pull"}}}, "insufficient_scope",
			`Bearer realm="https://auth/token",service="reg",scope="repository:a:pull,push repository:b:pull",error="insufficient_scope"`},
		{"catalog", []Access{{"registry", "catalog", []string{"*"}}}, "invalid_token", `Bearer realm="https://auth/token",service="reg",scope="registry:catalog:*",error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BearerChallenge("https://auth/token", "reg", tt.need, tt.reason); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTokenCheckAccess(t *testing.T) {
	v := fakeVerifier{
		"puller": {Subject: "alice", Access: []token.ResourceActions{{Type: "repository", Name: "a", Actions: []string{"pull"}}}},
		"star":   {Subject: "root", Access: []token.ResourceActions{{Type: "repository", Name: "a", Actions: []string{"*"}}, {Type: "registry", Name: "catalog", Actions: []string{"*"}}}},
		"split":  {Subject: "bob", Access: []token.ResourceActions{{Type: "repository", Name: "a", Actions: []string{"pull"}}, {Type: "repository", Name: "a", Actions: []string{"push"}}}},
		"empty":  {Subject: "eve", Access: []token.ResourceActions{{Type: "repository", Name: "a", Actions: []string{}}}},
	}
	ctl, err := NewToken(TokenOptions{Realm: "https://auth/token", Service: "reg", Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	pull := []Access{{"repository", "a", []string{"pull"}}}
	push := []Access{{"repository", "a", []string{"pull", "push"}}}
	tests := []struct {
		name, header string
		need         []Access
		wantUser     string
		wantReason   string // "-" means allowed
	}{
		{"no header", "", pull, "", ""},
		{"basic header", "Basic YTpi", pull, "", ""},
		{"bad token", "Bearer nope", pull, "", "invalid_token"},
		{"pull ok", "Bearer puller", pull, "alice", "-"},
		{"push denied", "Bearer puller", push, "alice", "insufficient_scope"},
		{"star grants", "bearer star", push, "root", "-"},
		{"catalog", "Bearer star", []Access{{"registry", "catalog", []string{"*"}}}, "root", "-"},
		{"catalog denied", "Bearer puller", []Access{{"registry", "catalog", []string{"*"}}}, "alice", "insufficient_scope"},
		{"split entries", "Bearer split", push, "bob", "-"},
		{"empty grant", "Bearer empty", pull, "eve", "insufficient_scope"},
		{"other repo", "Bearer star", []Access{{"repository", "b", []string{"pull"}}}, "root", "insufficient_scope"},
		{"ping any token", "Bearer empty", nil, "eve", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			u, err := ctl.CheckAccess(context.Background(), r, tt.need)
			if tt.wantReason == "-" {
				if err != nil || u.Name != tt.wantUser {
					t.Fatalf("got %v, %v; want %s allowed", u, err, tt.wantUser)
				}
				return
			}
			c, ok := IsChallenge(err)
			if !ok {
				t.Fatalf("err = %v, want a challenge", err)
			}
			if c.Reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", c.Reason, tt.wantReason)
			}
			if want := BearerChallenge("https://auth/token", "reg", tt.need, tt.wantReason); c.Header != want {
				t.Errorf("header = %s, want %s", c.Header, want)
			}
		})
	}
}

func TestTokenAutoRedirect(t *testing.T) {
	ctl, err := NewToken(TokenOptions{Service: "reg", AutoRedirect: true, Verifier: fakeVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	r.Host = "registry.example.com:5000"
	r.Header.Set("X-Forwarded-Proto", "https")
	_, err = ctl.CheckAccess(context.Background(), r, nil)
	c, _ := IsChallenge(err)
	if c == nil || !strings.HasPrefix(c.Header, `Bearer realm="https://registry.example.com:5000/auth/token/"`) {
		t.Errorf("challenge = %v", err)
	}
}

func TestGrants(t *testing.T) {
	got := []bool{
		Grants([]string{"pull"}, []string{"pull"}),
		Grants([]string{"pull"}, []string{"pull", "push"}),
		Grants([]string{"*"}, []string{"delete"}),
		Grants(nil, nil),
		Grants(nil, []string{"pull"}),
	}
	if diff := cmp.Diff([]bool{true, false, true, true, false}, got); diff != "" {
		t.Error(diff)
	}
}

// parseChallenge is a strict reader of what BearerChallenge writes.
func parseChallenge(s string) (scheme string, params map[string]string, ok bool) {
	scheme, rest, found := strings.Cut(s, " ")
	if !found {
		return "", nil, false
	}
	params = map[string]string{}
	for rest != "" {
		k, v, found := strings.Cut(rest, "=")
		if !found || len(v) < 2 || v[0] != '"' {
			return "", nil, false
		}
		var b strings.Builder
		i := 1
		for ; i < len(v) && v[i] != '"'; i++ {
			if v[i] == '\\' {
				i++
				if i == len(v) {
					return "", nil, false
				}
			}
			b.WriteByte(v[i])
		}
		if i == len(v) {
			return "", nil, false
		}
		params[k] = b.String()
		rest = strings.TrimPrefix(v[i+1:], ",")
	}
	return scheme, params, true
}

func FuzzBearerChallenge(f *testing.F) {
	f.Add("https://auth/token", "reg", "a/b", "pull,push", "insufficient_scope")
	f.Add(`x"y\z`, "s\x00", "", "", "")
	f.Fuzz(func(t *testing.T, realm, service, name, actions, reason string) {
		for _, s := range []string{realm, service, name, actions, reason} {
			if strings.ContainsAny(s, "\x00\r\n\x7f") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
				return // not representable in a header; quote() drops them
			}
		}
		need := []Access{{"repository", name, strings.Split(actions, ",")}}
		h := BearerChallenge(realm, service, need, reason)
		scheme, p, ok := parseChallenge(h)
		if !ok || scheme != "Bearer" {
			t.Fatalf("unparseable challenge %q", h)
		}
		if p["realm"] != realm || p["service"] != service || p["scope"] != need[0].String() {
			t.Fatalf("round trip of %q lost values: %v", h, p)
		}
		if reason != "" && p["error"] != reason {
			t.Fatalf("error param lost: %v", p)
		}
	})
}
