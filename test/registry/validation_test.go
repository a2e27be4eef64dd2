//go:build integration

package registry

import (
	"encoding/json"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// foreignManifest is an image manifest whose only layer is
// non-distributable, fetched from urls.
func foreignManifest(t *testing.T, im image, urls ...string) []byte {
	t.Helper()
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: im.cd, Size: int64(len(im.config))},
		Layers: []ocispec.Descriptor{{
			MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar",
			Digest:    digest.FromString(strings.Join(urls, " ")), Size: 1234, URLs: urls,
		}},
	}
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManifestURLRules checks that validation.manifests.urls is enforced
// by registry serve, and that validation.disabled turns it off.
func TestManifestURLRules(t *testing.T) {
	const rules = `validation:
  manifests:
    urls:
      allow:
        - ^https://layers\.example\.com/
      deny:
        - /blocked/
`
	tests := []struct {
		name     string
		extra    string
		url      string
		wantCode string // "" = accepted
	}{
		{"no section accepts https", "", "https://anywhere.example.net/x", ""},
		{"no section refuses ftp", "", "ftp://anywhere.example.net/x", "MANIFEST_INVALID"},
		{"no section refuses fragment", "", "https://anywhere.example.net/x#y", "MANIFEST_INVALID"},
		{"allowed", rules, "https://layers.example.com/x", ""},
		{"not allowed", rules, "https://anywhere.example.net/x", "MANIFEST_INVALID"},
		{"denied", rules, "https://layers.example.com/blocked/x", "MANIFEST_INVALID"},
		{"disabled", "validation:\n  disabled: true\n" + strings.TrimPrefix(rules, "validation:\n"), "ftp://anywhere.example.net/blocked/x", ""},
	}
	regs := map[string]*testenv.Registry{}
	for _, tt := range tests {
		if regs[tt.extra] == nil {
			regs[tt.extra] = testenv.StartRegistry(t, false, tt.extra)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := regs[tt.extra]
			im := pushImage(t, reg.URL(), "foreign/app", "base")
			resp, body := request(t, "PUT", reg.URL()+"/v2/foreign/app/manifests/foreign",
				foreignManifest(t, im, tt.url), "Content-Type", ocispec.MediaTypeImageManifest)
			if tt.wantCode == "" {
				if resp.StatusCode != 201 {
					t.Fatalf("PUT with url %q: %d %s, want 201", tt.url, resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != 400 || code(body) != tt.wantCode {
				t.Fatalf("PUT with url %q: %d %s, want 400 %s", tt.url, resp.StatusCode, body, tt.wantCode)
			}
			if !strings.Contains(string(body), "layers[0].urls[0]") {
				t.Errorf("error %s does not name the URL", body)
			}
		})
	}
}
