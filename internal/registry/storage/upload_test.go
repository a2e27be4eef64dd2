package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUploadChunkedResumeAndLayout(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "library/alpine")
		content := randomBytes(t, 3<<20+17)
		u, err := r.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Append(ctx, bytes.NewReader(content[:1<<20])); err != nil {
			t.Fatal(err)
		}
		// A new registry over the same storage: a restart.
		reg2 := New(reg.Driver(), Options{})
		u2, err := mustRepo(t, reg2, "library/alpine").ResumeUpload(ctx, u.ID())
		if err != nil {
			t.Fatalf("ResumeUpload: %v", err)
		}
		if u2.Size() != 1<<20 || u2.h == nil {
			t.Fatalf("resumed upload: size %d, hash state loaded %v", u2.Size(), u2.h != nil)
		}
		if !u2.StartedAt().Equal(u.StartedAt()) {
			t.Errorf("StartedAt %v, want %v", u2.StartedAt(), u.StartedAt())
		}
		if _, err := u2.Append(ctx, bytes.NewReader(content[1<<20:2<<20])); err != nil {
			t.Fatal(err)
		}
		// Lose the hash state: the next append re-hashes the data.
		if err := reg.Driver().Delete(ctx, uploadDir("library/alpine", u.ID())+"/hashstates"); err != nil {
			t.Fatal(err)
		}
		u3, err := r.ResumeUpload(ctx, u.ID())
		if err != nil {
			t.Fatal(err)
		}
		if n, err := u3.Append(ctx, bytes.NewReader(content[2<<20:])); err != nil || n != int64(len(content)-2<<20) {
			t.Fatalf("Append: %d, %v", n, err)
		}
		dg := digest.FromBytes(content)
		desc, err := u3.Commit(ctx, dg, int64(len(content)))
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if desc.Digest != dg || desc.Size != int64(len(content)) {
			t.Errorf("Commit descriptor %+v", desc)
		}
		// registry:2's layout, byte for byte.
		data, err := reg.Driver().GetContent(ctx, "/docker/registry/v2/blobs/sha256/"+dg.Encoded()[:2]+"/"+dg.Encoded()+"/data")
		if err != nil || !bytes.Equal(data, content) {
			t.Fatalf("blob data at the registry:2 path: %v", err)
		}
		link, err := reg.Driver().GetContent(ctx, "/docker/registry/v2/repositories/library/alpine/_layers/sha256/"+dg.Encoded()+"/link")
		if err != nil || string(link) != dg.String() {
			t.Fatalf("layer link = %q, %v; want %q without newline", link, err, dg)
		}
		if _, err := reg.Driver().Stat(ctx, uploadDir("library/alpine", u.ID())); !driver.IsNotFound(err) {
			t.Errorf("upload directory left after commit: %v", err)
		}
		br, err := r.OpenBlob(ctx, dg)
		if err != nil {
			t.Fatal(err)
		}
		defer br.Close()
		if br.Size() != int64(len(content)) {
			t.Errorf("Size %d", br.Size())
		}
		if _, ok := reg.Driver().(driver.LocalFiler); ok != (br.File() != nil) {
			t.Errorf("File() = %v for a LocalFiler=%v driver", br.File(), ok)
		}
		if _, err := br.Seek(1000, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(br)
		if err != nil || !bytes.Equal(got, content[1000:]) {
			t.Errorf("read after seek: %d bytes, %v", len(got), err)
		}
	})
}

func TestUploadCommitChecks(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "a/b")
		content := []byte("some content")
		sum := sha512.Sum512(content)
		sum384 := sha512.Sum384(content)
		tests := []struct {
			name string
			dgst digest.Digest
			size int64
			want error
		}{
			{"wrong digest", digest.FromString("other"), -1, ErrDigestInvalid},
			{"malformed digest", "sha256:xyz", -1, ErrDigestInvalid},
			{"unknown algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e", -1, ErrDigestInvalid},
			{"sha384 is not offered", digest.NewDigestFromBytes(digest.SHA384, sum384[:]), -1, ErrDigestInvalid},
			{"wrong size", digest.FromBytes(content), 5, ErrSizeInvalid},
			{"sha256", digest.FromBytes(content), int64(len(content)), nil},
			{"sha512", digest.NewDigestFromBytes(digest.SHA512, sum[:]), -1, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				u, err := r.NewUpload(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := u.Append(ctx, bytes.NewReader(content)); err != nil {
					t.Fatal(err)
				}
				desc, err := u.Commit(ctx, tc.dgst, tc.size)
				if tc.want != nil {
					wantErr(t, "Commit", err, tc.want)
					if _, err := r.StatBlob(ctx, digest.FromBytes(content)); err == nil && tc.want != nil && tc.name == "wrong digest" {
						t.Errorf("blob visible after a failed commit")
					}
					if err := u.Cancel(ctx); err != nil {
						t.Errorf("Cancel after a failed commit: %v", err)
					}
					_, err = r.ResumeUpload(ctx, u.ID())
					wantErr(t, "ResumeUpload after Cancel", err, ErrBlobUploadUnknown)
					return
				}
				if err != nil {
					t.Fatalf("Commit: %v", err)
				}
				st, err := r.StatBlob(ctx, tc.dgst)
				if err != nil || st.Size != int64(len(content)) || desc.Digest != tc.dgst {
					t.Errorf("StatBlob(%s) = %+v, %v", tc.dgst, st, err)
				}
			})
		}
	})
}

func TestResumeUnknown(t *testing.T) {
	reg := New(drivers(t)["inmemory"](t), Options{})
	r := mustRepo(t, reg, "x")
	for _, id := range []string{"nope", "../../etc", "", "a/b", "00000000-0000-0000-0000-000000000000", ".", "..", "=x", "-x", "_x", "a%2fb"} {
		_, err := r.ResumeUpload(context.Background(), id)
		wantErr(t, "ResumeUpload("+id+")", err, ErrBlobUploadUnknown)
	}
}

func TestConcurrentCommitsOfTheSameBlob(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		content := randomBytes(t, 512<<10)
		dg := digest.FromBytes(content)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := mustRepo(t, reg, []string{"one", "two"}[i%2])
				u, err := r.NewUpload(ctx)
				if err != nil {
					errs <- err
					return
				}
				if _, err := u.Append(ctx, bytes.NewReader(content)); err != nil {
					errs <- err
					return
				}
				_, err = u.Commit(ctx, dg, int64(len(content)))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"one", "two"} {
			br, err := mustRepo(t, reg, name).OpenBlob(ctx, dg)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(br)
			br.Close()
			if !bytes.Equal(got, content) {
				t.Errorf("%s: blob content differs", name)
			}
		}
	})
}

// zeroReader yields n zero bytes without holding them.
type zeroReader struct{ left int64 }

func (z *zeroReader) Read(b []byte) (int, error) {
	if z.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > z.left {
		b = b[:z.left]
	}
	clear(b)
	z.left -= int64(len(b))
	return len(b), nil
}

// peakHeap samples HeapInuse while running.
type peakHeap struct {
	mu   sync.Mutex
	peak uint64
}

func (p *peakHeap) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	p.mu.Lock()
	p.peak = max(p.peak, m.HeapInuse)
	p.mu.Unlock()
}

// sampling wraps a reader and samples the heap every 16 MiB.
type sampling struct {
	r    io.Reader
	p    *peakHeap
	seen int64
}

func (s *sampling) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if s.seen/(16<<20) != (s.seen+int64(n))/(16<<20) {
		s.p.sample()
	}
	s.seen += int64(n)
	return n, err
}

func TestUploadMemoryBounded(t *testing.T) {
	const size = 256 << 20
	const allowed = 32 << 20
	d, err := filesystem.New(filesystem.Options{RootDirectory: t.TempDir(), Durable: false})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := mustRepo(t, New(d, Options{}), "big/blob")
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	p := &peakHeap{}
	u, err := r.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two appends, so resuming and the hash state are on the path too.
	if _, err := u.Append(ctx, &sampling{r: &zeroReader{left: size / 2}, p: p}); err != nil {
		t.Fatal(err)
	}
	u, err = r.ResumeUpload(ctx, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, &sampling{r: &zeroReader{left: size / 2}, p: p}); err != nil {
		t.Fatal(err)
	}
	h := digest.Canonical.Digester()
	if _, err := io.Copy(h.Hash(), &zeroReader{left: size}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, h.Digest(), size); err != nil {
		t.Fatal(err)
	}
	br, err := r.OpenBlob(ctx, h.Digest())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, &sampling{r: br, p: p})
	br.Close()
	if err != nil || n != size {
		t.Fatalf("read back %d bytes, %v", n, err)
	}
	p.sample()
	if p.peak > base.HeapInuse && p.peak-base.HeapInuse > allowed {
		t.Errorf("HeapInuse grew by %d MiB while pushing %d MiB (allowed %d MiB)",
			(p.peak-base.HeapInuse)>>20, size>>20, allowed>>20)
	}
}

// TestUploadWrongHashState: the hash state is written without waiting for
// stable storage, so after a power loss it may be damaged. A state that
// loads but does not match the data (here, the state of other bytes of the
// same length) must not fail a client that sends the right digest.
func TestUploadWrongHashState(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "wrong/state")
		content := randomBytes(t, 1<<20+3)
		u, err := r.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Append(ctx, bytes.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		other := sha256.New()
		other.Write(randomBytes(t, len(content)))
		state, err := other.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Driver().PutContent(ctx, u.statePath(int64(len(content))), state); err != nil {
			t.Fatal(err)
		}
		u2, err := r.ResumeUpload(ctx, u.ID())
		if err != nil {
			t.Fatal(err)
		}
		if u2.h == nil {
			t.Fatal("the replaced state did not load; the test needs it to")
		}
		dg := digest.FromBytes(content)
		if _, err := u2.Commit(ctx, dg, int64(len(content))); err != nil {
			t.Fatalf("Commit with a wrong saved state: %v", err)
		}
	})
}

// Digest is the running sha256 of what Append wrote, across appends, and
// says it does not know once an Append failed.
func TestUploadDigest(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "app")
		content := randomBytes(t, 2<<20+5)
		u, err := r.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := u.Digest(); !ok || d != digest.FromBytes(nil) {
			t.Errorf("empty upload: Digest = %s, %v", d, ok)
		}
		for _, part := range [][]byte{content[:1<<20], content[1<<20:]} {
			if _, err := u.Append(ctx, bytes.NewReader(part)); err != nil {
				t.Fatal(err)
			}
		}
		if d, ok := u.Digest(); !ok || d != digest.FromBytes(content) {
			t.Errorf("after two appends: Digest = %s, %v; want %s", d, ok, digest.FromBytes(content))
		}
		if _, err := u.Append(ctx, io.MultiReader(bytes.NewReader(content[:10]), iotest.ErrReader(errors.New("body broke")))); err == nil {
			t.Fatal("an append whose reader failed succeeded")
		}
		if d, ok := u.Digest(); ok {
			t.Errorf("after a failed append: Digest = %s, true; want unknown", d)
		}
		// Commit still finds out from the data.
		size := u.Size()
		data, err := reg.Driver().GetContent(ctx, uploadDir("app", u.ID())+"/data")
		if err != nil || int64(len(data)) != size {
			t.Fatalf("upload data: %d bytes, %v; size %d", len(data), err, size)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(data), size); err != nil {
			t.Errorf("Commit after a failed append: %v", err)
		}
	})
}

// fedReader hands out src in pieces and, before each read, checks that
// the data file OpenData opened holds what it handed out so far.
type fedReader struct {
	t    *testing.T
	src  []byte
	off  int
	data *os.File
}

func (r *fedReader) Read(p []byte) (int, error) {
	if fi, err := r.data.Stat(); err != nil || fi.Size() != int64(r.off) {
		r.t.Errorf("data file before read at %d: %v, %v", r.off, fi.Size(), err)
	}
	if r.off == len(r.src) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 100_000)], r.src[r.off:])
	r.off += n
	return n, nil
}

// OpenData's file holds what Append was fed by the time Append reads
// again (what the pull-through cache's readers rely on), and stays
// readable after the upload is committed; a driver without local files
// gives none.
func TestUploadOpenData(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		u, err := mustRepo(t, reg, "app").NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f, err := u.OpenData()
		if err != nil {
			t.Fatal(err)
		}
		if _, local := reg.Driver().(driver.LocalFiler); !local {
			if f != nil {
				t.Fatal("OpenData opened a file on a driver without local files")
			}
			return
		}
		if f == nil {
			t.Fatal("OpenData: no file on a driver with local files")
		}
		defer func() { _ = f.Close() }()
		content := randomBytes(t, 1<<20+3)
		if _, err := u.Append(ctx, &fedReader{t: t, src: content, data: f}); err != nil {
			t.Fatal(err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("data read after the commit: %d bytes, %v", len(got), err)
		}
	})
}
