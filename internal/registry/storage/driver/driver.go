// Package driver defines the storage driver interface the registry logic is
// written against, with the path rules every driver enforces.
//
// A driver stores opaque files under absolute, "/"-separated paths. It knows
// nothing about blobs, manifests or repositories. Drivers: filesystem (the
// default), inmemory (tests); object stores (S3) implement the same
// interface and pass the same conformance suite (package drivertest).
//
// Optional capabilities are separate interfaces discovered with type
// assertions: Redirector (presigned URLs), LocalFiler (sendfile), Janitor
// (debris of interrupted writes), ExactMover (a size-checked move), Pinger
// (a reachability check), ScratchWriter (writes that need not wait for
// stable storage), AtomicDirs (directories that appear and disappear
// whole), Stager (a new file invisible until it is committed) and, on a
// FileWriter, TargetCommitter (a commit straight to another path).
package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Driver stores files by path. Implementations are safe for concurrent use.
type Driver interface {
	// Name is the driver's config name ("filesystem", "inmemory", "s3").
	Name() string
	// GetContent returns the whole content of a small file (links, state).
	GetContent(ctx context.Context, path string) ([]byte, error)
	// PutContent replaces path with content atomically: a reader sees the
	// old content or the new one, never a mix or a truncated file.
	PutContent(ctx context.Context, path string, content []byte) error
	// Reader streams path from offset. An offset past the end is an error
	// of type *InvalidOffsetError; an offset equal to the size reads nothing.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	// Writer returns a writer to path. With append it resumes an existing
	// file (Size starts at its size); without, it starts an empty one.
	// Content becomes durable at Commit, and is discarded by Cancel.
	Writer(ctx context.Context, path string, append bool) (FileWriter, error)
	// Stat describes a file or directory.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// List returns the full paths of the direct children of the directory
	// path, sorted.
	List(ctx context.Context, path string) ([]string, error)
	// Move renames src to dst, replacing dst if it exists. It is atomic on
	// the filesystem driver.
	Move(ctx context.Context, src, dst string) error
	// Delete removes path and everything below it.
	Delete(ctx context.Context, path string) error
	// Walk calls fn for every file and directory below path (not path
	// itself), depth first, in sorted order. If fn returns ErrSkipDir for a
	// directory, Walk does not descend into it; any other error stops the
	// walk and is returned.
	Walk(ctx context.Context, path string, fn WalkFn) error
}

// WalkFn is called by Driver.Walk for each entry.
type WalkFn func(fi FileInfo) error

// ErrSkipDir, returned by a WalkFn for a directory, skips its contents.
var ErrSkipDir = errors.New("skip this directory")

// FileWriter writes a file. Exactly one of Commit and Cancel must be
// called; Close alone leaves the data in place to be resumed (append).
type FileWriter interface {
	io.Writer
	io.Closer
	// Size is the number of bytes in the file so far, including what an
	// appending writer started with.
	Size() int64
	// Cancel removes the file.
	Cancel(ctx context.Context) error
	// Commit flushes the content to stable storage (if the driver is
	// durable) and closes the writer.
	Commit(ctx context.Context) error
}

// FileInfo describes a stored file or directory.
type FileInfo interface {
	Path() string
	Size() int64
	ModTime() time.Time
	IsDir() bool
}

// Redirector is implemented by drivers that can hand clients a URL to
// fetch content from directly (an S3 presigned URL, a CDN).
type Redirector interface {
	// RedirectURL returns a URL serving path, or "" to serve it directly.
	RedirectURL(r *http.Request, path string) (string, error)
}

// LocalFiler is implemented by drivers whose files are local, so callers can
// serve them with sendfile (http.ServeContent or io.Copy to a TCP conn).
type LocalFiler interface {
	// LocalFile opens path read-only. The caller closes it. What a
	// Writer of path writes is in the file when its Write returns (the
	// writer keeps no buffer), so LocalFile's readers see it then.
	LocalFile(path string) (*os.File, error)
}

// Janitor is implemented by drivers whose interrupted writes leave debris
// that List and Walk do not show: the filesystem driver's temporary files
// (an atomic write killed before its rename) and directories emptied or
// never filled. Drivers without such debris (object stores, inmemory)
// need not implement it; Checked's wrapper answers ErrUnsupported for them.
type Janitor interface {
	// WalkTemporaries calls fn for every temporary file or directory
	// below path, in no particular order (not for what a temporary
	// directory holds).
	WalkTemporaries(ctx context.Context, path string, fn WalkFn) error
	// RemoveTemporary removes one file or directory WalkTemporaries
	// reported; any other path is an *InvalidPathError.
	RemoveTemporary(ctx context.Context, path string) error
	// RemoveEmptyDir removes the directory path if it is empty, and
	// returns ErrDirNotEmpty (leaving it) if it is not.
	RemoveEmptyDir(ctx context.Context, path string) error
}

// ExactMover is implemented by drivers whose Move is not one atomic rename
// (S3's is a copy, then a delete), so that a file another process appends
// to while it is being moved could arrive with more bytes than the caller
// checked. MoveExact moves src to dst only if src holds exactly size
// bytes, and moves only the content it measured; otherwise it returns an
// error wrapping ErrChanged and leaves dst alone. Checked's wrapper always
// has it: for other drivers it checks the size with Stat, then Moves.
type ExactMover interface {
	MoveExact(ctx context.Context, src, dst string, size int64) error
}

// TargetCommitter is implemented by FileWriters that can commit their
// content straight to another path: the S3 writer composes its stored
// segments at the destination's key, which saves the server-side copy of
// the whole file that a Commit followed by a Move makes. Like MoveExact,
// CommitTo moves exactly the content the writer measured (Size): if the
// stored file changed since the writer was opened (another process
// appended to it), it returns an error wrapping ErrChanged and leaves dst
// alone. On success dst holds the content, replacing what was there, and
// the writer's own file is gone. It ends the writer as Commit does.
type TargetCommitter interface {
	CommitTo(ctx context.Context, dst string) error
}

// Stager is implemented by drivers that can write a new file that stays
// invisible until its writer's Commit, and leaves nothing visible after
// Cancel or a crash (S3: a multipart upload at the file's own key). A body
// whose digest is known before it arrives can then be streamed straight to
// its final path and checked before it appears there, without a copy. The
// writer can't be resumed: Close cancels it. Checked's wrapper answers
// ErrUnsupported for drivers without it.
type Stager interface {
	// StagedWriter starts the file. size is its length when the caller
	// knows it (-1 otherwise): the driver may then stream it without
	// holding it in memory, and more or fewer bytes than size fail.
	StagedWriter(ctx context.Context, path string, size int64) (FileWriter, error)
	// PurgeStaged removes what staged writes below path started before
	// cutoff left behind (a crash or a failed abort), and returns how
	// many it removed, or with dryRun would remove.
	PurgeStaged(ctx context.Context, path string, cutoff time.Time, dryRun bool) (int, error)
}

// ErrChanged is wrapped by MoveExact's error when the source is not (or no
// longer) the size the caller checked.
var ErrChanged = errors.New("file changed while it was being moved")

// Pinger is implemented by drivers that can check their storage is
// reachable with one cheap call (S3: the bucket answers to the
// credentials). Health checks use it; Checked's wrapper always has it,
// falling back to a Stat of the root for drivers without it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ErrUnavailable is wrapped by the errors of calls that failed because the
// storage service could not be reached or answered with a server error
// (S3 down, a timeout, a 5xx): the same request may work later. The API
// answers 503 with Retry-After for them.
var ErrUnavailable = errors.New("storage temporarily unavailable")

// ScratchWriter is implemented by drivers whose PutContent waits for
// stable storage (an fsync), for content that can be recomputed if it is
// lost. The Checked wrapper always implements it, with PutContent for
// drivers that do not.
type ScratchWriter interface {
	// PutScratch replaces path with content, atomically for readers as
	// PutContent does, but returns before the content is on stable
	// storage. A process crash loses nothing; after a power loss the file
	// may be missing or empty, so readers must tell a damaged file from a
	// good one.
	PutScratch(ctx context.Context, path string, content []byte) error
}

// AtomicDirs is implemented by drivers that can make a directory tree
// appear, and disappear, in one step (the filesystem driver, with
// rename(2)). Object stores have no directories to rename and do not
// implement it; the Checked wrapper then answers ErrUnsupported, and
// SupportsAtomicDirs tells callers beforehand.
type AtomicDirs interface {
	// CreateDir makes the directory path appear holding files (paths
	// relative to path, "/"-separated, mapped to their content) all at
	// once: a reader, and the storage after a crash at any moment, sees
	// all of it or none of it. The content is as durable as PutContent's
	// when it returns. If path exists and is not empty, CreateDir changes
	// nothing and returns an error wrapping fs.ErrExist.
	CreateDir(ctx context.Context, path string, files map[string][]byte) error
	// RemoveDir makes the directory path and everything below it
	// disappear at once. What a crash leaves of it afterwards is a
	// temporary that Janitor reports.
	RemoveDir(ctx context.Context, path string) error
}

// SupportsAtomicDirs reports whether d, or the driver Checked wraps,
// implements AtomicDirs.
func SupportsAtomicDirs(d Driver) bool {
	if c, ok := d.(checkedMarker); ok {
		d = c.unwrap()
	}
	_, ok := d.(AtomicDirs)
	return ok
}

// ErrDirNotEmpty is returned by Janitor.RemoveEmptyDir for a directory
// that has entries.
var ErrDirNotEmpty = errors.New("directory not empty")

// ErrNoSpace is wrapped by the errors of writes that failed because the
// storage is full (or a quota is exhausted), so callers can say so.
var ErrNoSpace = errors.New("no space left in storage")

// ErrUnsupported is returned for an optional feature a driver lacks.
var ErrUnsupported = errors.New("operation not supported by this storage driver")

// PathNotFoundError reports a path that does not exist.
type PathNotFoundError struct {
	Path   string
	Driver string
}

func (e *PathNotFoundError) Error() string {
	return fmt.Sprintf("%s: path not found: %s", e.Driver, e.Path)
}

// InvalidPathError reports a path that breaks the path rules.
type InvalidPathError struct {
	Path   string
	Driver string
	Reason string
}

func (e *InvalidPathError) Error() string {
	return fmt.Sprintf("%s: invalid path %q: %s", e.Driver, e.Path, e.Reason)
}

// InvalidOffsetError reports a read offset outside the file.
type InvalidOffsetError struct {
	Path   string
	Offset int64
	Driver string
}

func (e *InvalidOffsetError) Error() string {
	return fmt.Sprintf("%s: invalid offset %d for %s", e.Driver, e.Offset, e.Path)
}

// IsNotFound reports whether err is (or wraps) a *PathNotFoundError.
func IsNotFound(err error) bool {
	var nf *PathNotFoundError
	return errors.As(err, &nf)
}
