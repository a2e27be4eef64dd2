package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

// fullAfter is a storage driver whose upload data files refuse writes
// beyond limit bytes, as a disk that fills up part way through a blob.
type fullAfter struct {
	driver.Driver
	limit int64
}

var errDiskFull = errors.New("no space left on device")

func (d fullAfter) Writer(ctx context.Context, p string, appendTo bool) (driver.FileWriter, error) {
	w, err := d.Driver.Writer(ctx, p, appendTo)
	if err != nil || !strings.Contains(p, "/_uploads/") || !strings.HasSuffix(p, "/data") {
		return w, err
	}
	return &limitedWriter{FileWriter: w, limit: d.limit}, nil
}

type limitedWriter struct {
	driver.FileWriter
	limit int64
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	room := w.limit - w.Size()
	if room <= 0 {
		return 0, errDiskFull
	}
	if int64(len(p)) > room {
		n, err := w.FileWriter.Write(p[:room])
		if err == nil {
			err = errDiskFull
		}
		return n, err
	}
	return w.FileWriter.Write(p)
}

// fullAfterLocal is fullAfter over a driver with local files, which the
// readers read the upload's data from.
type fullAfterLocal struct {
	fullAfter
	driver.LocalFiler
}

// drivers are the storage drivers the fetch tests run on: one the readers
// cannot read from (they read a temporary file), and the filesystem
// driver, whose upload data the readers read. full makes the upload's
// data refuse bytes beyond that many (0: no limit).
func drivers(t *testing.T, full int64) map[string]driver.Driver {
	fs, err := filesystem.New(filesystem.Options{RootDirectory: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if full == 0 {
		return map[string]driver.Driver{"inmemory": inmemory.New(), "filesystem": fs}
	}
	return map[string]driver.Driver{
		"inmemory":   fullAfter{Driver: inmemory.New(), limit: full},
		"filesystem": fullAfterLocal{fullAfter: fullAfter{Driver: fs, limit: full}, LocalFiler: fs},
	}
}

// layerBytes returns n bytes that differ from one MiB to the next.
func layerBytes(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d of a layer\n", i)
	}
	return b.Bytes()[:n]
}

// readConcurrently has clients read blob d of repository name through
// the cache at once and returns what each got.
func readConcurrently(e *env, name string, d digest.Digest, clients int) ([][]byte, []error) {
	got, errs := make([][]byte, clients), make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			rc, _, err := e.cache.FetchBlob(context.Background(), name, d)
			if err != nil {
				errs[i] = err
				return
			}
			defer func() { _ = rc.Close() }()
			got[i], errs[i] = io.ReadAll(rc)
		})
	}
	wg.Wait()
	e.cache.fetching.Wait()
	return got, errs
}

// checkNotStored fails t when blob d is in repository name or an upload
// of it was left behind.
func checkNotStored(t *testing.T, e *env, name string, d digest.Digest) {
	t.Helper()
	repo, _ := e.reg.Repository(name)
	if _, err := repo.StatBlob(context.Background(), d); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Errorf("blob %s stored: %v", d, err)
	}
	uploads, err := e.d.List(context.Background(), "/docker/registry/v2/repositories/"+name+"/_uploads")
	if err != nil && !driver.IsNotFound(err) {
		t.Fatal(err)
	}
	if len(uploads) != 0 {
		t.Errorf("uploads left behind: %v", uploads)
	}
}

// Storage gives up part way (its disk is full): the readers still get
// every byte, checked against the digest from the temporary file, since
// storage's running hash is gone; nothing is stored.
func TestBlobStorageFailsPartWay(t *testing.T) {
	for name, sd := range drivers(t, 1<<20) {
		t.Run(name, func(t *testing.T) {
			up := newFakeUpstream(t, "")
			layer := layerBytes(3 << 20)
			up.push("app", "1", layer)
			d := digest.FromBytes(layer)
			e := newEnv(t, up, envOpts{d: sd})
			got, errs := readConcurrently(e, "app", d, 3)
			for i := range got {
				if errs[i] != nil || !bytes.Equal(got[i], layer) {
					t.Errorf("reader %d: %d bytes, %v; want the %d bytes of the blob", i, len(got[i]), errs[i], len(layer))
				}
			}
			checkNotStored(t, e, "app", d)
			if !strings.Contains(e.logs.String(), errDiskFull.Error()) {
				t.Errorf("storage's failure not logged:\n%s", e.logs)
			}
		})
	}
}

// The same with bytes that do not match in the part storage took before
// it gave up: the readers get an error, not an end.
func TestBlobStorageFailsPartWayWrongBytes(t *testing.T) {
	wrongBytes(t, 1<<20, 3<<20, 1000)
}

// Wrong bytes while storage takes them all: storage's running hash finds
// it, the readers get an error and nothing is committed.
func TestBlobWrongBytesNothingCommitted(t *testing.T) {
	wrongBytes(t, 0, 2<<20, 2<<20-1)
}

// wrongBytes has the upstream send a size-byte layer with byte flip
// changed, to three readers, on storage failing after failAfter bytes (0:
// never): every reader must get a digest mismatch, and nothing is stored.
func wrongBytes(t *testing.T, failAfter int64, size, flip int) {
	t.Helper()
	for name, sd := range drivers(t, failAfter) {
		t.Run(name, func(t *testing.T) {
			up := newFakeUpstream(t, "")
			layer := layerBytes(size)
			d := digest.FromBytes(layer)
			bad := bytes.Clone(layer)
			bad[flip] ^= 1
			up.mu.Lock()
			up.blobs[d] = bad
			up.mu.Unlock()
			e := newEnv(t, up, envOpts{d: sd})
			_, errs := readConcurrently(e, "app", d, 3)
			for i, err := range errs {
				if err == nil || !strings.Contains(err.Error(), "not "+d.String()) {
					t.Errorf("reader %d: %v, want a digest mismatch", i, err)
				}
			}
			checkNotStored(t, e, "app", d)
		})
	}
}

// A sha512 blob is hashed by the fetch itself (storage's running hash is
// sha256): right bytes are read and stored, wrong ones are refused.
func TestBlobSHA512(t *testing.T) {
	for name, sd := range drivers(t, 0) {
		t.Run(name, func(t *testing.T) {
			up := newFakeUpstream(t, "")
			layer := layerBytes(1 << 20)
			good := digest.SHA512.FromBytes(layer)
			wrong := digest.SHA512.FromString("other")
			up.mu.Lock()
			up.blobs[good] = layer
			up.blobs[wrong] = layer
			up.mu.Unlock()
			e := newEnv(t, up, envOpts{d: sd})
			got, errs := readConcurrently(e, "app", good, 2)
			for i := range got {
				if errs[i] != nil || !bytes.Equal(got[i], layer) {
					t.Errorf("reader %d of the sha512 blob: %d bytes, %v", i, len(got[i]), errs[i])
				}
			}
			repo, _ := e.reg.Repository("app")
			if desc, err := repo.StatBlob(context.Background(), good); err != nil || desc.Size != int64(len(layer)) {
				t.Errorf("sha512 blob not stored: %+v, %v", desc, err)
			}
			if _, errs := readConcurrently(e, "app", wrong, 2); errs[0] == nil || errs[1] == nil {
				t.Errorf("wrong bytes for a sha512 digest read without an error: %v", errs)
			}
			checkNotStored(t, e, "app", wrong)
		})
	}
}

// On local storage the readers read the upload's data: no temporary file
// is needed (the directory for them does not exist here), and the blob
// is read and stored.
func TestBlobReadFromUploadData(t *testing.T) {
	up := newFakeUpstream(t, "")
	layer := layerBytes(3 << 20)
	up.push("app", "1", layer)
	d := digest.FromBytes(layer)
	e := newEnv(t, up, envOpts{d: drivers(t, 0)["filesystem"], tempDir: filepath.Join(t.TempDir(), "missing")})
	got, errs := readConcurrently(e, "app", d, 3)
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], layer) {
			t.Errorf("reader %d: %d bytes, %v", i, len(got[i]), errs[i])
		}
	}
	repo, _ := e.reg.Repository("app")
	if _, err := repo.StatBlob(context.Background(), d); err != nil {
		t.Errorf("blob not stored: %v", err)
	}
}

// heldWrites is a filesystem driver whose upload data writers hold their
// second Write until release is closed, saying so on held.
type heldWrites struct {
	driver.Driver
	driver.LocalFiler
	held, release chan struct{}
}

func (d heldWrites) Writer(ctx context.Context, p string, appendTo bool) (driver.FileWriter, error) {
	w, err := d.Driver.Writer(ctx, p, appendTo)
	if err != nil || !strings.Contains(p, "/_uploads/") || !strings.HasSuffix(p, "/data") || !appendTo {
		return w, err
	}
	return &heldWriter{FileWriter: w, d: d}, nil
}

type heldWriter struct {
	driver.FileWriter
	d      heldWrites
	writes int
}

func (w *heldWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes == 2 {
		close(w.d.held)
		<-w.d.release
	}
	return w.FileWriter.Write(p)
}

// The readers of the upload's data are never let past what storage has
// written: while storage holds a read of the body unwritten, they may
// read no further than the data file's end.
func TestBlobReadersStayBehindStorage(t *testing.T) {
	up := newFakeUpstream(t, "")
	layer := layerBytes(5 << 20)
	up.push("app", "1", layer)
	d := digest.FromBytes(layer)
	fs := drivers(t, 0)["filesystem"]
	hd := heldWrites{Driver: fs, LocalFiler: fs.(driver.LocalFiler), held: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, up, envOpts{d: hd})
	rc, _, err := e.cache.FetchBlob(context.Background(), "app", d)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	<-hd.held
	f := rc.(*fetchReader).f
	f.mu.Lock()
	written, file := f.written, f.file
	f.mu.Unlock()
	fi, err := file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if written == 0 || written > fi.Size() {
		t.Errorf("readers may read %d bytes; storage's data file holds %d", written, fi.Size())
	}
	close(hd.release)
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, layer) {
		t.Errorf("read %d bytes, %v", len(got), err)
	}
}
