package storage

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

// Digests the hand-written manifests below reference.
var (
	refA = digest.FromString("a")
	refB = digest.FromString("b")
	refC = digest.FromString("c")
	refD = digest.FromString("d")
)

// schema1Signed is a signed schema1 manifest as registry:2 stores it: the
// payload with its JWS signatures spliced in before the closing brace.
const schema1Signed = `{
   "schemaVersion": 1,
   "name": "legacy/app",
   "tag": "v1",
   "architecture": "amd64",
   "fsLayers": [
      {
         "blobSum": "` + "REFA" + `"
      },
      {
         "blobSum": "` + "REFB" + `"
      }
   ],
   "history": [
      {
         "v1Compatibility": "{\"id\":\"2\",\"parent\":\"1\"}"
      },
      {
         "v1Compatibility": "{\"id\":\"1\"}"
      }
   ],
   "signatures": [
      {
         "header": {
            "jwk": {
               "crv": "P-256",
               "kty": "EC",
               "x": "m7jYl7Wck6rY1TxvSKpw9mo2JxFzuDV2yLaK9l0AvrI",
               "y": "YQ7mCvH42cQmQf5QQoQ1FBd0bShBV16bDKyIFD0bhHU"
            },
            "alg": "ES256"
         },
         "signature": "c2lnbmF0dXJl",
         "protected": "eyJmb3JtYXRMZW5ndGgiOjEwMCwiZm9ybWF0VGFpbCI6IkNuMCIsInRpbWUiOiIyMDI0LTAxLTAxVDAwOjAwOjAwWiJ9"
      }
   ]
}`

func fill(s string) string {
	return strings.NewReplacer("REFA", refA.String(), "REFB", refB.String(), "REFC", refC.String(), "REFD", refD.String()).Replace(s)
}

func TestExtractReferences(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    *manifestRefs
		wantErr string // substring; "" = no error
	}{
		{
			name:    "schema1 signed",
			payload: schema1Signed,
			want:    &manifestRefs{Blobs: []digest.Digest{refA, refB}},
		},
		{
			name: "schema1 unsigned",
			payload: `{"schemaVersion":1,"name":"legacy/app","tag":"v1","architecture":"amd64",
				"fsLayers":[{"blobSum":"REFA"},{"blobSum":"REFA"}],"history":[{"v1Compatibility":"{}"},{"v1Compatibility":"{}"}]}`,
			want: &manifestRefs{Blobs: []digest.Digest{refA, refA}},
		},
		{
			name: "docker schema2",
			payload: `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
				"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"REFA"},
				"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"REFB"},
				          {"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":3,"digest":"REFC","urls":["https://example.com/l"]}]}`,
			want: &manifestRefs{Blobs: []digest.Digest{refA, refB, refC}},
		},
		{
			name: "docker manifest list",
			payload: `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
				"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":9,"digest":"REFA","platform":{"architecture":"amd64","os":"linux"}},
				             {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":9,"digest":"REFB","platform":{"architecture":"arm64","os":"linux"}}]}`,
			want: &manifestRefs{Children: []digest.Digest{refA, refB}},
		},
		{
			name: "OCI manifest",
			payload: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
				"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"REFA"},
				"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":3,"digest":"REFB"}]}`,
			want: &manifestRefs{Blobs: []digest.Digest{refA, refB}},
		},
		{
			name: "OCI manifest without mediaTypes (descriptors nor manifest)",
			payload: `{"schemaVersion":2,
				"config":{"size":2,"digest":"REFA"},
				"layers":[{"size":3,"digest":"REFB"},{"digest":"REFC"}]}`,
			want: &manifestRefs{Blobs: []digest.Digest{refA, refB, refC}},
		},
		{
			name: "OCI index with children and a subject",
			payload: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
				"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":9,"digest":"REFA"},
				             {"mediaType":"application/vnd.oci.image.index.v1+json","size":9,"digest":"REFB"}],
				"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":9,"digest":"REFC"}}`,
			want: &manifestRefs{Children: []digest.Digest{refA, refB}, Subject: refC},
		},
		{
			name:    "OCI index without children",
			payload: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
			want:    &manifestRefs{},
		},
		{
			name: "OCI image manifest as artifact with subject",
			payload: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom",
				"config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"REFA"},
				"layers":[{"mediaType":"application/spdx+json","size":3,"digest":"REFB"}],
				"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":9,"digest":"REFC"}}`,
			want: &manifestRefs{Blobs: []digest.Digest{refA, refB}, Subject: refC},
		},
		{
			name: "OCI artifact manifest (blobs)",
			payload: `{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"application/vnd.example.sig",
				"blobs":[{"mediaType":"application/octet-stream","size":3,"digest":"REFA"},{"digest":"REFB"}],
				"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":9,"digest":"REFD"}}`,
			want: &manifestRefs{Blobs: []digest.Digest{refA, refB}, Subject: refD},
		},
		{
			name:    "sha512 digests",
			payload: `{"schemaVersion":2,"config":{"digest":"` + digest.SHA512.FromString("x").String() + `"},"layers":[]}`,
			want:    &manifestRefs{Blobs: []digest.Digest{digest.SHA512.FromString("x")}},
		},
		{name: "not JSON", payload: `<html>oops</html>`, wantErr: "not a JSON object"},
		{name: "empty", payload: ``, wantErr: "not a JSON object"},
		{name: "JSON array", payload: `[{"digest":"REFA"}]`, wantErr: "not a JSON object"},
		{name: "truncated", payload: `{"schemaVersion":2,"layers":[{"digest":"REFA"}`, wantErr: "not a manifest"},
		{name: "unknown shape", payload: `{"schemaVersion":2,"mediaType":"application/vnd.example.thing","parts":[{"digest":"REFA"}]}`, wantErr: "no config, layers"},
		{name: "null fields only", payload: `{"schemaVersion":2,"config":null,"layers":null}`, wantErr: "no config, layers"},
		{name: "layers of the wrong type", payload: `{"schemaVersion":2,"layers":"REFA"}`, wantErr: "not a manifest"},
		{name: "config without digest", payload: `{"schemaVersion":2,"config":{"mediaType":"x","size":2},"layers":[]}`, wantErr: "config: digest"},
		{name: "layer digest malformed", payload: `{"schemaVersion":2,"config":{"digest":"REFA"},"layers":[{"digest":"sha256:xyz"}]}`, wantErr: "layers[0]: digest"},
		{name: "fsLayer blobSum malformed", payload: `{"schemaVersion":1,"fsLayers":[{"blobSum":"REFA"},{"blobSum":"md5:abc"}]}`, wantErr: "fsLayers[1].blobSum"},
		{name: "child digest malformed", payload: `{"schemaVersion":2,"manifests":[{"digest":"sha256:"}]}`, wantErr: "manifests[0]: digest"},
		{name: "subject digest malformed", payload: `{"schemaVersion":2,"layers":[],"subject":{"digest":"nope"}}`, wantErr: "subject: digest"},
		{name: "blobs digest malformed", payload: `{"blobs":[{"digest":"SHA256:ABC"}]}`, wantErr: "blobs[0]: digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := extractReferences([]byte(fill(tt.payload)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q (refs %+v)", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("references (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExtractReferencesKnowsWhatPutAccepts: every manifest the strict
// parser accepts, the extractor reads, with the same references.
func TestExtractReferencesKnowsWhatPutAccepts(t *testing.T) {
	for _, payload := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"REFA"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":1,"digest":"REFB"}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"REFC"}}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"REFA"}]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"REFA"},"layers":[]}`,
	} {
		payload = fill(payload)
		m, err := ParseManifest("", []byte(payload))
		if err != nil {
			t.Fatalf("ParseManifest: %v", err)
		}
		refs, err := extractReferences([]byte(payload))
		if err != nil {
			t.Fatalf("extractReferences: %v", err)
		}
		var want []digest.Digest
		if m.Config != nil {
			want = append(want, m.Config.Digest)
		}
		for _, l := range m.Layers {
			want = append(want, l.Digest)
		}
		for _, c := range m.Manifests {
			want = append(want, c.Digest)
		}
		if m.Subject != nil {
			want = append(want, m.Subject.Digest)
		}
		if diff := cmp.Diff(want, refs.All()); diff != "" {
			t.Errorf("%s: (-ParseManifest +extractReferences):\n%s", payload, diff)
		}
	}
}
