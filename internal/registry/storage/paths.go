package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// The layout is distribution's (registry:2), so either program serves
// what the other wrote:
//
//	/docker/registry/v2/blobs/<alg>/<first 2 hex>/<hex>/data
//	/docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/link
//	.../<name>/_manifests/revisions/<alg>/<hex>/link
//	.../<name>/_manifests/tags/<tag>/current/link
//	.../<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
//	.../<name>/_uploads/<id>/{data,startedat,hashstates/<alg>/<offset>}
//
// plus our referrers index, which registry:2 ignores:
//
//	.../<name>/_referrers/<alg>/<subject hex>/<alg>/<referrer hex>/link
const rootPath = "/docker/registry/v2"

const (
	blobsRoot = rootPath + "/blobs"
	reposRoot = rootPath + "/repositories"
)

func blobDir(d digest.Digest) string {
	h := d.Encoded()
	return blobsRoot + "/" + d.Algorithm().String() + "/" + h[:2] + "/" + h
}

func blobDataPath(d digest.Digest) string { return blobDir(d) + "/data" }

func repoPath(name string) string { return reposRoot + "/" + name }

func digestDir(d digest.Digest) string { return d.Algorithm().String() + "/" + d.Encoded() }

func layerLinkDir(name string, d digest.Digest) string {
	return repoPath(name) + "/_layers/" + digestDir(d)
}

func revisionsDir(name string) string { return repoPath(name) + "/_manifests/revisions" }

func revisionLinkDir(name string, d digest.Digest) string {
	return revisionsDir(name) + "/" + digestDir(d)
}

func tagsDir(name string) string { return repoPath(name) + "/_manifests/tags" }

func tagDir(name, tag string) string { return tagsDir(name) + "/" + tag }

func tagCurrentLink(name, tag string) string { return tagDir(name, tag) + "/current/link" }

func tagIndexLinkDir(name, tag string, d digest.Digest) string {
	return tagDir(name, tag) + "/index/" + digestDir(d)
}

func uploadsDir(name string) string { return repoPath(name) + "/_uploads" }

func uploadDir(name, id string) string { return uploadsDir(name) + "/" + id }

func referrersDir(name string, subject digest.Digest) string {
	return repoPath(name) + "/_referrers/" + digestDir(subject)
}

func referrerLinkDir(name string, subject, referrer digest.Digest) string {
	return referrersDir(name, subject) + "/" + digestDir(referrer)
}

// ParseLink parses the content of a link file: a digest string, with no
// newline as registry:2 writes it (surrounding white space is tolerated).
func ParseLink(b []byte) (digest.Digest, error) {
	d, err := digest.Parse(string(bytes.TrimSpace(b)))
	if err != nil {
		return "", fmt.Errorf("link file: %w", err)
	}
	return d, nil
}

// errBadLink marks a link file whose content is not a digest.
var errBadLink = errors.New("unreadable link file")

// readLink reads and parses a link file; driver errors pass through (test
// them with driver.IsNotFound), content that is not a digest is errBadLink.
func (r *Registry) readLink(ctx context.Context, p string) (digest.Digest, error) {
	b, err := r.d.GetContent(ctx, p)
	if err != nil {
		return "", err
	}
	d, err := ParseLink(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %w", p, errBadLink, err)
	}
	return d, nil
}

// putScratch writes content that can be recomputed if lost, without
// waiting for stable storage where the driver can (driver.ScratchWriter).
func putScratch(ctx context.Context, d driver.Driver, p string, content []byte) error {
	if s, ok := d.(driver.ScratchWriter); ok {
		return s.PutScratch(ctx, p, content)
	}
	return d.PutContent(ctx, p, content)
}

// writeLink writes a link file the way registry:2 does.
func (r *Registry) writeLink(ctx context.Context, p string, d digest.Digest) error {
	return r.d.PutContent(ctx, p, []byte(d.String()))
}
