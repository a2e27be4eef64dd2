package storage

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func mustPolicy(t testing.TB, disabled bool, allow, deny []string) URLPolicy {
	t.Helper()
	p, err := CompileURLPolicy(disabled, allow, deny)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPutManifestLayerURLs(t *testing.T) {
	allow := []string{`^https://store\.example\.com/`, `^http://mirror\.example\.org/`}
	deny := []string{`/forbidden/`}
	tests := []struct {
		name    string
		policy  URLPolicy
		urls    []string
		wantMsg string // "" = accepted; else a substring of the error message
	}{
		{"no rules https", URLPolicy{}, []string{"https://anywhere.example.net/blob"}, ""},
		{"no rules http", URLPolicy{}, []string{"http://anywhere.example.net/blob"}, ""},
		{"no rules bad scheme", URLPolicy{}, []string{"ftp://anywhere.example.net/blob"}, "scheme must be http or https"},
		{"no rules relative", URLPolicy{}, []string{"/blobs/x"}, "scheme must be http or https"},
		{"no rules empty", URLPolicy{}, []string{""}, "scheme must be http or https"},
		{"no rules no host", URLPolicy{}, []string{"https:///blob"}, "must name a host"},
		{"no rules opaque", URLPolicy{}, []string{"https:blob"}, "must name a host"},
		{"no rules fragment", URLPolicy{}, []string{"https://a.example/blob#part"}, "must not have a fragment"},
		{"no rules empty fragment", URLPolicy{}, []string{"https://a.example/blob#"}, "must not have a fragment"},
		{"no rules unparsable", URLPolicy{}, []string{"https://a.example/%zz"}, "layers[0].urls[0] is not a valid URL"},
		{"second url checked", URLPolicy{}, []string{"https://a.example/x", "gopher://a.example/x"}, "layers[0].urls[1]"},
		{"allow first", mustPolicy(t, false, allow, nil), []string{"https://store.example.com/blobs/sha256/ab"}, ""},
		{"allow second", mustPolicy(t, false, allow, nil), []string{"http://mirror.example.org/x"}, ""},
		{"allow scheme case folded", mustPolicy(t, false, allow, nil), []string{"HTTPS://store.example.com/x"}, ""},
		{"allow miss", mustPolicy(t, false, allow, nil), []string{"https://evil.example/x"}, "matches no validation.manifests.urls.allow expression"},
		{"allow all must match", mustPolicy(t, false, allow, nil), []string{"https://store.example.com/x", "https://evil.example/x"}, "layers[0].urls[1]"},
		{"allow still structural", mustPolicy(t, false, []string{"."}, nil), []string{"ftp://store.example.com/x"}, "scheme must be http or https"},
		{"deny hit", mustPolicy(t, false, nil, deny), []string{"https://a.example/forbidden/x"}, `matches the validation.manifests.urls.deny expression "/forbidden/"`},
		{"deny miss", mustPolicy(t, false, nil, deny), []string{"https://a.example/fine/x"}, ""},
		{"deny beats allow", mustPolicy(t, false, allow, deny), []string{"https://store.example.com/forbidden/x"}, "validation.manifests.urls.deny"},
		{"password not shown", mustPolicy(t, false, allow, nil), []string{"https://user:hunter2@evil.example/x"}, "user:xxxxx@evil.example"},
		{"disabled accepts anything", mustPolicy(t, true, allow, deny), []string{"ftp://evil.example/forbidden/#x"}, ""},
	}
	ctx := context.Background()
	reg := New(drivers(t)["inmemory"](t), Options{})
	r := mustRepo(t, reg, "urls/repo")
	cfg := pushBlob(t, r, []byte(`{"os":"linux"}`))
	local := pushBlob(t, r, []byte("local layer"))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg.opts.ManifestURLs = tt.policy
			foreign := v1.Descriptor{
				MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar",
				Digest:    digest.FromString(tt.name), Size: int64(100 + i), URLs: tt.urls,
			}
			payload := image(t, cfg, []v1.Descriptor{foreign, local}, nil, "")
			_, err := r.PutManifest(ctx, "latest", v1.MediaTypeImageManifest, payload)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("PutManifest: %v, want accepted", err)
				}
				return
			}
			wantErr(t, "PutManifest", err, ErrManifestInvalid)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not a *storage.Error", err)
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Message, tt.wantMsg)
			}
			if strings.Contains(e.Error(), "hunter2") {
				t.Errorf("error %q repeats the URL's password", e.Error())
			}
		})
	}
	reg.opts.ManifestURLs = URLPolicy{}
}

func TestURLPolicyLayersOnly(t *testing.T) {
	// Only layers are subject to the rules; a manifest without foreign
	// layers passes even the strictest policy.
	p := mustPolicy(t, false, []string{`^$`}, []string{`.`})
	m := &Manifest{
		Config: &v1.Descriptor{URLs: []string{"ftp://config.example/"}},
		Layers: []v1.Descriptor{{Digest: digest.FromString("a")}},
	}
	if err := p.checkLayerURLs(m); err != nil {
		t.Errorf("checkLayerURLs: %v", err)
	}
}

func TestCompileURLPolicy(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		wantErr     string
		wantAllow   []string
		wantDeny    []string
	}{
		{"empty", nil, nil, "", nil, nil},
		{"both", []string{"^https://a/", "b"}, []string{"c"}, "", []string{"^https://a/", "b"}, []string{"c"}},
		{"bad allow", []string{"ok", "("}, nil, "validation.manifests.urls.allow.1", nil, nil},
		{"bad deny", nil, []string{"["}, "validation.manifests.urls.deny.0", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompileURLPolicy(false, tt.allow, tt.deny)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := func(res []*regexp.Regexp) []string {
				var s []string
				for _, re := range res {
					s = append(s, re.String())
				}
				return s
			}
			if diff := cmp.Diff(tt.wantAllow, got(p.Allow)); diff != "" {
				t.Errorf("Allow (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDeny, got(p.Deny)); diff != "" {
				t.Errorf("Deny (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzURLPolicyCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://store.example.com/blobs/sha256/ab", "http://a/", "ftp://a/", "https://a/#", "https://u:p@a/x",
		"https:///x", "%zz", "", "https://a/forbidden/", "HTTP://A/",
	} {
		f.Add(s)
	}
	p := mustPolicy(f, false, []string{`^https?://`}, []string{`/forbidden/`})
	f.Fuzz(func(t *testing.T, raw string) {
		err := p.checkURL("layers[0].urls[0]", raw)
		if err != nil && !errors.Is(err, ErrManifestInvalid) {
			t.Fatalf("checkURL(%q) = %v, not a MANIFEST_INVALID", raw, err)
		}
		if err == nil && strings.Contains(raw, "#") {
			t.Fatalf("checkURL(%q) accepted a fragment", raw)
		}
	})
}
