// Package filesystem is the local filesystem storage driver: files under a
// root directory, written durably (fsync of the file and of its directory)
// unless durability is turned off for benchmarks.
package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// Name is the driver's config name.
const Name = "filesystem"

// DefaultRootDirectory is distribution's default rootdirectory.
const DefaultRootDirectory = "/var/lib/registry"

// Permissions of what the driver creates: readable by the registry's group
// (backups, a registry:2 sharing the data), never by everyone.
const (
	dirPerm  = 0o750
	filePerm = 0o640
)

// tmpPrefix starts the names of temporary files; listings skip them.
const tmpPrefix = ".gatehouse-tmp-"

// Options configure the driver.
type Options struct {
	// RootDirectory holds everything; "" means DefaultRootDirectory.
	RootDirectory string
	// Durable fsyncs files and directories before a write is reported
	// done. Turn it off only for benchmarks and throwaway registries.
	Durable bool
}

// Driver stores files under a root directory.
type Driver struct {
	root    string
	durable bool
}

// New returns a driver rooted at opts.RootDirectory, creating it if needed.
func New(opts Options) (*Driver, error) {
	root := opts.RootDirectory
	if root == "" {
		root = DefaultRootDirectory
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("filesystem: root directory %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("filesystem: create root directory: %w", err)
	}
	return &Driver{root: abs, durable: opts.Durable}, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// full validates p and maps it below the root.
// resolve checks that ctx is still live and maps p to a path on disk.
func (d *Driver) resolve(ctx context.Context, p string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return d.full(p)
}

func (d *Driver) full(p string) (string, error) {
	if err := driver.ValidatePath(Name, p); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(p)), nil
}

// wrap turns "does not exist" into a PathNotFoundError.
func (d *Driver) wrap(p string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscallENOTDIR) {
		return &driver.PathNotFoundError{Path: p, Driver: Name}
	}
	for _, e := range noSpace {
		if errors.Is(err, e) {
			return fmt.Errorf("filesystem: %s: %w: %w", p, stripRoot(err, d.root), driver.ErrNoSpace)
		}
	}
	return fmt.Errorf("filesystem: %s: %w", p, stripRoot(err, d.root))
}

// stripRoot keeps the root directory out of error text.
func stripRoot(err error, root string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return errors.New(strings.Replace(err.Error(), root, "", 1))
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return errors.New(strings.ReplaceAll(err.Error(), root, ""))
	}
	return err
}

// GetContent implements driver.Driver.
func (d *Driver) GetContent(ctx context.Context, p string) ([]byte, error) {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(fp)
	if err != nil {
		return nil, d.wrap(p, err)
	}
	return b, nil
}

// PutContent implements driver.Driver: write a temporary file beside the
// target, flush it, rename it over the target and flush the directory.
func (d *Driver) PutContent(ctx context.Context, p string, content []byte) error {
	return d.putContent(ctx, p, content, d.durable)
}

// PutScratch implements driver.ScratchWriter: PutContent without the
// flushes, so a write costs no fsync (which on ext4 also waits for the
// data of every other file the journal commit covers).
func (d *Driver) PutScratch(ctx context.Context, p string, content []byte) error {
	return d.putContent(ctx, p, content, false)
}

func (d *Driver) putContent(ctx context.Context, p string, content []byte, flush bool) error {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return err
	}
	if p == "/" {
		return &driver.InvalidPathError{Path: p, Driver: Name, Reason: "the root is a directory"}
	}
	dir := filepath.Dir(fp)
	if err := d.mkdirAll(dir); err != nil {
		return d.wrap(p, err)
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return d.wrap(p, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(content); err != nil {
		return d.wrap(p, err)
	}
	if flush {
		if err := tmp.Sync(); err != nil {
			return d.wrap(p, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return d.wrap(p, err)
	}
	if err := os.Chmod(tmp.Name(), filePerm); err != nil { //nolint:gosec // group-readable on purpose, see filePerm
		return d.wrap(p, err)
	}
	if err := os.Rename(tmp.Name(), fp); err != nil {
		return d.wrap(p, err)
	}
	ok = true
	if !flush {
		return nil
	}
	return d.syncDir(dir)
}

// mkdirAll creates dir and its parents, flushing each parent that gained
// an entry when durable.
func (d *Driver) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is a file", dir)
		}
		return nil
	}
	if dir == d.root || len(dir) < len(d.root) {
		return os.MkdirAll(dir, dirPerm)
	}
	if err := d.mkdirAll(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return d.syncDir(filepath.Dir(dir))
}

// syncDir flushes a directory's entries when durable.
func (d *Driver) syncDir(dir string) error {
	if !d.durable {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filesystem: sync directory: %w", stripRoot(err, d.root))
	}
	return nil
}

// Reader implements driver.Driver.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := d.open(p)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, d.wrap(p, err)
	}
	if fi.IsDir() {
		_ = f.Close()
		return nil, &driver.PathNotFoundError{Path: p, Driver: Name}
	}
	if offset < 0 || offset > fi.Size() {
		_ = f.Close()
		return nil, &driver.InvalidOffsetError{Path: p, Offset: offset, Driver: Name}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, d.wrap(p, err)
	}
	return f, nil
}

func (d *Driver) open(p string) (*os.File, error) {
	fp, err := d.full(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(fp)
	if err != nil {
		return nil, d.wrap(p, err)
	}
	return f, nil
}

// LocalFile implements driver.LocalFiler.
func (d *Driver) LocalFile(p string) (*os.File, error) {
	f, err := d.open(p)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		_ = f.Close()
		return nil, &driver.PathNotFoundError{Path: p, Driver: Name}
	}
	return f, nil
}

// Writer implements driver.Driver.
func (d *Driver) Writer(ctx context.Context, p string, appendTo bool) (driver.FileWriter, error) {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	if p == "/" {
		return nil, &driver.InvalidPathError{Path: p, Driver: Name, Reason: "the root is a directory"}
	}
	if err := d.mkdirAll(filepath.Dir(fp)); err != nil {
		return nil, d.wrap(p, err)
	}
	flags := os.O_WRONLY | os.O_CREATE
	if !appendTo {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(fp, flags, filePerm) //nolint:gosec // group-readable on purpose, see filePerm
	if err != nil {
		return nil, d.wrap(p, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		_ = f.Close()
		return nil, d.wrap(p, err)
	}
	return &fileWriter{d: d, p: p, f: f, size: size, started: size}, nil
}

// writeBehind is how much a durable writer lets pile up in the page cache
// before it asks the kernel to start writing it out. Without it, a large
// blob reaches the disk only at Commit's fsync, after the whole body was
// received; with it, the disk works while the body arrives and the fsync
// waits for the last few MiB only.
const writeBehind = 8 << 20

type fileWriter struct {
	d       *Driver
	p       string
	f       *os.File
	size    int64
	started int64 // bytes up to here were handed to startWriteback
	closed  bool
}

func (w *fileWriter) Write(b []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("filesystem: write to closed writer %s", w.p)
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return n, w.d.wrap(w.p, err)
	}
	if w.d.durable && w.size-w.started >= writeBehind {
		startWriteback(w.f, w.started, w.size-w.started)
		w.started = w.size
	}
	return n, nil
}

func (w *fileWriter) Size() int64 { return w.size }

func (w *fileWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.d.wrap(w.p, w.f.Close())
}

func (w *fileWriter) Cancel(context.Context) error {
	_ = w.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return w.d.wrap(w.p, err)
	}
	return nil
}

func (w *fileWriter) Commit(context.Context) error {
	if w.closed {
		return fmt.Errorf("filesystem: commit of closed writer %s", w.p)
	}
	if w.d.durable {
		if err := w.f.Sync(); err != nil {
			_ = w.Close()
			return w.d.wrap(w.p, err)
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return w.d.wrap(w.p, w.d.syncDir(filepath.Dir(w.f.Name())))
}

type fileInfo struct {
	p  string
	fi fs.FileInfo
}

func (f fileInfo) Path() string { return f.p }
func (f fileInfo) Size() int64 {
	if f.fi.IsDir() {
		return 0
	}
	return f.fi.Size()
}
func (f fileInfo) ModTime() time.Time { return f.fi.ModTime() }
func (f fileInfo) IsDir() bool        { return f.fi.IsDir() }

// walkInfo is what Walk hands its callback: the entry's path and type as
// the directory read gave them. Most walks only look at the path and
// whether it is a directory, so the lstat(2) that Size and ModTime need is
// made on the first call to one of them, not for every entry.
type walkInfo struct {
	p    string
	e    fs.DirEntry
	once sync.Once
	fi   fs.FileInfo
}

// info returns the entry's lstat, or nil if it is gone (removed after the
// directory was read).
func (w *walkInfo) info() fs.FileInfo {
	w.once.Do(func() {
		if fi, err := w.e.Info(); err == nil {
			w.fi = fi
		}
	})
	return w.fi
}

func (w *walkInfo) Path() string { return w.p }
func (w *walkInfo) IsDir() bool  { return w.e.IsDir() }

// Size is 0 for a directory, and for an entry removed since it was listed.
func (w *walkInfo) Size() int64 {
	if w.e.IsDir() {
		return 0
	}
	if fi := w.info(); fi != nil {
		return fi.Size()
	}
	return 0
}

// ModTime of an entry removed since it was listed is the time of the
// call: such an entry looks new, so that no janitor takes it for old
// debris.
func (w *walkInfo) ModTime() time.Time {
	if fi := w.info(); fi != nil {
		return fi.ModTime()
	}
	return time.Now()
}

// Stat implements driver.Driver.
func (d *Driver) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(fp)
	if err != nil {
		return nil, d.wrap(p, err)
	}
	return fileInfo{p: p, fi: fi}, nil
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, p string) ([]string, error) {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(fp)
	if err != nil {
		return nil, d.wrap(p, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries { // ReadDir sorts by name
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		out = append(out, path.Join(p, e.Name()))
	}
	return out, nil
}

// Move implements driver.Driver with rename(2): atomic, replacing dst.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	fsrc, err := d.resolve(ctx, src)
	if err != nil {
		return err
	}
	fdst, err := d.full(dst)
	if err != nil {
		return err
	}
	if _, err := os.Stat(fsrc); err != nil {
		return d.wrap(src, err)
	}
	if err := d.mkdirAll(filepath.Dir(fdst)); err != nil {
		return d.wrap(dst, err)
	}
	if err := os.Rename(fsrc, fdst); err != nil {
		return d.wrap(dst, err)
	}
	if err := d.syncDir(filepath.Dir(fdst)); err != nil {
		return err
	}
	if filepath.Dir(fsrc) != filepath.Dir(fdst) {
		return d.syncDir(filepath.Dir(fsrc))
	}
	return nil
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, p string) error {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return err
	}
	if p == "/" {
		return &driver.InvalidPathError{Path: p, Driver: Name, Reason: "refusing to delete the root"}
	}
	if err := removeTree(fp); err != nil {
		return d.wrap(p, err)
	}
	return nil
}

// Walk implements driver.Driver.
func (d *Driver) Walk(ctx context.Context, p string, fn driver.WalkFn) error {
	fp, err := d.full(p)
	if err != nil {
		return err
	}
	fi, err := os.Stat(fp)
	if err != nil {
		return d.wrap(p, err)
	}
	if !fi.IsDir() {
		return nil
	}
	return d.walk(ctx, p, fp, fn)
}

func (d *Driver) walk(ctx context.Context, p, fp string, fn driver.WalkFn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(fp)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		return d.wrap(p, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		cp, cfp := path.Join(p, e.Name()), filepath.Join(fp, e.Name())
		isDir := e.IsDir()
		err = fn(&walkInfo{p: cp, e: e})
		if isDir && errors.Is(err, driver.ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if isDir {
			if err := d.walk(ctx, cp, cfp, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// stagingDir returns where CreateDir and RemoveDir keep a directory while
// it is out of sight: the parent of fp's parent. A temporary there is not
// an entry of fp's parent, so neither our listings nor registry:2's (which
// shows every entry of a tags directory as a tag) ever see it. p needs two
// components for that, so that the staging dir is inside the root.
func (d *Driver) stagingDir(p, fp string) (string, error) {
	if path.Dir(path.Dir(p)) == path.Dir(p) {
		return "", &driver.InvalidPathError{Path: p, Driver: Name, Reason: "needs a parent directory below the root"}
	}
	return filepath.Dir(filepath.Dir(fp)), nil
}

// CreateDir implements driver.AtomicDirs: the files are written into a
// temporary directory and flushed, then one rename(2) puts the directory
// in place. rename refuses a target that is a non-empty directory, and
// replaces an empty one.
func (d *Driver) CreateDir(ctx context.Context, p string, files map[string][]byte) error {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return err
	}
	stage, err := d.stagingDir(p, fp)
	if err != nil {
		return err
	}
	parent := filepath.Dir(fp)
	if err := d.mkdirAll(parent); err != nil {
		return d.wrap(p, err)
	}
	tmp, err := os.MkdirTemp(stage, tmpPrefix+"*")
	if err != nil {
		return d.wrap(p, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	dirs := []string{tmp}
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		if err := driver.ValidatePath(Name, p+"/"+rel); err != nil {
			return err
		}
		f := filepath.Join(tmp, filepath.FromSlash(rel))
		for dir := filepath.Dir(f); dir != tmp; dir = filepath.Dir(dir) {
			if !slices.Contains(dirs, dir) {
				dirs = append(dirs, dir)
			}
		}
		if err := os.MkdirAll(filepath.Dir(f), dirPerm); err != nil {
			return d.wrap(p, err)
		}
		if err := d.writeFile(f, files[rel]); err != nil {
			return d.wrap(p, err)
		}
	}
	for _, dir := range dirs {
		if err := os.Chmod(dir, dirPerm); err != nil { // MkdirTemp makes 0700
			return d.wrap(p, err)
		}
		if err := d.syncDir(dir); err != nil {
			return err
		}
	}
	if err := renameDir(tmp, fp); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("filesystem: %s: %w", p, fs.ErrExist)
		}
		return d.wrap(p, err)
	}
	ok = true
	return d.syncDir(parent)
}

// renameDir is rename(2) itself: unlike os.Rename, it replaces a target
// that is an empty directory (and refuses a non-empty one).
func renameDir(from, to string) error {
	if err := syscall.Rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// writeFile creates f with content, flushed when durable.
func (d *Driver) writeFile(f string, content []byte) error {
	w, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm) //nolint:gosec // group-readable on purpose, see filePerm
	if err != nil {
		return err
	}
	_, err = w.Write(content)
	if err == nil && d.durable {
		err = w.Sync()
	}
	return errors.Join(err, w.Close())
}

// RemoveDir implements driver.AtomicDirs: one rename(2) takes the
// directory out of sight, under a temporary name in the staging dir, and
// then it is removed. A crash in between leaves a temporary directory that
// WalkTemporaries reports.
func (d *Driver) RemoveDir(ctx context.Context, p string) error {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return err
	}
	stage, err := d.stagingDir(p, fp)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(fp)
	if err != nil {
		return d.wrap(p, err)
	}
	if !fi.IsDir() {
		return &driver.InvalidPathError{Path: p, Driver: Name, Reason: "not a directory"}
	}
	tmp, err := os.MkdirTemp(stage, tmpPrefix+"*") // reserves a name; rename replaces an empty dir
	if err != nil {
		return d.wrap(p, err)
	}
	if err := renameDir(fp, tmp); err != nil {
		_ = os.Remove(tmp)
		return d.wrap(p, err)
	}
	if err := d.syncDir(filepath.Dir(fp)); err != nil {
		return err
	}
	// The directory is gone from sight. Its modification time is its
	// own, possibly old: make it the time of this removal, so that a
	// storage check run after a crash here counts it as recent debris.
	now := time.Now()
	_ = os.Chtimes(tmp, now, now)
	if err := os.RemoveAll(tmp); err != nil {
		return d.wrap(p, err)
	}
	return nil
}

// WalkTemporaries implements driver.Janitor: the temporary files of
// atomic writes (PutContent) and the temporary directories of CreateDir
// and RemoveDir below p, which a write killed before its rename (or a
// removal killed after it) leaves behind. A temporary directory is
// reported once, not its contents.
func (d *Driver) WalkTemporaries(ctx context.Context, p string, fn driver.WalkFn) error {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return err
	}
	err = filepath.WalkDir(fp, func(name string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(d.root, name)
		if err != nil {
			return err
		}
		if err := fn(fileInfo{p: "/" + filepath.ToSlash(rel), fi: fi}); err != nil {
			return err
		}
		if e.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil && !errors.Is(err, ctx.Err()) {
		return d.wrap(p, err)
	}
	return err
}

// RemoveTemporary implements driver.Janitor.
func (d *Driver) RemoveTemporary(ctx context.Context, p string) error {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(path.Base(p), tmpPrefix) {
		return &driver.InvalidPathError{Path: p, Driver: Name, Reason: "not a temporary file"}
	}
	fi, err := os.Lstat(fp)
	if err != nil {
		return d.wrap(p, err)
	}
	if fi.IsDir() {
		return d.wrap(p, os.RemoveAll(fp))
	}
	if err := os.Remove(fp); err != nil {
		return d.wrap(p, err)
	}
	return nil
}

// RemoveEmptyDir implements driver.Janitor with rmdir(2), which refuses a
// directory that has entries.
func (d *Driver) RemoveEmptyDir(ctx context.Context, p string) error {
	fp, err := d.resolve(ctx, p)
	if err != nil {
		return err
	}
	if p == "/" {
		return &driver.InvalidPathError{Path: p, Driver: Name, Reason: "refusing to remove the root"}
	}
	fi, err := os.Lstat(fp)
	if err != nil {
		return d.wrap(p, err)
	}
	if !fi.IsDir() {
		return &driver.InvalidPathError{Path: p, Driver: Name, Reason: "not a directory"}
	}
	if err := os.Remove(fp); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("filesystem: %s: %w", p, driver.ErrDirNotEmpty)
		}
		return d.wrap(p, err)
	}
	return d.syncDir(filepath.Dir(fp))
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.LocalFiler    = (*Driver)(nil)
	_ driver.Janitor       = (*Driver)(nil)
	_ driver.ScratchWriter = (*Driver)(nil)
	_ driver.AtomicDirs    = (*Driver)(nil)
)
