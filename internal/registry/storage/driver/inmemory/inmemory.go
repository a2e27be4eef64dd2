// Package inmemory is a storage driver that keeps everything in memory.
// It is for tests: content is lost when the process exits.
package inmemory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// Name is the driver's config name.
const Name = "inmemory"

type file struct {
	data []byte
	mod  time.Time
}

// Driver keeps files in a map keyed by path; directories are implied by
// the files below them.
type Driver struct {
	mu    sync.RWMutex
	files map[string]*file
}

// New returns an empty driver.
func New() *Driver { return &Driver{files: make(map[string]*file)} }

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

func (d *Driver) check(p string) error { return driver.ValidatePath(Name, p) }

func notFound(p string) error { return &driver.PathNotFoundError{Path: p, Driver: Name} }

// dirPrefix is the prefix of every path below p.
func dirPrefix(p string) string {
	if p == "/" {
		return "/"
	}
	return p + "/"
}

// isDir reports whether some file lives below p. Caller holds mu.
func (d *Driver) isDir(p string) bool {
	pre := dirPrefix(p)
	for k := range d.files {
		if strings.HasPrefix(k, pre) {
			return true
		}
	}
	return false
}

// parentIsFile reports whether a parent of p is a file. Caller holds mu.
func (d *Driver) parentIsFile(p string) bool {
	for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
		if _, ok := d.files[p[:i]]; ok {
			return true
		}
	}
	return false
}

// GetContent implements driver.Driver.
func (d *Driver) GetContent(ctx context.Context, p string) ([]byte, error) {
	if err := d.check(p); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	f, ok := d.files[p]
	if !ok {
		return nil, notFound(p)
	}
	return bytes.Clone(f.data), nil
}

func (d *Driver) put(p string, data []byte) error {
	if p == "/" || d.isDir(p) || d.parentIsFile(p) {
		return fmt.Errorf("%s: %s: a directory and a file would share the path", Name, p)
	}
	d.files[p] = &file{data: data, mod: time.Now()}
	return nil
}

// PutContent implements driver.Driver.
func (d *Driver) PutContent(ctx context.Context, p string, content []byte) error {
	if err := d.check(p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.put(p, bytes.Clone(content))
}

// Reader implements driver.Driver.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := d.check(p); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	f, ok := d.files[p]
	if !ok {
		return nil, notFound(p)
	}
	if offset < 0 || offset > int64(len(f.data)) {
		return nil, &driver.InvalidOffsetError{Path: p, Offset: offset, Driver: Name}
	}
	// File data is never modified in place (writers replace the slice), so
	// the reader can keep the current one.
	return io.NopCloser(bytes.NewReader(f.data[offset:])), nil
}

// Writer implements driver.Driver. Data is buffered in the writer and
// published at Close or Commit.
func (d *Driver) Writer(ctx context.Context, p string, appendTo bool) (driver.FileWriter, error) {
	if err := d.check(p); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var buf []byte
	if f, ok := d.files[p]; ok && appendTo {
		buf = bytes.Clone(f.data)
	}
	if err := d.put(p, bytes.Clone(buf)); err != nil {
		return nil, err
	}
	return &writer{d: d, p: p, buf: buf}, nil
}

type writer struct {
	d      *Driver
	p      string
	buf    []byte
	closed bool
}

func (w *writer) Write(b []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("%s: write to closed writer %s", Name, w.p)
	}
	w.buf = append(w.buf, b...)
	return len(b), nil
}

func (w *writer) Size() int64 { return int64(len(w.buf)) }

func (w *writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.d.files[w.p] = &file{data: w.buf, mod: time.Now()}
	return nil
}

func (w *writer) Cancel(context.Context) error {
	w.closed = true
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	delete(w.d.files, w.p)
	return nil
}

func (w *writer) Commit(context.Context) error {
	if w.closed {
		return fmt.Errorf("%s: commit of closed writer %s", Name, w.p)
	}
	return w.Close()
}

type info struct {
	p    string
	size int64
	mod  time.Time
	dir  bool
}

func (i info) Path() string       { return i.p }
func (i info) Size() int64        { return i.size }
func (i info) ModTime() time.Time { return i.mod }
func (i info) IsDir() bool        { return i.dir }

// Stat implements driver.Driver.
func (d *Driver) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if err := d.check(p); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if f, ok := d.files[p]; ok {
		return info{p: p, size: int64(len(f.data)), mod: f.mod}, nil
	}
	if p == "/" || d.isDir(p) {
		return info{p: p, dir: true, mod: time.Now()}, nil
	}
	return nil, notFound(p)
}

// children returns the direct children of p with whether each is a
// directory. Caller holds mu.
func (d *Driver) children(p string) map[string]bool {
	pre := dirPrefix(p)
	out := make(map[string]bool)
	for k := range d.files {
		if !strings.HasPrefix(k, pre) {
			continue
		}
		rest := k[len(pre):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			out[pre+rest[:i]] = true
		} else {
			out[k] = false
		}
	}
	return out
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, p string) ([]string, error) {
	if err := d.check(p); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	ch := d.children(p)
	if len(ch) == 0 && p != "/" {
		return nil, notFound(p)
	}
	out := make([]string, 0, len(ch))
	for k := range ch {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// Move implements driver.Driver.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if err := d.check(src); err != nil {
		return err
	}
	if err := d.check(dst); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.files[src]; ok {
		if src == dst {
			return nil
		}
		if err := d.put(dst, f.data); err != nil {
			return err
		}
		delete(d.files, src)
		return nil
	}
	pre := dirPrefix(src)
	moved := false
	for k, f := range d.files {
		if strings.HasPrefix(k, pre) {
			d.files[dirPrefix(dst)+k[len(pre):]] = f
			delete(d.files, k)
			moved = true
		}
	}
	if !moved {
		return notFound(src)
	}
	return nil
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, p string) error {
	if err := d.check(p); err != nil {
		return err
	}
	if p == "/" {
		return &driver.InvalidPathError{Path: p, Driver: Name, Reason: "refusing to delete the root"}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	found := false
	if _, ok := d.files[p]; ok {
		delete(d.files, p)
		found = true
	}
	pre := dirPrefix(p)
	for k := range d.files {
		if strings.HasPrefix(k, pre) {
			delete(d.files, k)
			found = true
		}
	}
	if !found {
		return notFound(p)
	}
	return nil
}

// Walk implements driver.Driver over a snapshot of the paths below p.
func (d *Driver) Walk(ctx context.Context, p string, fn driver.WalkFn) error {
	if err := d.check(p); err != nil {
		return err
	}
	d.mu.RLock()
	if _, ok := d.files[p]; ok {
		d.mu.RUnlock()
		return nil
	}
	if p != "/" && !d.isDir(p) {
		d.mu.RUnlock()
		return notFound(p)
	}
	pre := dirPrefix(p)
	entries := make(map[string]info)
	for k, f := range d.files {
		if !strings.HasPrefix(k, pre) {
			continue
		}
		entries[k] = info{p: k, size: int64(len(f.data)), mod: f.mod}
		for i := strings.LastIndexByte(k, '/'); i > len(pre)-1; i = strings.LastIndexByte(k[:i], '/') {
			entries[k[:i]] = info{p: k[:i], dir: true, mod: f.mod}
		}
	}
	d.mu.RUnlock()
	paths := make([]string, 0, len(entries))
	for k := range entries {
		paths = append(paths, k)
	}
	// Depth-first sorted order is component-wise order.
	sort.Slice(paths, func(i, j int) bool {
		return strings.Compare(strings.ReplaceAll(paths[i], "/", "\x00"), strings.ReplaceAll(paths[j], "/", "\x00")) < 0
	})
	skip := ""
	for _, k := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if skip != "" && strings.HasPrefix(k, skip) {
			continue
		}
		skip = ""
		e := entries[k]
		err := fn(e)
		if e.dir && errors.Is(err, driver.ErrSkipDir) {
			skip = k + "/"
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var _ driver.Driver = (*Driver)(nil)
