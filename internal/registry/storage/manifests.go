package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/gatehouse-registry/gatehouse/internal/reference"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ValidateTag checks a tag with reference.ValidateTag.
func ValidateTag(tag string) error {
	if err := reference.ValidateTag(tag); err != nil {
		return errorf(ErrTagInvalid, map[string]any{"tag": tag}, "%s", reference.Reason(err))
	}
	return nil
}

// parseRef splits a manifest reference into a digest or a tag, as
// reference.ParseReference does.
func parseRef(ref string) (dgst digest.Digest, tag string, err error) {
	tag, dgst, err = reference.ParseReference(ref)
	switch {
	case errors.Is(err, reference.ErrInvalidDigest):
		return "", "", digestInvalid(ref, err)
	case err != nil:
		return "", "", errorf(ErrTagInvalid, map[string]any{"tag": ref}, "%s", reference.Reason(err))
	}
	return dgst, tag, nil
}

func manifestUnknown(ref string) error {
	return errorf(ErrManifestUnknown, map[string]any{"reference": ref}, "manifest unknown to registry")
}

// PutResult is what PutManifest stored.
type PutResult struct {
	Digest  digest.Digest
	Subject *digest.Digest // the manifest's subject, if it has one
}

// PutManifest validates and stores a manifest under ref (a tag or a
// digest). Pushed by digest, the payload must hash to it (with the ref's
// algorithm); by tag, it is stored under its sha256 digest and the tag
// moves to it. Every blob it references must be linked into the
// repository (except non-distributable layers, which carry urls and must
// pass Options.ManifestURLs instead), and an index's children must be
// manifests of the repository.
func (r *Repository) PutManifest(ctx context.Context, ref, mediaType string, payload []byte) (PutResult, error) {
	return r.putManifest(ctx, ref, mediaType, payload, true)
}

// putManifest stores a manifest; check applies the reference and URL
// rules (off for manifests a pull-through cache copies from an upstream).
func (r *Repository) putManifest(ctx context.Context, ref, mediaType string, payload []byte, check bool) (PutResult, error) {
	if err := r.reg.writable(); err != nil {
		return PutResult{}, err
	}
	refDigest, tag, err := parseRef(ref)
	if err != nil {
		return PutResult{}, err
	}
	m, err := ParseManifest(mediaType, payload)
	if err != nil {
		return PutResult{}, err
	}
	if check {
		if err := r.reg.opts.ManifestURLs.checkLayerURLs(m); err != nil {
			return PutResult{}, err
		}
	}
	alg := digest.Canonical
	if refDigest != "" {
		alg = refDigest.Algorithm()
	}
	dgst := alg.FromBytes(payload)
	if refDigest != "" && dgst != refDigest {
		return PutResult{}, errorf(ErrDigestInvalid, map[string]any{"digest": refDigest.String()},
			"manifest digest did not match the reference")
	}
	if check {
		if err := r.checkReferences(ctx, m); err != nil {
			return PutResult{}, err
		}
	}
	d := r.reg.d
	if fi, err := d.Stat(ctx, blobDataPath(dgst)); err != nil || fi.Size() != int64(len(payload)) {
		if err := d.PutContent(ctx, blobDataPath(dgst), payload); err != nil {
			return PutResult{}, err
		}
	}
	if err := r.reg.writeLink(ctx, revisionLinkDir(r.name, dgst)+"/link", dgst); err != nil {
		return PutResult{}, err
	}
	res := PutResult{Digest: dgst}
	if m.Subject != nil {
		s := m.Subject.Digest
		res.Subject = &s
		if err := r.reg.writeLink(ctx, referrerLinkDir(r.name, s, dgst)+"/link", dgst); err != nil {
			return PutResult{}, err
		}
	}
	if tag != "" {
		if err := r.reg.setTag(ctx, r.name, tag, dgst); err != nil {
			return PutResult{}, err
		}
	}
	r.reg.cacheSet(ctx, "", Descriptor{MediaType: BlobMediaType, Digest: dgst, Size: int64(len(payload))})
	r.reg.payloads.Put(dgst, payload)
	return res, nil
}

// setTag points tag at manifest dgst: the tag's index link first, its
// current link last. A new tag on a driver with atomic directories is
// created whole, both links at once, so that a tag directory never exists
// without its current link and Tags can list the directory as it is.
func (reg *Registry) setTag(ctx context.Context, name, tag string, dgst digest.Digest) error {
	// After the write, whatever happened to it: a failed write may still
	// have moved the tag.
	defer reg.clearLink(ctx, cache.Link{Repo: name, Kind: cache.TagLink, Name: tag})
	if reg.dirs != nil {
		_, err := reg.d.Stat(ctx, tagCurrentLink(name, tag))
		switch {
		case driver.IsNotFound(err):
			link := []byte(dgst.String())
			err = reg.dirs.CreateDir(ctx, tagDir(name, tag), map[string][]byte{
				"current/link":                       link,
				"index/" + digestDir(dgst) + "/link": link,
			})
			if err == nil {
				return nil
			}
			if !errors.Is(err, fs.ErrExist) {
				return err
			}
			// Created meanwhile by another push, or a directory left
			// without its current link by an older version: write
			// the links into it.
		case err != nil:
			return err
		}
	}
	if err := reg.writeLink(ctx, tagIndexLinkDir(name, tag, dgst)+"/link", dgst); err != nil {
		return err
	}
	return reg.writeLink(ctx, tagCurrentLink(name, tag), dgst)
}

// removeTag removes tag's directory, at once where the driver can.
func (reg *Registry) removeTag(ctx context.Context, name, tag string) error {
	defer reg.clearLink(ctx, cache.Link{Repo: name, Kind: cache.TagLink, Name: tag})
	if reg.dirs != nil {
		return reg.dirs.RemoveDir(ctx, tagDir(name, tag))
	}
	return reg.d.Delete(ctx, tagDir(name, tag))
}

// checkReferences verifies that what m points to is in the repository.
func (r *Repository) checkReferences(ctx context.Context, m *Manifest) error {
	blobUnknownErr := func(d v1.Descriptor) error {
		return errorf(ErrManifestBlobUnknown, map[string]any{"digest": d.Digest.String()},
			"manifest references blob %s, unknown to the repository", d.Digest)
	}
	var blobs []v1.Descriptor
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 {
			continue // non-distributable: fetched from its urls, not pushed
		}
		blobs = append(blobs, l)
	}
	for _, b := range blobs {
		desc, err := r.StatBlob(ctx, b.Digest)
		if err == nil {
			if desc.Size != b.Size {
				return errorf(ErrManifestInvalid, map[string]any{"digest": b.Digest.String()},
					"descriptor size %d differs from the blob's size %d", b.Size, desc.Size)
			}
			continue
		}
		if !isErr(err, ErrBlobUnknown) {
			return err
		}
		if b.Digest == emptyJSON.Digest && b.Size == emptyJSON.Size {
			// The empty config is well known; store it rather than
			// refusing artifacts whose clients did not push it.
			if err := r.putSmallBlob(ctx, b.Digest, emptyJSON.Data); err != nil {
				return err
			}
			continue
		}
		return blobUnknownErr(b)
	}
	for _, c := range m.Manifests {
		if _, err := r.reg.readLink(ctx, revisionLinkDir(r.name, c.Digest)+"/link"); err != nil {
			if driver.IsNotFound(err) {
				return errorf(ErrManifestBlobUnknown, map[string]any{"digest": c.Digest.String()},
					"index references manifest %s, unknown to the repository", c.Digest)
			}
			return err
		}
	}
	return nil
}

// putSmallBlob stores content as blob dgst and links it into r.
func (r *Repository) putSmallBlob(ctx context.Context, dgst digest.Digest, content []byte) error {
	if dgst.Algorithm().FromBytes(content) != dgst {
		return fmt.Errorf("putSmallBlob: content does not match %s", dgst)
	}
	if err := r.reg.d.PutContent(ctx, blobDataPath(dgst), content); err != nil {
		return err
	}
	return r.linkBlob(ctx, Descriptor{MediaType: BlobMediaType, Digest: dgst, Size: int64(len(content))})
}

// resolve turns a reference into the digest of a manifest of r. A tag
// whose current link is missing or unreadable, or names a manifest whose
// revision link is gone, is unknown (see servableTag).
func (r *Repository) resolve(ctx context.Context, ref string) (digest.Digest, error) {
	dgst, tag, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	if tag != "" {
		dgst, err = r.reg.readCachedLink(ctx, cache.Link{Repo: r.name, Kind: cache.TagLink, Name: tag}, func() (digest.Digest, error) {
			return r.reg.readLink(ctx, tagCurrentLink(r.name, tag))
		})
		if err != nil {
			if driver.IsNotFound(err) || errors.Is(err, errBadLink) {
				return "", manifestUnknown(ref)
			}
			return "", err
		}
	}
	ok, err := r.reg.hasRevisionCached(ctx, r.name, dgst)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", manifestUnknown(ref)
	}
	return dgst, nil
}

// readCachedLink returns what link l names: from the link cache if it
// has it, else from read (storage), filling the cache. A link that read
// cannot find is not cached (only what exists is).
func (reg *Registry) readCachedLink(ctx context.Context, l cache.Link, read func() (digest.Digest, error)) (digest.Digest, error) {
	if reg.links == nil {
		return read()
	}
	target, claim, ok := reg.links.LookupLink(ctx, l)
	if ok {
		return target, nil
	}
	target, err := read()
	if err != nil {
		return "", err
	}
	reg.links.FillLink(ctx, l, claim, target)
	return target, nil
}

// clearLink forgets l in the link cache; every path that changes or
// removes a tag's current link or a revision link calls it after the
// storage write.
func (reg *Registry) clearLink(ctx context.Context, l cache.Link) {
	if reg.links != nil {
		reg.links.ClearLink(ctx, l)
	}
}

// errNoRevision is hasRevisionCached's "no revision link": not cached.
var errNoRevision = errors.New("no revision link")

// hasRevisionCached is hasRevision through the link cache.
func (reg *Registry) hasRevisionCached(ctx context.Context, name string, dgst digest.Digest) (bool, error) {
	_, err := reg.readCachedLink(ctx, cache.Link{Repo: name, Kind: cache.RevisionLink, Name: dgst.String()}, func() (digest.Digest, error) {
		ok, err := reg.hasRevision(ctx, name, dgst)
		if err == nil && !ok {
			err = errNoRevision
		}
		return dgst, err
	})
	if errors.Is(err, errNoRevision) {
		return false, nil
	}
	return err == nil, err
}

// hasRevision reports whether manifest dgst has a revision link in repo
// name holding dgst.
func (reg *Registry) hasRevision(ctx context.Context, name string, dgst digest.Digest) (bool, error) {
	linked, err := reg.readLink(ctx, revisionLinkDir(name, dgst)+"/link")
	switch {
	case err == nil && linked == dgst:
		return true, nil
	case err == nil:
		reg.log.WarnContext(ctx, "revision link holds another digest", "repository", name, "digest", dgst, "link", linked)
		return false, nil
	case driver.IsNotFound(err) || errors.Is(err, errBadLink):
		return false, nil
	}
	return false, err
}

// servableTag returns the manifest tag points at, or ErrManifestUnknown
// unless the tag can be served: its current link reads as a digest whose
// revision link and manifest data exist. A crash or damage can leave a tag
// directory short of that (a push killed between the tag's index link and
// its current link, storage written before the write order was fixed);
// such a tag is neither listed nor served.
func (reg *Registry) servableTag(ctx context.Context, name, tag string) (digest.Digest, error) {
	dgst, err := reg.readLink(ctx, tagCurrentLink(name, tag))
	if err != nil {
		if driver.IsNotFound(err) || errors.Is(err, errBadLink) {
			return "", manifestUnknown(tag)
		}
		return "", err
	}
	ok, err := reg.hasRevision(ctx, name, dgst)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", manifestUnknown(tag)
	}
	fi, err := reg.d.Stat(ctx, blobDataPath(dgst))
	if err != nil {
		if driver.IsNotFound(err) {
			return "", manifestUnknown(tag)
		}
		return "", err
	}
	if fi.IsDir() {
		return "", manifestUnknown(tag)
	}
	return dgst, nil
}

// GetManifest returns a manifest by tag or digest, with its media type as
// stored in its payload. The payload is the caller's own copy.
//
// The reference is resolved on every call (the tag's current link, then
// the revision link, each through the link cache when there is one); only
// then is the payload taken from the in-process payload cache, which is
// keyed by digest and so never stale. A payload enters that cache only
// once it hashed to its digest.
func (r *Repository) GetManifest(ctx context.Context, ref string) (mediaType string, payload []byte, dgst digest.Digest, err error) {
	dgst, err = r.resolve(ctx, ref)
	if err != nil {
		return "", nil, "", err
	}
	if p, ok := r.reg.payloads.Get(dgst); ok {
		return storedMediaType(p), p, dgst, nil
	}
	payload, err = r.reg.d.GetContent(ctx, blobDataPath(dgst))
	if err != nil {
		if driver.IsNotFound(err) {
			return "", nil, "", manifestUnknown(ref)
		}
		return "", nil, "", err
	}
	if dgst.Algorithm().Available() && dgst.Algorithm().FromBytes(payload) == dgst {
		r.reg.payloads.Put(dgst, payload)
	}
	return storedMediaType(payload), payload, dgst, nil
}

// StatManifest describes a manifest by tag or digest.
func (r *Repository) StatManifest(ctx context.Context, ref string) (Descriptor, error) {
	mt, payload, dgst, err := r.GetManifest(ctx, ref)
	if err != nil {
		return Descriptor{}, err
	}
	desc := Descriptor{MediaType: mt, Digest: dgst, Size: int64(len(payload))}
	if m, err := parseStored(payload); err == nil {
		desc = descriptorOf(dgst, payload, m)
	}
	return desc, nil
}

// DeleteManifest removes the manifest's revision link, the tags pointing
// to it, its entries in other tags' history and its referrers index
// entry. The bytes stay until GC.
func (r *Repository) DeleteManifest(ctx context.Context, dgst digest.Digest) error {
	if err := r.reg.deletable(); err != nil {
		return err
	}
	if err := checkDigest(dgst); err != nil {
		return err
	}
	if _, err := r.resolve(ctx, dgst.String()); err != nil {
		return err
	}
	return r.reg.unlinkManifest(ctx, r.name, dgst)
}

// unlinkManifest removes every link to manifest dgst in repo name. The
// order makes a crash at any point harmless: first the tags pointing at
// it (a tag never outlives its manifest's revision link), then its entries
// in other tags' history and in the referrers index, and the revision
// link last.
func (reg *Registry) unlinkManifest(ctx context.Context, name string, dgst digest.Digest) error {
	d := reg.d
	var subject digest.Digest
	if payload, err := d.GetContent(ctx, blobDataPath(dgst)); err == nil {
		if m, err := parseStored(payload); err == nil && m.Subject != nil {
			subject = m.Subject.Digest
		}
	}
	tags, err := reg.listTags(ctx, name)
	if err != nil {
		return err
	}
	for _, tag := range tags {
		cur, err := reg.readLink(ctx, tagCurrentLink(name, tag))
		switch {
		case err == nil && cur == dgst:
			if err := reg.removeTag(ctx, name, tag); err != nil && !driver.IsNotFound(err) {
				return err
			}
			continue
		case err != nil && !driver.IsNotFound(err) && !errors.Is(err, errBadLink):
			return err
		}
		if err := d.Delete(ctx, tagIndexLinkDir(name, tag, dgst)); err != nil && !driver.IsNotFound(err) {
			return err
		}
	}
	if subject != "" {
		if err := d.Delete(ctx, referrerLinkDir(name, subject, dgst)); err != nil && !driver.IsNotFound(err) {
			return err
		}
	}
	err = d.Delete(ctx, revisionLinkDir(name, dgst))
	// Even after a failed delete: it may have removed the link.
	reg.clearLink(ctx, cache.Link{Repo: name, Kind: cache.RevisionLink, Name: dgst.String()})
	if err != nil && !driver.IsNotFound(err) {
		return err
	}
	reg.cacheClear(ctx, name, dgst)
	return nil
}

// listTags returns the repository's tag names, sorted; none if it has none.
func (reg *Registry) listTags(ctx context.Context, name string) ([]string, error) {
	paths, err := reg.d.List(ctx, tagsDir(name))
	if err != nil {
		if driver.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	tags := make([]string, 0, len(paths))
	for _, p := range paths {
		tags = append(tags, p[strings.LastIndexByte(p, '/')+1:])
	}
	slices.Sort(tags)
	return tags, nil
}

// DeleteTag removes a tag; the manifest stays. A tag that cannot be
// served (see servableTag) is unknown, as it is to GetManifest and Tags;
// what is left of it in storage is removed all the same, so damaged
// storage heals when a client deletes what it no longer sees.
func (r *Repository) DeleteTag(ctx context.Context, tag string) error {
	if err := r.reg.deletable(); err != nil {
		return err
	}
	if err := ValidateTag(tag); err != nil {
		return err
	}
	_, err := r.reg.servableTag(ctx, r.name, tag)
	if err == nil {
		return r.reg.removeTag(ctx, r.name, tag)
	}
	if !isErr(err, ErrManifestUnknown) {
		return err
	}
	if err := r.reg.removeTag(ctx, r.name, tag); err == nil {
		r.reg.log.WarnContext(ctx, "removed a tag that could not be served", "repository", r.name, "tag", tag)
	} else if !driver.IsNotFound(err) {
		return err
	}
	return manifestUnknown(tag)
}

// exists reports whether the repository has anything stored.
func (r *Repository) exists(ctx context.Context) (bool, error) {
	_, err := r.reg.d.Stat(ctx, repoPath(r.name))
	if err == nil {
		return true, nil
	}
	if driver.IsNotFound(err) {
		return false, nil
	}
	return false, err
}

// Tags lists tags after last (exclusive; "" = from the start), at most n
// (n <= 0 = all), sorted lexically. more reports whether tags remain. An
// unknown repository is ErrNameUnknown.
//
// registry:2 lists every tag directory, which after a crash between a
// tag's links can name a tag that answers 404 to a pull. Where the driver
// has atomic directories, tags are created and removed whole (setTag,
// removeTag) after their manifest is stored and before it is unlinked, so
// one directory read lists only tags that can be served. Elsewhere each
// tag is checked (servableTag): three small reads per tag.
func (r *Repository) Tags(ctx context.Context, last string, n int) (tags []string, more bool, err error) {
	if r.reg.dirs != nil {
		return r.listedTags(ctx, last, n)
	}
	ok, err := r.exists(ctx)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, errorf(ErrNameUnknown, map[string]any{"name": r.name}, "repository name not known to registry")
	}
	all, err := r.reg.listTags(ctx, r.name)
	if err != nil {
		return nil, false, err
	}
	candidates, _, _ := page(all, last, 0, strings.Compare)
	tags = []string{}
	for _, tag := range candidates {
		if _, err := r.reg.servableTag(ctx, r.name, tag); err != nil {
			if isErr(err, ErrManifestUnknown) {
				continue
			}
			return nil, false, err
		}
		if n > 0 && len(tags) == n {
			return tags, true, nil
		}
		tags = append(tags, tag)
	}
	return tags, false, nil
}

// listedTags is Tags where tags are created and removed whole: the tags
// directory as it is, read once per change of it (tagCache), so that the
// pages of one list do not each read it again.
func (r *Repository) listedTags(ctx context.Context, last string, n int) ([]string, bool, error) {
	fi, err := r.reg.d.Stat(ctx, tagsDir(r.name))
	if err != nil {
		if !driver.IsNotFound(err) {
			return nil, false, err
		}
		ok, err := r.exists(ctx)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, errorf(ErrNameUnknown, map[string]any{"name": r.name}, "repository name not known to registry")
		}
		return []string{}, false, nil
	}
	all, ok := r.reg.tags.get(r.name, fi.ModTime())
	if !ok {
		start := time.Now()
		if all, err = r.reg.listTags(ctx, r.name); err != nil {
			return nil, false, err
		}
		if cacheable(fi.ModTime(), start) {
			r.reg.tags.put(r.name, fi.ModTime(), all)
		}
	}
	tags, more, _ := page(all, last, n, strings.Compare)
	return tags, more, nil
}

// page returns the items of sorted after last, at most n.
func page(sorted []string, last string, n int, cmp func(a, b string) int) ([]string, bool, error) {
	i := 0
	if last != "" {
		i, _ = slices.BinarySearchFunc(sorted, last, cmp)
		if i < len(sorted) && sorted[i] == last {
			i++
		}
	}
	rest := sorted[i:]
	if n > 0 && len(rest) > n {
		return slices.Clone(rest[:n]), true, nil
	}
	return slices.Clone(rest), false, nil
}

// Referrers lists the manifests of this repository whose subject is
// subject, filtered by artifactType when it is not "", sorted by digest.
// A subject without referrers (or unknown) gives an empty list.
func (r *Repository) Referrers(ctx context.Context, subject digest.Digest, artifactType string) ([]Descriptor, error) {
	if err := checkDigest(subject); err != nil {
		return nil, err
	}
	d := r.reg.d
	algDirs, err := d.List(ctx, referrersDir(r.name, subject))
	if err != nil {
		if driver.IsNotFound(err) {
			return []Descriptor{}, nil
		}
		return nil, err
	}
	out := []Descriptor{}
	for _, ad := range algDirs {
		hexDirs, err := d.List(ctx, ad)
		if err != nil {
			if driver.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		for _, hd := range hexDirs {
			dgst, err := r.reg.readLink(ctx, hd+"/link")
			if err != nil {
				if driver.IsNotFound(err) {
					continue
				}
				return nil, err
			}
			_, payload, _, err := r.GetManifest(ctx, dgst.String())
			if err != nil {
				if isErr(err, ErrManifestUnknown) {
					continue // deleted; the index entry is stale
				}
				return nil, err
			}
			m, err := parseStored(payload)
			if err != nil || m.Subject == nil || m.Subject.Digest != subject {
				continue
			}
			desc := descriptorOf(dgst, payload, m)
			if artifactType != "" && desc.ArtifactType != artifactType {
				continue
			}
			out = append(out, desc)
		}
	}
	slices.SortFunc(out, func(a, b Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	return out, nil
}
