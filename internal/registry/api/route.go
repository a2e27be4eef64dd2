package api

import (
	"errors"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/reference"
	digest "github.com/opencontainers/go-digest"
)

// routeKind names the endpoint a request path addresses.
type routeKind int

const (
	routeNone        routeKind = iota
	routeBase                  // /v2/
	routeCatalog               // /v2/_catalog
	routeTags                  // /v2/<name>/tags/list
	routeManifest              // /v2/<name>/manifests/<reference>
	routeBlob                  // /v2/<name>/blobs/<digest>
	routeUploadStart           // /v2/<name>/blobs/uploads/
	routeUpload                // /v2/<name>/blobs/uploads/<id>
	routeReferrers             // /v2/<name>/referrers/<digest>
)

func (k routeKind) String() string {
	return [...]string{"none", "base", "catalog", "tags", "manifest", "blob", "upload-start", "upload", "referrers"}[k]
}

// route is a parsed /v2/ path.
type route struct {
	Kind     routeKind
	Name     string // repository name
	Ref      string // tag or digest (manifests), digest (blobs, referrers), upload id
	UploadID string
}

// markers are the path segments that end a repository name. A name may
// itself contain "blobs" or "manifests" components, so the rightmost marker
// wins (and the longest, where two start at the same place).
var markers = []struct {
	text string
	kind routeKind
}{
	{"/blobs/uploads/", routeUpload},
	{"/blobs/", routeBlob},
	{"/manifests/", routeManifest},
	{"/referrers/", routeReferrers},
}

// parseRoute parses the part of a path after "/v2". It checks the shape of
// the repository name, but not references or digests, whose errors have
// their own codes; the caller checks those.
func parseRoute(rest string) (route, *Error) {
	switch rest {
	case "", "/":
		return route{Kind: routeBase}, nil
	case "/_catalog":
		return route{Kind: routeCatalog}, nil
	}
	if !strings.HasPrefix(rest, "/") {
		return route{}, notFound()
	}
	rest = rest[1:]
	best, bestLen, kind := -1, 0, routeNone
	for _, m := range markers {
		i := strings.LastIndex(rest, m.text)
		if i > best || (i == best && i >= 0 && len(m.text) > bestLen) {
			best, bestLen, kind = i, len(m.text), m.kind
		}
	}
	if i := len(rest) - len("/tags/list"); i > 0 && strings.HasSuffix(rest, "/tags/list") && i >= best {
		best, bestLen, kind = i, len("/tags/list"), routeTags
	}
	if i := len(rest) - len("/blobs/uploads"); i > 0 && strings.HasSuffix(rest, "/blobs/uploads") && i >= best {
		best, bestLen, kind = i, len("/blobs/uploads"), routeUploadStart
	}
	if best <= 0 {
		return route{}, notFound()
	}
	r := route{Kind: kind, Name: rest[:best]}
	tail := rest[best+bestLen:]
	if err := checkName(r.Name); err != nil {
		return route{}, err
	}
	switch kind {
	case routeTags, routeUploadStart:
		return r, nil
	case routeUpload:
		if tail == "" {
			r.Kind = routeUploadStart
			return r, nil
		}
		if reference.ValidateUploadID(tail) != nil {
			return route{}, &Error{Code: CodeBlobUploadUnknown}
		}
		r.UploadID = tail
		return r, nil
	}
	if tail == "" || strings.Contains(tail, "/") {
		return route{}, notFound()
	}
	r.Ref = tail
	return r, nil
}

func notFound() *Error { return &Error{Code: CodeNotFound} }

// checkName validates a repository name (reference.ValidateRepository).
func checkName(name string) *Error {
	if err := reference.ValidateRepository(name); err != nil {
		return apiErr(CodeNameInvalid, "invalid repository name", map[string]any{"name": truncate(name, 300), "reason": reference.Reason(err)})
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// isTag reports whether ref has the shape of a tag (reference.ValidateTag).
func isTag(ref string) bool { return reference.ValidateTag(ref) == nil }

// parseDigest parses and validates a digest with a supported algorithm
// (sha256 or sha512; reference.ParseDigest).
func parseDigest(s string) (digest.Digest, *Error) {
	d, err := reference.ParseDigest(s)
	if err != nil {
		return "", digestInvalid(s, err)
	}
	return d, nil
}

func digestInvalid(s string, err error) *Error {
	return apiErr(CodeDigestInvalid, "invalid digest", map[string]string{"digest": truncate(s, 200), "reason": reference.Reason(err)})
}

// parseReference parses a manifest reference: a digest or a tag
// (reference.ParseReference).
func parseReference(ref string) (tag string, dgst digest.Digest, e *Error) {
	tag, dgst, err := reference.ParseReference(ref)
	switch {
	case errors.Is(err, reference.ErrInvalidDigest):
		return "", "", digestInvalid(ref, err)
	case err != nil:
		return "", "", apiErr(CodeTagInvalid, "invalid tag", map[string]string{"tag": truncate(ref, 200), "reason": reference.Reason(err)})
	}
	return tag, dgst, nil
}
