package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// DefaultStaleAge is how old a temporary file, an empty blob directory or
// an incomplete tag must be before it counts as left by an interrupted
// write rather than by one in flight.
const DefaultStaleAge = time.Hour

// ProblemKind names one kind of storage inconsistency.
type ProblemKind string

// The problems Check reports.
const (
	DanglingTag      ProblemKind = "dangling-tag"   // current link unreadable, or names a manifest whose revision link or data is gone
	IncompleteTag    ProblemKind = "incomplete-tag" // tag directory without a current link (a push killed midway)
	BadLink          ProblemKind = "bad-link"       // revision or layer link that is not the digest its path names
	RevisionNoBlob   ProblemKind = "revision-missing-blob"
	LayerNoBlob      ProblemKind = "layer-missing-blob"
	StaleTemporary   ProblemKind = "stale-temporary"   // temporary file or directory of an interrupted atomic write
	EmptyBlobDir     ProblemKind = "empty-blob-dir"    // blob directory without data
	StaleUpload      ProblemKind = "stale-upload"      // upload started longer ago than the upload purge age
	CorruptBlob      ProblemKind = "corrupt-blob"      // data that does not hash to its digest (--verify-digests)
	UnverifiableBlob ProblemKind = "unverifiable-blob" // blob directory that names no digest we can hash
)

// Problem is one inconsistency found by Check.
type Problem struct {
	Kind       ProblemKind
	Repository string        // "" for blobs and temporaries
	Path       string        // the storage path concerned
	Digest     digest.Digest // the blob or manifest concerned, if any
	Detail     string        // what is wrong, for people
	// Remove is the path Repair deletes to fix the problem; "" when the
	// problem is reported only (Repair never deletes referenced data).
	Remove string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(string(p.Kind))
	if p.Repository != "" {
		b.WriteString(" " + p.Repository)
	}
	b.WriteString(": " + p.Detail)
	return b.String()
}

// CheckOptions tune Check.
type CheckOptions struct {
	// VerifyDigests rehashes every blob (streaming) and reports those
	// whose content does not match their digest.
	VerifyDigests bool
	// StaleAge: temporaries, empty blob directories and incomplete tags
	// younger than this may belong to a write in flight and are counted,
	// not reported. 0 means DefaultStaleAge.
	StaleAge time.Duration
	// UploadAge: uploads started longer ago are stale (the upload purge's
	// age). 0 means the purge default, 168h.
	UploadAge time.Duration
	// Progress, when set, receives progress lines (no trailing newline).
	Progress func(format string, args ...any)
}

// CheckResult is what Check found.
type CheckResult struct {
	Repositories int
	Tags         int // servable tags
	Manifests    int // revision links
	LayerLinks   int
	Blobs        int
	Uploads      int
	Verified     int // blobs rehashed
	// InFlight counts temporaries, empty blob directories and incomplete
	// tags too young to judge (see CheckOptions.StaleAge).
	InFlight int
	Problems []Problem
}

// checker holds one run's state.
type checker struct {
	reg  *Registry
	d    driver.Driver
	opts CheckOptions
	now  time.Time
	res  CheckResult
	say  func(format string, args ...any)
	// sayMu serialises say when blobs are verified in parallel.
	sayMu sync.Mutex
}

// Check reads every repository's tag, revision and layer links and
// uploads, every blob directory and the driver's temporaries, and reports
// what is inconsistent. It changes nothing; Repair fixes what it found.
// It may run on a registry that is serving: writes in flight are told
// from debris by age (CheckOptions.StaleAge).
func Check(ctx context.Context, d driver.Driver, opts CheckOptions) (CheckResult, error) {
	if opts.StaleAge <= 0 {
		opts.StaleAge = DefaultStaleAge
	}
	if opts.UploadAge <= 0 {
		opts.UploadAge = 168 * time.Hour
	}
	c := &checker{reg: New(d, Options{}), d: d, opts: opts, now: time.Now(), say: opts.Progress}
	if c.say == nil {
		c.say = func(string, ...any) {}
	}
	repos, err := c.repositories(ctx)
	if err != nil {
		return c.res, fmt.Errorf("check: list repositories: %w", err)
	}
	c.res.Repositories = len(repos)
	c.say("%d repositories", len(repos))
	for _, name := range repos {
		if err := c.repository(ctx, name); err != nil {
			return c.res, fmt.Errorf("check: %s: %w", name, err)
		}
	}
	if err := c.blobs(ctx); err != nil {
		return c.res, fmt.Errorf("check: blobs: %w", err)
	}
	if err := c.temporaries(ctx); err != nil {
		return c.res, fmt.Errorf("check: temporaries: %w", err)
	}
	return c.res, nil
}

func (c *checker) report(p Problem) {
	c.res.Problems = append(c.res.Problems, p)
}

func (c *checker) stale(t time.Time) bool { return c.now.Sub(t) >= c.opts.StaleAge }

// repositories lists every repository with manifests, layer links or
// uploads.
func (c *checker) repositories(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	err := c.d.Walk(ctx, reposRoot, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		base := path.Base(fi.Path())
		switch base {
		case "_manifests", "_layers", "_uploads":
			seen[strings.TrimPrefix(path.Dir(fi.Path()), reposRoot+"/")] = true
			return driver.ErrSkipDir
		}
		if strings.HasPrefix(base, "_") {
			return driver.ErrSkipDir
		}
		return nil
	})
	if err != nil && !driver.IsNotFound(err) {
		return nil, err
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.SortFunc(names, comparePaths)
	return names, nil
}

func (c *checker) repository(ctx context.Context, name string) error {
	if err := c.tags(ctx, name); err != nil {
		return err
	}
	if err := c.links(ctx, name, revisionsDir(name), RevisionNoBlob, &c.res.Manifests); err != nil {
		return err
	}
	if err := c.links(ctx, name, repoPath(name)+"/_layers", LayerNoBlob, &c.res.LayerLinks); err != nil {
		return err
	}
	return c.uploads(ctx, name)
}

// tags reports tags that cannot be served.
func (c *checker) tags(ctx context.Context, name string) error {
	tags, err := c.reg.listTags(ctx, name)
	if err != nil {
		return err
	}
	for _, tag := range tags {
		_, err := c.reg.servableTag(ctx, name, tag)
		if err == nil {
			c.res.Tags++
			continue
		}
		if !isErr(err, ErrManifestUnknown) {
			return err
		}
		dir := tagDir(name, tag)
		cur, lerr := c.reg.readLink(ctx, tagCurrentLink(name, tag))
		switch {
		case driver.IsNotFound(lerr):
			newest, err := c.newestFile(ctx, dir)
			if err != nil {
				return err
			}
			if !c.stale(newest) {
				c.res.InFlight++
				continue
			}
			c.report(Problem{Kind: IncompleteTag, Repository: name, Path: dir, Remove: dir,
				Detail: fmt.Sprintf("tag %s has no current link (a push stopped before it was written)", tag)})
		case lerr != nil && errors.Is(lerr, errBadLink):
			c.report(Problem{Kind: DanglingTag, Repository: name, Path: dir, Remove: dir,
				Detail: fmt.Sprintf("tag %s: current link is not a digest", tag)})
		case lerr != nil:
			return lerr
		default:
			c.report(Problem{Kind: DanglingTag, Repository: name, Path: dir, Digest: cur, Remove: dir,
				Detail: fmt.Sprintf("tag %s points at %s, whose revision link or manifest data is missing", tag, cur)})
		}
	}
	return nil
}

// newestFile returns the latest modification time of the files below dir
// (a directory's own time is not kept by every driver).
func (c *checker) newestFile(ctx context.Context, dir string) (time.Time, error) {
	var newest time.Time
	err := c.d.Walk(ctx, dir, func(fi driver.FileInfo) error {
		if !fi.IsDir() && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		return nil
	})
	if err != nil && !driver.IsNotFound(err) {
		return time.Time{}, err
	}
	if newest.IsZero() {
		if fi, err := c.d.Stat(ctx, dir); err == nil {
			newest = fi.ModTime()
		}
	}
	return newest, nil
}

// links reports the links below root (<alg>/<hex>/link) that do not hold
// the digest their path names, or whose blob data is gone.
func (c *checker) links(ctx context.Context, name, root string, missing ProblemKind, count *int) error {
	what := map[ProblemKind]string{RevisionNoBlob: "revision link", LayerNoBlob: "layer link"}[missing]
	err := c.d.Walk(ctx, root, func(fi driver.FileInfo) error {
		if fi.IsDir() || path.Base(fi.Path()) != "link" {
			return nil
		}
		*count++
		dir := path.Dir(fi.Path())
		rel := strings.Split(strings.TrimPrefix(dir, root+"/"), "/")
		want := digest.Digest("")
		if len(rel) == 2 {
			want = digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[1])
		}
		dg, err := c.reg.readLink(ctx, fi.Path())
		switch {
		case driver.IsNotFound(err):
			return nil // removed meanwhile
		case errors.Is(err, errBadLink) || (err == nil && dg != want):
			c.report(Problem{Kind: BadLink, Repository: name, Path: fi.Path(), Digest: want, Remove: dir,
				Detail: fmt.Sprintf("%s %s does not hold the digest its path names", what, fi.Path())})
			return nil
		case err != nil:
			return err
		}
		ok, err := c.hasData(ctx, dg)
		if err != nil {
			return err
		}
		if !ok {
			c.report(Problem{Kind: missing, Repository: name, Path: fi.Path(), Digest: dg, Remove: dir,
				Detail: fmt.Sprintf("%s to %s, whose blob data is missing", what, dg)})
		}
		return nil
	})
	if err != nil && !driver.IsNotFound(err) {
		return err
	}
	return nil
}

func (c *checker) hasData(ctx context.Context, dg digest.Digest) (bool, error) {
	fi, err := c.d.Stat(ctx, blobDataPath(dg))
	if err != nil {
		if driver.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return !fi.IsDir(), nil
}

// uploads reports uploads older than the purge age.
func (c *checker) uploads(ctx context.Context, name string) error {
	dirs, err := c.d.List(ctx, uploadsDir(name))
	if err != nil {
		if driver.IsNotFound(err) {
			return nil
		}
		return err
	}
	for _, dir := range dirs {
		c.res.Uploads++
		started, err := uploadStarted(ctx, c.d, dir)
		if err != nil {
			return err
		}
		if age := c.now.Sub(started); age >= c.opts.UploadAge {
			c.report(Problem{Kind: StaleUpload, Repository: name, Path: dir, Remove: dir,
				Detail: fmt.Sprintf("upload %s started %s ago", path.Base(dir), age.Round(time.Second))})
		}
	}
	return nil
}

// blobs reports blob directories without data and, with VerifyDigests,
// blobs whose content does not match their digest.
func (c *checker) blobs(ctx context.Context) error {
	var toVerify []blobToVerify
	err := c.d.Walk(ctx, blobsRoot, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		rel := strings.Split(strings.TrimPrefix(fi.Path(), blobsRoot+"/"), "/")
		if len(rel) < 3 {
			return nil // <alg> or <alg>/<xx>
		}
		dg := digest.NewDigestFromEncoded(digest.Algorithm(rel[0]), rel[2])
		_, err := c.d.Stat(ctx, fi.Path()+"/data")
		switch {
		case driver.IsNotFound(err):
			if !c.stale(fi.ModTime()) {
				c.res.InFlight++
				return driver.ErrSkipDir
			}
			c.report(Problem{Kind: EmptyBlobDir, Path: fi.Path(), Digest: dg, Remove: fi.Path(),
				Detail: fmt.Sprintf("blob directory %s has no data", fi.Path())})
			return driver.ErrSkipDir
		case err != nil:
			return err
		}
		c.res.Blobs++
		if c.opts.VerifyDigests {
			toVerify = append(toVerify, blobToVerify{dg, fi.Path() + "/data"})
		}
		return driver.ErrSkipDir
	})
	if err != nil && !driver.IsNotFound(err) {
		return err
	}
	return c.verifyAll(ctx, toVerify)
}

type blobToVerify struct {
	dg digest.Digest
	p  string
}

// verifyAll rehashes the blobs from gcWorkers goroutines (small blobs
// cost an open and a read each, which overlap; large ones keep both
// cores hashing) and reports the problems in the order of blobs.
func (c *checker) verifyAll(ctx context.Context, blobs []blobToVerify) error {
	found := make([]*Problem, len(blobs))
	var verified atomic.Int64
	err := forEach(ctx, len(blobs), func(i int) error {
		p, ok, err := c.verify(ctx, blobs[i].dg, blobs[i].p)
		if err != nil {
			return err
		}
		found[i] = p
		if ok {
			if n := verified.Add(1); n%1000 == 0 {
				c.sayMu.Lock()
				c.say("%d blobs verified", n)
				c.sayMu.Unlock()
			}
		}
		return nil
	})
	c.res.Verified += int(verified.Load())
	for _, p := range found {
		if p != nil {
			c.report(*p)
		}
	}
	return err
}

// verify rehashes one blob, streaming it, and returns the problem found
// (nil if none) and whether it was read.
func (c *checker) verify(ctx context.Context, dg digest.Digest, p string) (*Problem, bool, error) {
	if err := dg.Validate(); err != nil {
		return &Problem{Kind: UnverifiableBlob, Path: p, Digest: dg,
			Detail: fmt.Sprintf("%s: the directory does not name a digest this registry can verify", p)}, false, nil
	}
	rc, err := c.d.Reader(ctx, p, 0)
	if err != nil {
		if driver.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	defer func() { _ = rc.Close() }()
	v := dg.Verifier()
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(v, readerOnly{rc}, *buf)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", dg, err)
	}
	if !v.Verified() {
		return &Problem{Kind: CorruptBlob, Path: p, Digest: dg,
			Detail: fmt.Sprintf("blob %s (%d bytes) does not hash to its digest; it is kept: restore it from a backup or push it again", dg, n)}, true, nil
	}
	return nil, true, nil
}

// temporaries reports the driver's stale temporary files and directories.
func (c *checker) temporaries(ctx context.Context) error {
	j, ok := c.d.(driver.Janitor)
	if !ok {
		return nil
	}
	err := j.WalkTemporaries(ctx, rootPath, func(fi driver.FileInfo) error {
		if !c.stale(fi.ModTime()) {
			c.res.InFlight++
			return nil
		}
		detail := fmt.Sprintf("temporary file %s (%d bytes) of an interrupted write", fi.Path(), fi.Size())
		if fi.IsDir() {
			detail = fmt.Sprintf("temporary directory %s of an interrupted write", fi.Path())
		}
		c.report(Problem{Kind: StaleTemporary, Path: fi.Path(), Remove: fi.Path(), Detail: detail})
		return nil
	})
	if errors.Is(err, driver.ErrUnsupported) || driver.IsNotFound(err) {
		return nil
	}
	return err
}

// RepairResult counts what Repair removed.
type RepairResult struct {
	Removed int
	Kept    int // not removed: no longer broken, or not empty any more
}

// Repair removes what the problems name for removal (Problem.Remove):
// temporaries first, then tags, links, uploads and last the empty blob
// directories (which a removed temporary may have emptied). It never
// removes blob data. The registry must not accept writes meanwhile.
// done, when not nil, is told about each removal.
func Repair(ctx context.Context, d driver.Driver, problems []Problem, done func(p Problem, err error)) (RepairResult, error) {
	if done == nil {
		done = func(Problem, error) {}
	}
	order := map[ProblemKind]int{StaleTemporary: 0, EmptyBlobDir: 2}
	ps := slices.Clone(problems)
	slices.SortStableFunc(ps, func(a, b Problem) int {
		oa, ok := order[a.Kind]
		if !ok {
			oa = 1
		}
		ob, ok := order[b.Kind]
		if !ok {
			ob = 1
		}
		return oa - ob
	})
	var res RepairResult
	j, _ := d.(driver.Janitor)
	for _, p := range ps {
		if p.Remove == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var err error
		switch p.Kind {
		case StaleTemporary:
			if j == nil {
				err = driver.ErrUnsupported
			} else {
				err = j.RemoveTemporary(ctx, p.Remove)
			}
		case EmptyBlobDir:
			if j == nil {
				err = driver.ErrUnsupported
			} else {
				err = j.RemoveEmptyDir(ctx, p.Remove)
			}
		default:
			if strings.HasPrefix(p.Remove, blobsRoot+"/") {
				err = fmt.Errorf("refusing to remove %s: blob data is never repaired", p.Remove)
			} else {
				err = d.Delete(ctx, p.Remove)
			}
		}
		switch {
		case err == nil:
			res.Removed++
		case driver.IsNotFound(err), errors.Is(err, driver.ErrDirNotEmpty):
			res.Kept++
			err = nil
		}
		done(p, err)
		if err != nil {
			return res, fmt.Errorf("repair: %s: %w", p.Remove, err)
		}
	}
	return res, nil
}

// RemoveDebris removes the stale debris of interrupted writes: temporary
// files and blob directories without data older than staleAge. The
// registry runs it with its upload purge; writes in flight are younger.
func RemoveDebris(ctx context.Context, d driver.Driver, staleAge time.Duration) (RepairResult, error) {
	if staleAge <= 0 {
		staleAge = DefaultStaleAge
	}
	c := &checker{reg: New(d, Options{}), d: d, opts: CheckOptions{StaleAge: staleAge}, now: time.Now(), say: func(string, ...any) {}}
	if err := c.temporaries(ctx); err != nil {
		return RepairResult{}, fmt.Errorf("debris: %w", err)
	}
	if err := c.blobs(ctx); err != nil {
		return RepairResult{}, fmt.Errorf("debris: %w", err)
	}
	return Repair(ctx, d, c.res.Problems, nil)
}
