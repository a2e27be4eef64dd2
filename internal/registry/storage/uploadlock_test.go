package storage

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// TestUploadLocksDoNotLeak checks that no lock entry outlives the
// operations on an upload, whatever becomes of the upload: committed,
// cancelled, or abandoned and purged.
func TestUploadLocksDoNotLeak(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "locks/test")
		content := []byte("lock leak test")

		abandoned, err := r.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := abandoned.Append(ctx, bytes.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		cancelled, err := r.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cancelled.Append(ctx, bytes.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		if err := cancelled.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		pushBlob(t, r, content)
		if n := reg.uploadLocks.len(); n != 0 {
			t.Errorf("after append, cancel and commit: %d lock entries, want 0", n)
		}

		res, err := PurgeUploads(ctx, reg.Driver(), -time.Hour, false)
		if err != nil || res.Purged != 1 {
			t.Fatalf("PurgeUploads = %+v, %v; want 1 purged", res, err)
		}
		if _, err := r.ResumeUpload(ctx, abandoned.ID()); !isErr(err, ErrBlobUploadUnknown) {
			t.Errorf("resuming the purged upload: %v, want BLOB_UPLOAD_UNKNOWN", err)
		}
		if n := reg.uploadLocks.len(); n != 0 {
			t.Errorf("after purge: %d lock entries, want 0", n)
		}
	})
}

// TestUploadLocksSerialise checks that the self-cleaning lock map still
// gives one mutex per id while operations wait on it, and drops the
// entry when the last one is done.
func TestUploadLocksSerialise(t *testing.T) {
	var l uploadLocks
	const workers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		inside  int
		overlap bool
	)
	for i := range workers * 50 {
		id := []string{"a", "b"}[i%2]
		wg.Go(func() {
			unlock := l.lock(id)
			defer unlock()
			if id != "a" {
				return
			}
			mu.Lock()
			inside++
			if inside > 1 {
				overlap = true
			}
			mu.Unlock()
			// Hold the lock a moment so that a second holder, if the
			// lock let one in, would overlap: the sleep is the test.
			time.Sleep(10 * time.Microsecond)
			mu.Lock()
			inside--
			mu.Unlock()
		})
	}
	wg.Wait()
	if overlap {
		t.Error("two holders of the lock for one upload id at once")
	}
	if n := l.len(); n != 0 {
		t.Errorf("%d lock entries left, want 0", n)
	}
	unlockA := l.lock("a")
	unlockB := l.lock("b")
	if n := l.len(); n != 2 {
		t.Errorf("%d lock entries while two are held, want 2", n)
	}
	unlockA()
	unlockB()
	if n := l.len(); n != 0 {
		t.Errorf("%d lock entries after unlocking, want 0", n)
	}
}
