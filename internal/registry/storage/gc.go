package storage

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// GCOptions tune GC.
type GCOptions struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// DeleteUntagged first deletes manifests that no tag reaches: not
	// tagged, not a child of a kept index, not a referrer of a kept
	// manifest.
	DeleteUntagged bool
	// Progress, when set, receives progress lines (no trailing newline).
	Progress func(format string, args ...any)
}

// GCResult counts what GC did (or would do, in a dry run).
type GCResult struct {
	Repositories      int
	ManifestsMarked   int
	ManifestsDeleted  int
	BlobsMarked       int
	BlobsSwept        int
	BytesFreed        int64
	LayerLinksRemoved int
}

// repoManifests is what GC learns about one repository.
type repoManifests struct {
	name      string
	revisions []digest.Digest
	tagged    map[digest.Digest]bool
	parsed    map[digest.Digest]*Manifest // nil entry: payload missing or unreadable
}

// GC marks every blob reachable from a manifest and deletes the rest
// (mark and sweep, as registry:2's garbage-collect). The registry must not
// accept writes while it runs: a blob pushed during GC whose manifest is
// not there yet would be swept.
func GC(ctx context.Context, d driver.Driver, opts GCOptions) (GCResult, error) {
	progress := opts.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	reg := New(d, Options{Delete: true})
	var res GCResult
	var repos []string
	if err := walkRepos(ctx, d, func(name string) error { repos = append(repos, name); return nil }); err != nil {
		return res, fmt.Errorf("gc: list repositories: %w", err)
	}
	res.Repositories = len(repos)
	progress("%d repositories", len(repos))

	marked := make(map[digest.Digest]bool)
	for _, name := range repos {
		rm, err := scanRepo(ctx, reg, name)
		if err != nil {
			return res, fmt.Errorf("gc: %s: %w", name, err)
		}
		keep := make(map[digest.Digest]bool, len(rm.revisions))
		if opts.DeleteUntagged {
			keep = reachable(rm)
			for _, dg := range rm.revisions {
				if keep[dg] {
					continue
				}
				progress("%s: delete untagged manifest %s", name, dg)
				res.ManifestsDeleted++
				if !opts.DryRun {
					if err := reg.unlinkManifest(ctx, name, dg); err != nil {
						return res, fmt.Errorf("gc: %s: delete manifest %s: %w", name, dg, err)
					}
				}
			}
		} else {
			for _, dg := range rm.revisions {
				keep[dg] = true
			}
		}
		n := 0
		for dg := range keep {
			n++
			marked[dg] = true
			m := rm.parsed[dg]
			if m == nil {
				continue
			}
			if m.Config != nil {
				marked[m.Config.Digest] = true
			}
			for _, l := range m.Layers {
				marked[l.Digest] = true
			}
			for _, c := range m.Manifests {
				marked[c.Digest] = true
			}
		}
		res.ManifestsMarked += n
		progress("%s: %d manifests kept", name, n)
	}
	res.BlobsMarked = len(marked)
	progress("%d blobs marked", len(marked))

	swept := make(map[digest.Digest]bool)
	err := d.Walk(ctx, blobsRoot, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		rel := strings.Split(strings.TrimPrefix(fi.Path(), blobsRoot+"/"), "/")
		if len(rel) < 3 {
			return nil // <alg> or <alg>/<xx>
		}
		dg := digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[2])
		if dg.Validate() != nil || marked[dg] {
			return driver.ErrSkipDir
		}
		var size int64
		if dfi, err := d.Stat(ctx, fi.Path()+"/data"); err == nil {
			size = dfi.Size()
		}
		progress("sweep blob %s (%d bytes)", dg, size)
		res.BlobsSwept++
		res.BytesFreed += size
		swept[dg] = true
		if !opts.DryRun {
			if err := d.Delete(ctx, fi.Path()); err != nil && !driver.IsNotFound(err) {
				return err
			}
		}
		return driver.ErrSkipDir
	})
	if err != nil && !driver.IsNotFound(err) {
		return res, fmt.Errorf("gc: sweep: %w", err)
	}

	for _, name := range repos {
		n, err := removeLayerLinks(ctx, d, name, swept, opts.DryRun)
		res.LayerLinksRemoved += n
		if err != nil {
			return res, fmt.Errorf("gc: %s: layer links: %w", name, err)
		}
	}
	verb := "deleted"
	if opts.DryRun {
		verb = "would be deleted (dry run)"
	}
	progress("%d blobs (%d bytes), %d untagged manifests and %d layer links %s",
		res.BlobsSwept, res.BytesFreed, res.ManifestsDeleted, res.LayerLinksRemoved, verb)
	return res, nil
}

// scanRepo reads a repository's revisions, tags and manifests.
func scanRepo(ctx context.Context, reg *Registry, name string) (*repoManifests, error) {
	d := reg.d
	rm := &repoManifests{name: name, tagged: map[digest.Digest]bool{}, parsed: map[digest.Digest]*Manifest{}}
	err := d.Walk(ctx, revisionsDir(name), func(fi driver.FileInfo) error {
		if fi.IsDir() || path.Base(fi.Path()) != "link" {
			return nil
		}
		// An unreadable link names no manifest we could keep.
		if dg, err := reg.readLink(ctx, fi.Path()); err == nil {
			rm.revisions = append(rm.revisions, dg)
		}
		return nil
	})
	if err != nil && !driver.IsNotFound(err) {
		return nil, err
	}
	for _, dg := range rm.revisions {
		payload, err := d.GetContent(ctx, blobDataPath(dg))
		if err != nil {
			if driver.IsNotFound(err) {
				rm.parsed[dg] = nil
				continue
			}
			return nil, err
		}
		m, err := parseStored(payload)
		if err != nil {
			reg.log.WarnContext(ctx, "gc: unparsable manifest kept as is", "repository", name, "digest", dg)
		}
		rm.parsed[dg] = m
	}
	tags, err := reg.listTags(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, tag := range tags {
		dg, err := reg.readLink(ctx, tagCurrentLink(name, tag))
		if err != nil {
			if driver.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		rm.tagged[dg] = true
	}
	return rm, nil
}

// reachable returns the manifests kept when untagged ones go: tagged
// manifests, children of kept indexes and referrers of kept manifests,
// to a fixed point. Manifests that failed to parse are kept (never delete
// what we do not understand).
func reachable(rm *repoManifests) map[digest.Digest]bool {
	keep := make(map[digest.Digest]bool)
	referrers := make(map[digest.Digest][]digest.Digest) // subject -> referrers
	var queue []digest.Digest
	add := func(dg digest.Digest) {
		if !keep[dg] {
			keep[dg] = true
			queue = append(queue, dg)
		}
	}
	for _, dg := range rm.revisions {
		m, seen := rm.parsed[dg]
		if seen && m != nil && m.Subject != nil {
			referrers[m.Subject.Digest] = append(referrers[m.Subject.Digest], dg)
		}
		if rm.tagged[dg] || (seen && m == nil) {
			add(dg)
		}
	}
	for len(queue) > 0 {
		dg := queue[0]
		queue = queue[1:]
		if m := rm.parsed[dg]; m != nil {
			for _, c := range m.Manifests {
				add(c.Digest)
			}
		}
		for _, r := range referrers[dg] {
			add(r)
		}
	}
	// Only revisions of this repository count as kept manifests.
	out := make(map[digest.Digest]bool, len(keep))
	for _, dg := range rm.revisions {
		if keep[dg] {
			out[dg] = true
		}
	}
	return out
}

// removeLayerLinks deletes name's _layers links to swept blobs.
func removeLayerLinks(ctx context.Context, d driver.Driver, name string, swept map[digest.Digest]bool, dryRun bool) (int, error) {
	root := repoPath(name) + "/_layers"
	var dirs []string
	err := d.Walk(ctx, root, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		rel := strings.Split(strings.TrimPrefix(fi.Path(), root+"/"), "/")
		if len(rel) < 2 {
			return nil
		}
		dg := digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[1])
		if swept[dg] {
			dirs = append(dirs, fi.Path())
		}
		return driver.ErrSkipDir
	})
	if err != nil && !driver.IsNotFound(err) {
		return 0, err
	}
	if dryRun {
		return len(dirs), nil
	}
	for i, p := range dirs {
		if err := d.Delete(ctx, p); err != nil && !driver.IsNotFound(err) {
			return i, err
		}
	}
	return len(dirs), nil
}
