package driver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Checked wraps d so that every call first checks its context and its
// paths against the path rules (ValidatePath), whatever d itself checks: a
// new driver cannot forget them. The optional capabilities of d
// (LocalFiler, Redirector) stay discoverable by type assertion, and
// io.Closer is passed through. The wrapper always implements Janitor and
// AtomicDirs and Stager, answering ErrUnsupported when d does not, and ExactMover,
// Pinger and ScratchWriter, with a generic fallback when d does not.
func Checked(d Driver) Driver {
	if _, ok := d.(checkedMarker); ok {
		return d
	}
	c := checked{d: d}
	lf, local := d.(LocalFiler)
	rd, redirect := d.(Redirector)
	switch {
	case local && redirect:
		return struct {
			checked
			checkedLocal
			checkedRedirect
		}{c, checkedLocal{c, lf}, checkedRedirect{c, rd}}
	case local:
		return struct {
			checked
			checkedLocal
		}{c, checkedLocal{c, lf}}
	case redirect:
		return struct {
			checked
			checkedRedirect
		}{c, checkedRedirect{c, rd}}
	}
	return c
}

type checkedMarker interface{ unwrap() Driver }

type checked struct{ d Driver }

func (c checked) unwrap() Driver { return c.d }

func (c checked) check(ctx context.Context, paths ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range paths {
		if err := ValidatePath(c.d.Name(), p); err != nil {
			return err
		}
	}
	return nil
}

func (c checked) Name() string { return c.d.Name() }

func (c checked) GetContent(ctx context.Context, path string) ([]byte, error) {
	if err := c.check(ctx, path); err != nil {
		return nil, err
	}
	return c.d.GetContent(ctx, path)
}

func (c checked) PutContent(ctx context.Context, path string, content []byte) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	return c.d.PutContent(ctx, path, content)
}

func (c checked) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := c.check(ctx, path); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, &InvalidOffsetError{Path: path, Offset: offset, Driver: c.d.Name()}
	}
	return c.d.Reader(ctx, path, offset)
}

func (c checked) Writer(ctx context.Context, path string, appendTo bool) (FileWriter, error) {
	if err := c.check(ctx, path); err != nil {
		return nil, err
	}
	return c.d.Writer(ctx, path, appendTo)
}

func (c checked) Stat(ctx context.Context, path string) (FileInfo, error) {
	if err := c.check(ctx, path); err != nil {
		return nil, err
	}
	return c.d.Stat(ctx, path)
}

func (c checked) List(ctx context.Context, path string) ([]string, error) {
	if err := c.check(ctx, path); err != nil {
		return nil, err
	}
	return c.d.List(ctx, path)
}

func (c checked) Move(ctx context.Context, src, dst string) error {
	if err := c.check(ctx, src, dst); err != nil {
		return err
	}
	return c.d.Move(ctx, src, dst)
}

// MoveExact uses the driver's own MoveExact when it has one; otherwise it
// checks src's size with Stat and moves it (the filesystem's rename is
// atomic, and its writers are serialised by the registry's upload lock).
func (c checked) MoveExact(ctx context.Context, src, dst string, size int64) error {
	if err := c.check(ctx, src, dst); err != nil {
		return err
	}
	if em, ok := c.d.(ExactMover); ok {
		return em.MoveExact(ctx, src, dst, size)
	}
	fi, err := c.d.Stat(ctx, src)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Size() != size {
		return fmt.Errorf("%s: move %s: %w (%d bytes, expected %d)", c.d.Name(), src, ErrChanged, fi.Size(), size)
	}
	return c.d.Move(ctx, src, dst)
}

// Ping uses the driver's own Ping when it has one; otherwise a Stat of the
// root, where not found (an empty store) counts as reachable.
func (c checked) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p, ok := c.d.(Pinger); ok {
		return p.Ping(ctx)
	}
	if _, err := c.d.Stat(ctx, "/"); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

func (c checked) Delete(ctx context.Context, path string) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	if path == "/" {
		return &InvalidPathError{Path: path, Driver: c.d.Name(), Reason: "refusing to delete the storage root"}
	}
	return c.d.Delete(ctx, path)
}

func (c checked) Walk(ctx context.Context, path string, fn WalkFn) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	return c.d.Walk(ctx, path, fn)
}

// Close closes the wrapped driver when it holds resources.
func (c checked) Close() error {
	if cl, ok := c.d.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

type checkedLocal struct {
	c  checked
	lf LocalFiler
}

func (l checkedLocal) LocalFile(path string) (*os.File, error) {
	if err := ValidatePath(l.c.d.Name(), path); err != nil {
		return nil, err
	}
	return l.lf.LocalFile(path)
}

type checkedRedirect struct {
	c  checked
	rd Redirector
}

func (r checkedRedirect) RedirectURL(req *http.Request, path string) (string, error) {
	if err := r.c.check(req.Context(), path); err != nil {
		return "", err
	}
	return r.rd.RedirectURL(req, path)
}

func (c checked) WalkTemporaries(ctx context.Context, path string, fn WalkFn) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	j, ok := c.d.(Janitor)
	if !ok {
		return ErrUnsupported
	}
	return j.WalkTemporaries(ctx, path, fn)
}

func (c checked) RemoveTemporary(ctx context.Context, path string) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	j, ok := c.d.(Janitor)
	if !ok {
		return ErrUnsupported
	}
	return j.RemoveTemporary(ctx, path)
}

func (c checked) RemoveEmptyDir(ctx context.Context, path string) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	if path == "/" {
		return &InvalidPathError{Path: path, Driver: c.d.Name(), Reason: "refusing to remove the storage root"}
	}
	j, ok := c.d.(Janitor)
	if !ok {
		return ErrUnsupported
	}
	return j.RemoveEmptyDir(ctx, path)
}

func (c checked) PutScratch(ctx context.Context, path string, content []byte) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	if s, ok := c.d.(ScratchWriter); ok {
		return s.PutScratch(ctx, path, content)
	}
	return c.d.PutContent(ctx, path, content)
}

func (c checked) CreateDir(ctx context.Context, path string, files map[string][]byte) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	for rel := range files {
		if err := c.check(ctx, path+"/"+rel); err != nil {
			return err
		}
	}
	a, ok := c.d.(AtomicDirs)
	if !ok {
		return ErrUnsupported
	}
	return a.CreateDir(ctx, path, files)
}

func (c checked) RemoveDir(ctx context.Context, path string) error {
	if err := c.check(ctx, path); err != nil {
		return err
	}
	if path == "/" {
		return &InvalidPathError{Path: path, Driver: c.d.Name(), Reason: "refusing to remove the storage root"}
	}
	a, ok := c.d.(AtomicDirs)
	if !ok {
		return ErrUnsupported
	}
	return a.RemoveDir(ctx, path)
}

func (c checked) StagedWriter(ctx context.Context, path string, size int64) (FileWriter, error) {
	if err := c.check(ctx, path); err != nil {
		return nil, err
	}
	s, ok := c.d.(Stager)
	if !ok {
		return nil, ErrUnsupported
	}
	return s.StagedWriter(ctx, path, size)
}

func (c checked) PurgeStaged(ctx context.Context, path string, cutoff time.Time, dryRun bool) (int, error) {
	if err := c.check(ctx, path); err != nil {
		return 0, err
	}
	s, ok := c.d.(Stager)
	if !ok {
		return 0, ErrUnsupported
	}
	return s.PurgeStaged(ctx, path, cutoff, dryRun)
}

var (
	_ Stager        = checked{}
	_ Driver        = checked{}
	_ Janitor       = checked{}
	_ ExactMover    = checked{}
	_ Pinger        = checked{}
	_ ScratchWriter = checked{}
	_ AtomicDirs    = checked{}
)
