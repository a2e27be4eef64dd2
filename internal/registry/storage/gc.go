package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

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
	// Warn, when set, receives what GC found odd but could work around
	// (a revision whose manifest blob is missing, an unexpected file),
	// one line each, no trailing newline. Errors that stop GC are
	// returned instead.
	Warn func(format string, args ...any)
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
	Warnings          int
	// Swept lists the blobs deleted (or, in a dry run, to delete), each
	// with the repositories whose layer link to it was removed: what a
	// shared blob descriptor cache must forget.
	Swept []SweptBlob
	// Unlinked lists the manifests DeleteUntagged removed (or, in a dry
	// run, would remove): revision links a shared link cache must forget.
	Unlinked []UnlinkedManifest
}

// UnlinkedManifest is a manifest GC removed from a repository.
type UnlinkedManifest struct {
	Repository string
	Digest     digest.Digest
}

// SweptBlob is a blob GC deleted and the repositories that linked it.
type SweptBlob struct {
	Digest       digest.Digest
	Repositories []string
}

// repoManifests is what GC learns about one repository.
type repoManifests struct {
	name      string
	revisions []digest.Digest
	tagged    map[digest.Digest]bool
	// refs holds what each revision references; a nil entry means the
	// manifest's blob is missing (nothing to read, nothing to keep
	// beyond the revision itself).
	refs map[digest.Digest]*manifestRefs
	// signatures are the blobs behind legacy schema1 signature links
	// (revisions/<alg>/<hex>/signatures/<alg>/<hex>/link) that early
	// registry:2 versions wrote, by revision.
	signatures map[digest.Digest][]digest.Digest
}

// ManifestUnreadableError stops GC: a manifest whose references GC cannot
// know. Sweeping without them could delete layers of a tagged image.
type ManifestUnreadableError struct {
	Repository string
	Digest     digest.Digest
	Err        error
}

func (e *ManifestUnreadableError) Error() string {
	return fmt.Sprintf("repository %s: manifest %s cannot be read (%v); nothing was deleted: "+
		"fix or delete this manifest (its revision link) and run gc again", e.Repository, e.Digest, e.Err)
}

func (e *ManifestUnreadableError) Unwrap() error { return e.Err }

// GC marks every blob reachable from a manifest and deletes the rest
// (mark and sweep, as registry:2's garbage-collect). The registry must not
// accept writes while it runs: a blob pushed during GC whose manifest is
// not there yet would be swept.
//
// Every manifest is read before anything is deleted. A manifest GC cannot
// read (not JSON, no references it recognises, a digest that does not
// parse) stops it with a *ManifestUnreadableError and nothing deleted, in
// a dry run too.
func GC(ctx context.Context, d driver.Driver, opts GCOptions) (GCResult, error) {
	// The phases below run their storage calls from gcWorkers goroutines
	// (gcDeleteWorkers for removals; each phase finishes before the next
	// begins), so the callbacks are serialised here.
	var mu sync.Mutex
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			mu.Lock()
			defer mu.Unlock()
			opts.Progress(format, args...)
		}
	}
	var res GCResult
	warn := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		res.Warnings++
		if opts.Warn != nil {
			opts.Warn(format, args...)
		}
	}
	reg := New(d, Options{Delete: true})
	var repos []string
	if err := walkRepos(ctx, d, func(name string) error { repos = append(repos, name); return nil }); err != nil {
		return res, fmt.Errorf("gc: list repositories: %w", err)
	}
	res.Repositories = len(repos)
	progress("%d repositories", len(repos))

	// Mark: read every repository first, so that an unreadable manifest
	// stops GC before anything is deleted.
	scanned := make([]*repoManifests, len(repos))
	err := forEach(ctx, len(repos), func(i int) error {
		rm, err := scanRepo(ctx, reg, repos[i], warn)
		scanned[i] = rm
		return err
	})
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}

	marked := make(map[digest.Digest]bool)
	for _, rm := range scanned {
		name := rm.name
		keep := make(map[digest.Digest]bool, len(rm.revisions))
		if opts.DeleteUntagged {
			keep = reachable(rm)
			for _, dg := range rm.revisions {
				if keep[dg] {
					continue
				}
				progress("%s: delete untagged manifest %s", name, dg)
				res.ManifestsDeleted++
				res.Unlinked = append(res.Unlinked, UnlinkedManifest{Repository: name, Digest: dg})
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
			for _, s := range rm.signatures[dg] {
				marked[s] = true
			}
			if refs := rm.refs[dg]; refs != nil {
				for _, r := range refs.All() {
					marked[r] = true
				}
			}
		}
		res.ManifestsMarked += n
		progress("%s: %d manifests kept", name, n)
	}
	res.BlobsMarked = len(marked)
	progress("%d blobs marked", len(marked))

	// Sweep: find the unmarked blobs, remove the repositories' links to
	// them, and only then their data, so that a crash midway never leaves
	// a layer link naming a blob that is gone (only unreferenced data,
	// which the next run collects).
	// The blob directories are walked one <alg>/<2 hex> prefix per
	// goroutine, then sorted, so that the output is in the usual order.
	type sweepBlob struct {
		dg   digest.Digest
		dir  string
		size int64
	}
	var (
		prefixes []string
		blobs    []sweepBlob
	)
	algs, err := d.List(ctx, blobsRoot)
	if err != nil && !driver.IsNotFound(err) {
		return res, fmt.Errorf("gc: sweep: %w", err)
	}
	for _, a := range algs {
		ps, err := d.List(ctx, a)
		if err != nil && !driver.IsNotFound(err) && !isNotDir(ctx, d, a) {
			return res, fmt.Errorf("gc: sweep: %w", err)
		}
		prefixes = append(prefixes, ps...)
	}
	err = forEach(ctx, len(prefixes), func(i int) error {
		err := d.Walk(ctx, prefixes[i], func(fi driver.FileInfo) error {
			if !fi.IsDir() {
				return nil
			}
			rel := strings.Split(strings.TrimPrefix(fi.Path(), blobsRoot+"/"), "/")
			if len(rel) < 3 {
				return nil
			}
			dg := digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[2])
			if dg.Validate() != nil {
				warn("unexpected directory %s among the blobs, kept", fi.Path())
				return driver.ErrSkipDir
			}
			if marked[dg] {
				return driver.ErrSkipDir
			}
			var size int64
			if dfi, err := d.Stat(ctx, fi.Path()+"/data"); err == nil {
				size = dfi.Size()
			}
			mu.Lock()
			blobs = append(blobs, sweepBlob{dg: dg, dir: fi.Path(), size: size})
			mu.Unlock()
			return driver.ErrSkipDir
		})
		if driver.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return res, fmt.Errorf("gc: sweep: %w", err)
	}
	slices.SortFunc(blobs, func(a, b sweepBlob) int { return strings.Compare(a.dir, b.dir) })
	swept := make(map[digest.Digest]bool, len(blobs))
	sweepDirs := make([]string, 0, len(blobs))
	for _, b := range blobs {
		progress("sweep blob %s (%d bytes)", b.dg, b.size)
		res.BlobsSwept++
		res.BytesFreed += b.size
		swept[b.dg] = true
		sweepDirs = append(sweepDirs, b.dir)
	}

	// Every repository with layer links, including those without
	// manifests (a push that never got to its manifest).
	var layerRepos []string
	if err := walkRepoDirs(ctx, d, "_layers", func(name string) { layerRepos = append(layerRepos, name) }); err != nil {
		return res, fmt.Errorf("gc: list repositories: %w", err)
	}
	linkedIn := make(map[digest.Digest][]string)
	err = forEachN(ctx, gcDeleteWorkers, len(layerRepos), func(i int) error {
		removed, err := removeLayerLinks(ctx, d, layerRepos[i], swept, opts.DryRun)
		mu.Lock()
		res.LayerLinksRemoved += len(removed)
		for _, dg := range removed {
			linkedIn[dg] = append(linkedIn[dg], layerRepos[i])
		}
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s: layer links: %w", layerRepos[i], err)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	if !opts.DryRun {
		err := forEachN(ctx, gcDeleteWorkers, len(sweepDirs), func(i int) error {
			if err := d.Delete(ctx, sweepDirs[i]); err != nil && !driver.IsNotFound(err) {
				return err
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("gc: sweep: %w", err)
		}
	}
	for _, p := range sweepDirs {
		rel := strings.Split(strings.TrimPrefix(p, blobsRoot+"/"), "/")
		dg := digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[2])
		repos := linkedIn[dg]
		slices.Sort(repos) // filled by concurrent workers
		res.Swept = append(res.Swept, SweptBlob{Digest: dg, Repositories: repos})
	}
	verb := "deleted"
	if opts.DryRun {
		verb = "would be deleted (dry run)"
	}
	progress("%d blobs (%d bytes), %d untagged manifests and %d layer links %s",
		res.BlobsSwept, res.BytesFreed, res.ManifestsDeleted, res.LayerLinksRemoved, verb)
	return res, nil
}

// isNotDir reports whether p is a file (which a listing of blobs skips).
func isNotDir(ctx context.Context, d driver.Driver, p string) bool {
	fi, err := d.Stat(ctx, p)
	return err == nil && !fi.IsDir()
}

// gcWorkers is how many storage calls GC keeps in flight. Its work is
// small reads, directory reads and unlinks, which mostly wait for the
// filesystem (or, on S3, for a round trip): a few in flight overlap the
// waits, even on two cores.
const gcWorkers = 8

// gcDeleteWorkers is how many removals GC keeps in flight. On a
// filesystem mounted with online discard (ext4's discard option), freeing
// a file's block waits for the device to discard it, inside unlink or the
// close that drops the last reference: the removals mostly wait, and more
// of them in flight overlap the waits. At 100,000 blobs, 32 took gc from
// 18.7 to 14.8 s against 8 (64: 15.3 s), for 3 MiB more peak RSS.
const gcDeleteWorkers = 32

// forEach calls f(0) ... f(n-1) from gcWorkers goroutines and returns the
// first error (the calls not yet started are then skipped).
func forEach(ctx context.Context, n int, f func(i int) error) error {
	return forEachN(ctx, gcWorkers, n, f)
}

// forEachN is forEach with workers goroutines.
func forEachN(ctx context.Context, workers, n int, f func(i int) error) error {
	var (
		next  atomic.Int64
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				mu.Lock()
				stop := first != nil
				mu.Unlock()
				if stop {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = f(i)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// scanRepo reads a repository's revisions, tags and the references of
// its manifests. warn reports what it works around.
func scanRepo(ctx context.Context, reg *Registry, name string, warn func(string, ...any)) (*repoManifests, error) {
	d := reg.d
	rm := &repoManifests{
		name:       name,
		tagged:     map[digest.Digest]bool{},
		refs:       map[digest.Digest]*manifestRefs{},
		signatures: map[digest.Digest][]digest.Digest{},
	}
	root := revisionsDir(name)
	err := d.Walk(ctx, root, func(fi driver.FileInfo) error {
		if fi.IsDir() {
			return nil
		}
		// The digest comes from the link's path, as registry:2's GC
		// takes it: a link file left empty by a crash still names its
		// manifest.
		rel := strings.Split(strings.TrimPrefix(fi.Path(), root+"/"), "/")
		switch {
		case len(rel) == 3 && rel[2] == "link":
			dg := digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[1])
			if err := dg.Validate(); err != nil {
				return fmt.Errorf("repository %s: revision link %s does not name a digest: %w", name, fi.Path(), err)
			}
			rm.revisions = append(rm.revisions, dg)
		case len(rel) == 6 && rel[2] == "signatures" && rel[5] == "link":
			rev := digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[1])
			sig := digest.NewDigestFromEncoded(digest.Algorithm(rel[3]), rel[4])
			if rev.Validate() != nil || sig.Validate() != nil {
				return fmt.Errorf("repository %s: signature link %s does not name digests", name, fi.Path())
			}
			rm.signatures[rev] = append(rm.signatures[rev], sig)
		default:
			warn("%s: unexpected file %s under the manifest revisions, ignored", name, fi.Path())
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
				warn("%s: manifest %s has a revision link but no blob; nothing it references can be marked", name, dg)
				rm.refs[dg] = nil
				continue
			}
			return nil, fmt.Errorf("repository %s: read manifest %s: %w", name, dg, err)
		}
		refs, err := extractReferences(payload)
		if err != nil {
			return nil, &ManifestUnreadableError{Repository: name, Digest: dg, Err: err}
		}
		rm.refs[dg] = refs
	}
	tags, err := reg.listTags(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("repository %s: list tags: %w", name, err)
	}
	for _, tag := range tags {
		dg, err := reg.readLink(ctx, tagCurrentLink(name, tag))
		if err != nil {
			if driver.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("repository %s: tag %s: %w", name, tag, err)
		}
		rm.tagged[dg] = true
	}
	return rm, nil
}

// reachable returns the manifests kept when untagged ones go: tagged
// manifests, children of kept indexes and referrers of kept manifests,
// to a fixed point. Manifests whose blob is missing are kept (nothing
// tells whether a tag reaches them through an index).
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
		refs, seen := rm.refs[dg]
		if refs != nil && refs.Subject != "" {
			referrers[refs.Subject] = append(referrers[refs.Subject], dg)
		}
		if rm.tagged[dg] || (seen && refs == nil) {
			add(dg)
		}
	}
	for len(queue) > 0 {
		dg := queue[0]
		queue = queue[1:]
		if refs := rm.refs[dg]; refs != nil {
			for _, c := range refs.Children {
				add(c)
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

// removeLayerLinks deletes name's _layers links to swept blobs and returns
// the digests whose link it removed (would remove, in a dry run).
func removeLayerLinks(ctx context.Context, d driver.Driver, name string, swept map[digest.Digest]bool, dryRun bool) ([]digest.Digest, error) {
	root := repoPath(name) + "/_layers"
	var dirs []string
	var dgs []digest.Digest
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
			dgs = append(dgs, dg)
		}
		return driver.ErrSkipDir
	})
	if err != nil && !driver.IsNotFound(err) {
		return nil, err
	}
	if dryRun {
		return dgs, nil
	}
	for i, p := range dirs {
		if err := d.Delete(ctx, p); err != nil && !driver.IsNotFound(err) {
			return dgs[:i], err
		}
	}
	return dgs, nil
}
