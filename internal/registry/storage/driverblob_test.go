package storage

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

// countingDriver counts Reader calls and fails them while down is set.
type countingDriver struct {
	driver.Driver
	readers int
	down    bool
}

var errDown = errors.New("storage down")

func (d *countingDriver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if d.down {
		return nil, errDown
	}
	d.readers++
	return d.Driver.Reader(ctx, path, offset)
}

// TestDriverBlobOpen: Open fails at once when storage is down (before a
// response could start), and the stream it opens survives the seeks
// net/http's ServeContent makes to learn the size; a Read at another
// offset reopens there.
func TestDriverBlobOpen(t *testing.T) {
	d := &countingDriver{Driver: inmemory.New()}
	reg := New(d, Options{})
	repo := mustRepo(t, reg, "team/app")
	content := []byte("0123456789")
	desc := pushBlob(t, repo, content)
	ctx := context.Background()

	d.down = true
	br, err := repo.OpenBlob(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := br.(interface{ Open() error })
	if !ok {
		t.Fatalf("%T has no Open", br)
	}
	if err := o.Open(); !errors.Is(err, errDown) {
		t.Fatalf("Open with storage down = %v, want %v", err, errDown)
	}
	d.down = false
	d.readers = 0
	if err := o.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := br.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if _, err := br.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(br)
	if err != nil || string(got) != string(content) {
		t.Fatalf("read %q, %v; want %q", got, err, content)
	}
	if d.readers != 1 {
		t.Errorf("%d streams opened for one read after Open and two seeks, want 1", d.readers)
	}
	if _, err := br.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(br)
	if err != nil || string(got) != "456789" {
		t.Fatalf("read after seek %q, %v; want %q", got, err, "456789")
	}
	if d.readers != 2 {
		t.Errorf("%d streams opened after a seek to another offset, want 2", d.readers)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
}
