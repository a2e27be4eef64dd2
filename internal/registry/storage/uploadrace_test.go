package storage

import (
	"bytes"
	"context"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// moveHookDriver runs hook once, just before the first move of a
// committed upload: what another replica, sharing the storage but not the
// process's upload lock, might do at that moment.
type moveHookDriver struct {
	driver.Driver
	hook func()
}

func (m *moveHookDriver) MoveExact(ctx context.Context, src, dst string, size int64) error {
	if m.hook != nil {
		h := m.hook
		m.hook = nil
		h()
	}
	return m.Driver.(driver.ExactMover).MoveExact(ctx, src, dst, size)
}

// TestCommitRacingAnotherReplica commits an upload while a second
// registry on the same storage (another replica: no shared lock) appends
// to it or commits it at the worst moment: after the digest was verified,
// before the data is moved into place.
func TestCommitRacingAnotherReplica(t *testing.T) {
	content := []byte("the bytes the client hashed")
	dgst := digest.FromBytes(content)
	for name, nd := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			shared := driver.Checked(nd(t))
			hooked := &moveHookDriver{Driver: shared}
			replicaA := New(hooked, Options{})
			replicaB := New(shared, Options{})

			start := func(t *testing.T) (*Upload, *Upload) {
				t.Helper()
				up, err := mustRepo(t, replicaA, "race/repo").NewUpload(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := up.Append(ctx, bytes.NewReader(content)); err != nil {
					t.Fatal(err)
				}
				other, err := mustRepo(t, replicaB, "race/repo").ResumeUpload(ctx, up.ID())
				if err != nil {
					t.Fatal(err)
				}
				return up, other
			}

			t.Run("append", func(t *testing.T) {
				up, other := start(t)
				hooked.hook = func() {
					if _, err := other.Append(ctx, bytes.NewReader([]byte(" and more"))); err != nil {
						t.Errorf("append from the other replica: %v", err)
					}
				}
				_, err := up.Commit(ctx, dgst, -1)
				wantErr(t, "commit racing an append", err, ErrBlobUploadInvalid)
				if _, err := shared.Stat(ctx, blobDataPath(dgst)); !driver.IsNotFound(err) {
					t.Errorf("blob %s stored although the data moved was not the data hashed (stat: %v)", dgst, err)
				}
			})

			t.Run("commit", func(t *testing.T) {
				up, other := start(t)
				hooked.hook = func() {
					if _, err := other.Commit(ctx, dgst, -1); err != nil {
						t.Errorf("commit from the other replica: %v", err)
					}
				}
				desc, err := up.Commit(ctx, dgst, -1)
				if err != nil {
					t.Fatalf("second commit of the same upload: %v, want success (the blob is in place)", err)
				}
				if desc.Digest != dgst || desc.Size != int64(len(content)) {
					t.Errorf("descriptor %+v", desc)
				}
				got, err := shared.GetContent(ctx, blobDataPath(dgst))
				if err != nil || !bytes.Equal(got, content) {
					t.Errorf("blob content %q, %v; want %q", got, err, content)
				}
				if _, err := shared.Stat(ctx, up.dir()); !driver.IsNotFound(err) {
					t.Errorf("upload directory left behind (stat: %v)", err)
				}
				if _, err := mustRepo(t, replicaA, "race/repo").StatBlob(ctx, dgst); err != nil {
					t.Errorf("blob not linked into the repository: %v", err)
				}
			})
		})
	}
}
