//go:build integration

package crash

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// crashSeed is GATEHOUSE_CRASH_SEED when set (to replay a failure), else
// the clock.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GATEHOUSE_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GATEHOUSE_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with GATEHOUSE_CRASH_SEED=%d)", seed, seed)
	return seed
}

var (
	crashRepos = []string{"crash/a", "crash/b", "crash/c"}
	crashTags  = []string{"t0", "t1", "t2", "t3", "t4", "t5"}
)

// workload pushes images, moves tags and deletes tags and manifests from
// several goroutines until ctx ends. Each pushed image is unique, and a
// manifest is deleted by digest only by the goroutine that pushed it, so
// the only way to a dangling tag is a crash.
func workload(ctx context.Context, c *client, seed uint64, iter int) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(iter*16+w)))
			var mine []string // repo + " " + digest
			for n := 0; ctx.Err() == nil; n++ {
				repo := crashRepos[rng.IntN(len(crashRepos))]
				tag := crashTags[rng.IntN(len(crashTags))]
				unique := fmt.Sprintf("%d-%d-%d-%d", seed, iter, w, n)
				switch op := rng.IntN(10); {
				case op < 6: // push or move a tag
					md, err := c.pushImage(ctx, repo, tag, unique, 1024+rng.IntN(64<<10), rng.IntN(2) == 0)
					if err == nil {
						mine = append(mine, repo+" "+md)
					}
				case op < 8: // delete a tag
					_, _, _ = c.do(ctx, "DELETE", "/v2/"+repo+"/manifests/"+tag, nil, nil, 202, 404)
				default: // delete one of our manifests by digest
					if len(mine) == 0 {
						continue
					}
					i := rng.IntN(len(mine))
					var r, d string
					_, _ = fmt.Sscan(mine[i], &r, &d)
					mine = append(mine[:i], mine[i+1:]...)
					_, _, _ = c.do(ctx, "DELETE", "/v2/"+r+"/manifests/"+d, nil, nil, 202, 404)
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashConsistency SIGKILLs the registry at a random moment of a
// concurrent push/move/delete workload, again and again on the same
// storage, and after every kill checks that storage check finds nothing,
// that every listed tag pulls after a restart, and that tags can be
// deleted. Then it kills gc the same way.
func TestCrashConsistency(t *testing.T) {
	start := time.Now()
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	root := filepath.Join(t.TempDir(), "data")
	reg := newRegistry(t, root, false)
	c := newClient(reg.url())
	const iterations = 15
	pulled := 0
	for iter := range iterations {
		reg.start()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			workload(ctx, c, seed, iter)
			close(done)
		}()
		delay := time.Duration(100+rng.IntN(600)) * time.Millisecond
		time.Sleep(delay) // the random moment of the kill, not a wait for a condition
		reg.kill()
		cancel()
		<-done

		if code, out := storageCheck(t, reg.bin, reg.config); code != 0 {
			t.Fatalf("iteration %d (killed after %v): storage check exit %d:\n%s", iter, delay, code, out)
		}
		reg.start()
		vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
		pulled += verifyAll(t, vctx, c)
		// Delete a third of the tags (all of them the last time round):
		// DELETE of every listed tag must work.
		for _, repo := range crashRepos {
			tags, err := c.tags(vctx, repo)
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range tags {
				if iter == iterations-1 || rng.IntN(3) == 0 {
					if _, _, err := c.do(vctx, "DELETE", "/v2/"+repo+"/manifests/"+tag, nil, nil, 202); err != nil {
						t.Errorf("iteration %d: %v", iter, err)
					}
				}
			}
		}
		vcancel()
		if t.Failed() {
			t.Fatalf("iteration %d (killed after %v) failed", iter, delay)
		}
		reg.proc.Stop()
	}
	t.Logf("%d iterations, %d tag pulls verified, %v", iterations, pulled, time.Since(start).Round(time.Millisecond))

	// gc killed midway, on a read-only config; then a full run.
	reg.start()
	for i := range 8 {
		if _, err := c.pushImage(context.Background(), crashRepos[i%len(crashRepos)], fmt.Sprintf("keep%d", i), fmt.Sprintf("gc-%d-%d", seed, i), 4096, false); err != nil {
			t.Fatal(err)
		}
	}
	reg.proc.Stop()
	ro := newRegistry(t, root, true)
	for i := range 6 {
		// Kill at a random line of gc's progress: each line is printed as
		// the step it names happens, so every phase gets its turn.
		dry := testenv.MustRun(t, nil, reg.bin, "gc", "--dry-run", "--delete-untagged", ro.config)
		at := 1 + rng.IntN(strings.Count(dry, "\n"))
		line := killGCAtLine(t, reg.bin, ro.config, at)
		if code, out := storageCheck(t, reg.bin, ro.config); code != 0 {
			t.Fatalf("gc killed at progress line %d %q (round %d): storage check exit %d:\n%s", at, line, i, code, out)
		}
	}
	testenv.MustRun(t, nil, reg.bin, "gc", "--delete-untagged", ro.config)
	if code, out := storageCheck(t, reg.bin, ro.config, "--verify-digests"); code != 0 {
		t.Fatalf("after gc: storage check exit %d:\n%s", code, out)
	}
	reg.start()
	if n := verifyAll(t, context.Background(), c); n != 8 {
		t.Errorf("after gc: %d tags pulled, want the 8 kept", n)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// killGCAtLine runs gc --delete-untagged and SIGKILLs it when it prints its
// at-th progress line, which it returns.
func killGCAtLine(t *testing.T, bin, config string, at int) string {
	t.Helper()
	cmd := exec.Command(bin, "gc", "--delete-untagged", config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	line := ""
	for n := 1; sc.Scan(); n++ {
		if n == at {
			line = sc.Text()
			_ = cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	_, _ = io.Copy(io.Discard, out)
	_ = cmd.Wait()
	return line
}
