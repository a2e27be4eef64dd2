package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types.
const (
	MediaTypeOCIManifest        = v1.MediaTypeImageManifest
	MediaTypeOCIIndex           = v1.MediaTypeImageIndex
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeOCIEmpty           = v1.MediaTypeEmptyJSON
)

// MaxManifestSize is the largest manifest accepted (4 MiB, the limit the
// distribution spec suggests).
const MaxManifestSize = 4 << 20

// emptyJSON is the OCI empty descriptor's content ("{}"). PutManifest
// stores it when a manifest references it and it was not pushed.
var emptyJSON = v1.DescriptorEmptyJSON

// Manifest is the part of a manifest the registry acts on.
type Manifest struct {
	MediaType    string
	ArtifactType string
	Config       *v1.Descriptor
	Layers       []v1.Descriptor
	Manifests    []v1.Descriptor // index / manifest list children
	Subject      *v1.Descriptor
	Annotations  map[string]string
}

// IsIndex reports whether m lists other manifests.
func (m *Manifest) IsIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerManifestList
}

// rawManifest decodes every supported manifest kind at once.
type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *v1.Descriptor    `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Subject       *v1.Descriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	FSLayers      json.RawMessage   `json:"fsLayers"` // schema1
}

func invalid(format string, args ...any) error {
	return errorf(ErrManifestInvalid, nil, format, args...)
}

var errSchema1 = errorf(ErrManifestInvalid, nil,
	"schema1 is not supported, push with a current client (Docker schema2 or OCI manifests)")

// baseMediaType strips parameters ("; charset=utf-8") from a Content-Type.
func baseMediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

// ParseManifest parses and validates payload pushed with Content-Type
// contentType ("" = unknown). The payload's own mediaType decides; a
// different Content-Type is an error. OCI manifests without a mediaType
// take it from the Content-Type, or from their shape when that is absent
// too. Errors wrap ErrManifestInvalid.
func ParseManifest(contentType string, payload []byte) (*Manifest, error) {
	if len(payload) > MaxManifestSize {
		return nil, invalid("manifest is larger than %d bytes", MaxManifestSize)
	}
	ct := baseMediaType(contentType)
	if ct == MediaTypeDockerSchema1 || ct == MediaTypeDockerSchema1JWS {
		return nil, errSchema1
	}
	var raw rawManifest
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, invalid("manifest is not valid JSON")
	}
	if raw.SchemaVersion != nil && *raw.SchemaVersion == 1 || len(raw.FSLayers) > 0 ||
		raw.MediaType == MediaTypeDockerSchema1 || raw.MediaType == MediaTypeDockerSchema1JWS {
		return nil, errSchema1
	}
	if raw.SchemaVersion == nil || *raw.SchemaVersion != 2 {
		return nil, invalid("schemaVersion must be 2")
	}
	mt := raw.MediaType
	switch {
	case mt != "" && ct != "" && !ambiguousContentType(ct) && ct != mt:
		return nil, invalid("the payload's mediaType %q differs from the Content-Type %q", mt, ct)
	case mt == "" && ct != "" && !ambiguousContentType(ct):
		mt = ct
	case mt == "":
		mt = inferMediaType(raw.Manifests != nil)
	}
	m := &Manifest{
		MediaType:    mt,
		ArtifactType: raw.ArtifactType,
		Config:       raw.Config,
		Layers:       raw.Layers,
		Manifests:    raw.Manifests,
		Subject:      raw.Subject,
		Annotations:  raw.Annotations,
	}
	switch mt {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if raw.MediaType == "" && mt == MediaTypeDockerManifest {
			return nil, invalid("Docker schema2 manifests must carry their mediaType")
		}
		if raw.Manifests != nil {
			return nil, invalid("an image manifest has no manifests list")
		}
		if m.Config == nil {
			return nil, invalid("the manifest has no config")
		}
		if err := checkDescriptor("config", *m.Config); err != nil {
			return nil, err
		}
		for i, l := range m.Layers {
			if err := checkDescriptor(fmt.Sprintf("layers[%d]", i), l); err != nil {
				return nil, err
			}
		}
	case MediaTypeOCIIndex, MediaTypeDockerManifestList:
		if raw.MediaType == "" && mt == MediaTypeDockerManifestList {
			return nil, invalid("Docker manifest lists must carry their mediaType")
		}
		if m.Config != nil || m.Layers != nil {
			return nil, invalid("an index has no config or layers")
		}
		for i, c := range m.Manifests {
			if err := checkDescriptor(fmt.Sprintf("manifests[%d]", i), c); err != nil {
				return nil, err
			}
		}
	default:
		return nil, invalid("unsupported manifest media type %q", mt)
	}
	if m.Subject != nil {
		if err := checkDescriptor("subject", *m.Subject); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ambiguousContentType is a Content-Type that says nothing about the
// manifest kind.
func ambiguousContentType(ct string) bool {
	return ct == "application/json" || ct == "application/octet-stream"
}

func inferMediaType(hasManifests bool) string {
	if hasManifests {
		return MediaTypeOCIIndex
	}
	return MediaTypeOCIManifest
}

func checkDescriptor(field string, d v1.Descriptor) error {
	if d.MediaType == "" {
		return invalid("%s has no mediaType", field)
	}
	if err := d.Digest.Validate(); err != nil {
		return invalid("%s has an invalid digest", field)
	}
	if d.Size < 0 {
		return invalid("%s has a negative size", field)
	}
	return nil
}

// storedMediaType tells a stored manifest's media type from its payload,
// as registry:2 does: the mediaType field, else the shape.
func storedMediaType(payload []byte) string {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return MediaTypeOCIManifest
	}
	if probe.MediaType != "" {
		return probe.MediaType
	}
	return inferMediaType(len(probe.Manifests) > 0 && !bytes.Equal(probe.Manifests, []byte("null")))
}

// parseStored parses a manifest read back from storage, leniently (no
// Content-Type to compare against).
func parseStored(payload []byte) (*Manifest, error) {
	return ParseManifest("", payload)
}

// descriptorOf describes a stored manifest for the referrers API.
func descriptorOf(dgst digest.Digest, payload []byte, m *Manifest) Descriptor {
	d := Descriptor{MediaType: m.MediaType, Digest: dgst, Size: int64(len(payload)), ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	if d.ArtifactType == "" && m.Config != nil {
		d.ArtifactType = m.Config.MediaType
	}
	return d
}
