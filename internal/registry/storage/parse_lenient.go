package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// manifestRefs is every digest a stored manifest references, as the GC
// mark phase needs them.
type manifestRefs struct {
	// Blobs are the config, layers, fsLayers (schema1) and blobs
	// (artifacts): content that lives only as long as a manifest
	// references it.
	Blobs []digest.Digest
	// Children are the manifests an index or manifest list lists.
	Children []digest.Digest
	// Subject is the manifest this one refers to (OCI referrers); ""
	// when there is none.
	Subject digest.Digest
}

// All returns every referenced digest: blobs, children and subject.
func (r *manifestRefs) All() []digest.Digest {
	all := make([]digest.Digest, 0, len(r.Blobs)+len(r.Children)+1)
	all = append(all, r.Blobs...)
	all = append(all, r.Children...)
	if r.Subject != "" {
		all = append(all, r.Subject)
	}
	return all
}

// refDescriptor is the one field of a descriptor GC needs. Everything else
// (mediaType, size, urls) may be missing or odd in what older registries
// accepted.
type refDescriptor struct {
	Digest string `json:"digest"`
}

// refManifest is the union of the reference-bearing fields of every
// manifest kind registry:2 and registry:3 store: Docker schema1 (signed or
// not), Docker schema2 and manifest lists, OCI manifests and indexes, and
// artifact manifests. Pointers tell a missing field from an empty one.
type refManifest struct {
	Config    *refDescriptor   `json:"config"`
	Layers    *[]refDescriptor `json:"layers"`
	Manifests *[]refDescriptor `json:"manifests"`
	Blobs     *[]refDescriptor `json:"blobs"`
	Subject   *refDescriptor   `json:"subject"`
	FSLayers  *[]struct {
		BlobSum string `json:"blobSum"`
	} `json:"fsLayers"`
}

// errNoReferences marks a JSON object that has none of the fields a
// manifest references content by.
var errNoReferences = errors.New("not a manifest GC knows: no config, layers, fsLayers, manifests, blobs or subject")

// extractReferences returns every digest payload references. It is
// lenient where the PUT parser is strict (no mediaType needed on the
// manifest or its descriptors, schema1 accepted, unknown fields ignored)
// and strict where GC must be: payload must be a JSON object with at least
// one reference-bearing field (possibly empty, as an index without
// children), and every referenced digest must parse. An error means GC
// cannot know what the manifest keeps alive.
func extractReferences(payload []byte) (*manifestRefs, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var raw refManifest
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return nil, fmt.Errorf("not a manifest: %w", err)
	}
	if raw.Config == nil && raw.Layers == nil && raw.Manifests == nil && raw.Blobs == nil &&
		raw.Subject == nil && raw.FSLayers == nil {
		return nil, errNoReferences
	}
	refs := &manifestRefs{}
	parse := func(field, s string) (digest.Digest, error) {
		dg, err := digest.Parse(s)
		if err != nil {
			return "", fmt.Errorf("%s: digest %q: %w", field, s, err)
		}
		return dg, nil
	}
	addList := func(field string, list *[]refDescriptor, to *[]digest.Digest) error {
		if list == nil {
			return nil
		}
		for i, d := range *list {
			dg, err := parse(fmt.Sprintf("%s[%d]", field, i), d.Digest)
			if err != nil {
				return err
			}
			*to = append(*to, dg)
		}
		return nil
	}
	if raw.Config != nil {
		dg, err := parse("config", raw.Config.Digest)
		if err != nil {
			return nil, err
		}
		refs.Blobs = append(refs.Blobs, dg)
	}
	if err := addList("layers", raw.Layers, &refs.Blobs); err != nil {
		return nil, err
	}
	if err := addList("blobs", raw.Blobs, &refs.Blobs); err != nil {
		return nil, err
	}
	if raw.FSLayers != nil {
		for i, l := range *raw.FSLayers {
			dg, err := parse(fmt.Sprintf("fsLayers[%d].blobSum", i), l.BlobSum)
			if err != nil {
				return nil, err
			}
			refs.Blobs = append(refs.Blobs, dg)
		}
	}
	if err := addList("manifests", raw.Manifests, &refs.Children); err != nil {
		return nil, err
	}
	if raw.Subject != nil {
		dg, err := parse("subject", raw.Subject.Digest)
		if err != nil {
			return nil, err
		}
		refs.Subject = dg
	}
	return refs, nil
}
