package filesystem

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteBehind checks that a durable writer hands every full
// writeBehind of new data to the kernel, starting at the size it was opened
// at, and that what it wrote reads back whole.
func TestWriteBehind(t *testing.T) {
	for _, tc := range []struct {
		name        string
		durable     bool
		existing    int
		writes      int // of 1 MiB
		wantStarted int64
	}{
		{"durable, new file", true, 0, 20, 2 * writeBehind},
		{"durable, appended", true, 3 << 20, 20, 3<<20 + 2*writeBehind},
		{"durable, short", true, 0, 3, 0},
		{"not durable", false, 0, 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			d, err := New(Options{RootDirectory: root, Durable: tc.durable})
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte{7}, tc.existing)
			if tc.existing > 0 {
				if err := d.PutContent(ctx, "/f", want); err != nil {
					t.Fatal(err)
				}
			}
			fw, err := d.Writer(ctx, "/f", true)
			if err != nil {
				t.Fatal(err)
			}
			chunk := bytes.Repeat([]byte{'x'}, 1<<20)
			for i := range tc.writes {
				chunk[0] = byte(i)
				if _, err := fw.Write(chunk); err != nil {
					t.Fatal(err)
				}
				want = append(want, chunk...)
			}
			w, ok := fw.(*fileWriter)
			if !ok {
				t.Fatalf("writer is a %T", fw)
			}
			if tc.wantStarted == 0 {
				tc.wantStarted = int64(tc.existing)
			}
			if w.started != tc.wantStarted {
				t.Errorf("write-out started up to %d, want %d", w.started, tc.wantStarted)
			}
			if err := fw.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(root, "f"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, want %d (or content differs)", len(got), len(want))
			}
		})
	}
}
