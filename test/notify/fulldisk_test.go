//go:build integration

package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// TestQueueDiskFull puts the notification queue on a small tmpfs and fills
// it: pushes still succeed, their events are logged and counted as lost
// (reason "error"), no half-written event file stays in the queue, and
// once there is room again new events are queued and delivered, without
// a restart. It needs root (mount), as the integration environment gives.
func TestQueueDiskFull(t *testing.T) {
	dir := t.TempDir()
	queueDir := t.TempDir()
	testenv.MustRun(t, nil, "mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", queueDir)
	t.Cleanup(func() {
		if out, err := testenv.Run(context.Background(), nil, "umount", queueDir); err != nil {
			t.Errorf("umount %s: %v\n%s", queueDir, err, out)
		}
	})
	rc := &receiver{addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), byID: map[string]int{}}
	reg := &registry{
		addr:   fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		debug:  fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		config: filepath.Join(dir, "config.yml"),
	}
	cfg := fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  debug:
    addr: %s
    prometheus:
      enabled: true
notifications:
  queuedir: %s
  endpoints:
    - name: hook
      url: http://%s/events
      timeout: 2s
      threshold: 2
      backoff: 100ms
`, filepath.Join(dir, "data"), reg.addr, reg.debug, queueDir, rc.addr)
	if err := os.WriteFile(reg.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startRegistry(t, reg)

	// Fill the queue's file system to the last byte.
	ballast := filepath.Join(queueDir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the queue's file system: %v", err)
			}
			break
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}

	crane := testenv.Tool(t, "crane")
	home := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + home, "HOME=" + home}
	push := func(name, tag string) *testenv.Image {
		im := testenv.NewImage(t, map[string]string{"notify/" + name + ".txt": name + "\n"})
		layout := filepath.Join(home, name)
		im.WriteOCILayout(t, layout, tag)
		testenv.MustRun(t, env, crane, "push", "--insecure", layout, reg.addr+"/team/app:"+tag)
		return im
	}
	push("lost", "full") // must succeed: a lost event never fails a request

	lost := `gatehouse_registry_notifications_dropped_total{endpoint="hook",reason="error"}`
	testenv.Eventually(t, 10*time.Second, "three lost push events counted", func() bool { return reg.metric(t, lost) == 3 })
	if !strings.Contains(reg.Log(), "could not be queued and is lost") || !strings.Contains(reg.Log(), "no space left on device") {
		t.Errorf("the registry's log does not say events were lost for lack of space:\n%s", reg.Log())
	}
	queueFiles := func() []string {
		var out []string
		err := filepath.WalkDir(queueDir, func(p string, e os.DirEntry, err error) error {
			// .lock keeps a second process off the queue: not an event.
			if err == nil && !e.IsDir() && p != ballast && e.Name() != ".lock" {
				out = append(out, strings.TrimPrefix(p, queueDir))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if left := queueFiles(); len(left) != 0 {
		t.Errorf("files left in the full queue: %q", left)
	}

	// Room again: the next push's events are queued and, with the
	// receiver up, delivered; the lost ones stay lost.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	im := push("kept", "room")
	rc.start(t)
	want := []string{"push team/app@" + im.ConfigDigest, "push team/app@" + im.LayerDigest, "push team/app:room@" + im.Digest}
	slices.Sort(want)
	testenv.Eventually(t, 30*time.Second, "the events pushed after the disk had room delivered", func() bool {
		got, _ := rc.snapshot()
		return len(got) >= len(want)
	})
	got, dups := rc.snapshot()
	if diff := cmp.Diff(want, keys(got)); diff != "" || dups != 0 {
		t.Errorf("events (-want +got):\n%s\n%d duplicates", diff, dups)
	}
	testenv.Eventually(t, 10*time.Second, "the queue emptied", func() bool { return len(queueFiles()) == 0 })
	if reg.Exited() {
		t.Fatal("the registry exited")
	}
}
