package storage

import (
	"errors"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func FuzzParseLink(f *testing.F) {
	for _, s := range []string{
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
		"sha512:abc", "", "sha256:", ":", "md5:d41d8cd98f00b204e9800998ecf8427e",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseLink(b)
		if err != nil {
			return
		}
		if d.Validate() != nil {
			t.Fatalf("ParseLink(%q) = %q, which does not validate", b, d)
		}
		// What parses can name a path: it must be a valid driver path part.
		_ = blobDataPath(d)
	})
}

func FuzzParseManifest(f *testing.F) {
	seeds := []struct{ ct, payload string }{
		{v1.MediaTypeImageManifest, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}`},
		{v1.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1}]}`},
		{MediaTypeDockerManifestList, `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`},
		{MediaTypeDockerSchema1JWS, `{"schemaVersion":1}`},
		{"", `{"schemaVersion":2,"subject":{"mediaType":"x","digest":"sha256:zz","size":-1}}`},
		{"application/json; charset=utf-8", `[]`},
		{"", `null`},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.payload))
	}
	f.Fuzz(func(t *testing.T, ct string, payload []byte) {
		m, err := ParseManifest(ct, payload)
		if err != nil {
			if !errors.Is(err, ErrManifestInvalid) {
				t.Fatalf("error %v does not wrap ErrManifestInvalid", err)
			}
			return
		}
		// Accepted manifests have a supported type and valid references.
		switch m.MediaType {
		case MediaTypeOCIManifest, MediaTypeDockerManifest:
			if m.Config == nil || m.Config.Digest.Validate() != nil {
				t.Fatalf("accepted an image manifest without a valid config: %+v", m)
			}
		case MediaTypeOCIIndex, MediaTypeDockerManifestList:
		default:
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		for _, l := range append(append([]v1.Descriptor{}, m.Layers...), m.Manifests...) {
			if l.Digest.Validate() != nil {
				t.Fatalf("accepted an invalid digest %q", l.Digest)
			}
		}
		_ = storedMediaType(payload)
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"library/alpine", "a__b", "a/../b", "A", "a-/b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		// An accepted name is a safe driver path below the repositories.
		if err := validPath(repoPath(name) + "/_manifests"); err != nil {
			t.Fatalf("accepted name %q makes a bad path: %v", name, err)
		}
	})
}
