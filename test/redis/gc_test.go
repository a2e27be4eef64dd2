//go:build integration

package redis

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// TestGCClearsRedis: `gatehouse gc` runs in its own process, yet a running
// registry whose cache is on Redis must not keep answering HEAD 200 for a
// blob GC swept: gc clears the swept blobs' entries. With Redis
// unreachable, gc still succeeds and says what to flush.
func TestGCClearsRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	reg := startRegistry(t, fmt.Sprintf("  addr: %s\n", r.Addr))
	reg.waitRedis(t, true)
	p := newPusher(t)
	bin := testenv.Gatehouse(t)

	im := p.push(t, reg.Addr+"/gc/drop:v1", "swept")
	if code := reg.blobStatus(t, http.MethodHead, "gc/drop", im.LayerDigest); code != http.StatusOK {
		t.Fatalf("HEAD of the pushed layer: %d", code)
	}
	if !hasKey(r, globalKey(im.LayerDigest)) || !hasKey(r, repoKey("gc/drop", im.LayerDigest)) {
		t.Fatalf("no cache entries for the layer; keys: %q", r.Keys("gatehouse::*"))
	}
	testenv.MustRun(t, p.env, p.crane, "delete", "--insecure", reg.Addr+"/gc/drop@"+im.Digest)
	out := testenv.MustRun(t, nil, bin, "gc", "--i-know-registry-is-read-only", reg.Config)
	if !strings.Contains(out, "entries of 3 swept blobs and 0 deleted manifests cleared") {
		t.Errorf("gc output does not report the cleared cache entries:\n%s", out)
	}
	for _, dg := range []string{im.LayerDigest, im.ConfigDigest, im.Digest} {
		if code := reg.blobStatus(t, http.MethodHead, "gc/drop", dg); code != http.StatusNotFound {
			t.Errorf("HEAD of swept blob %s on the running registry: %d, want 404", dg, code)
		}
		if hasKey(r, globalKey(dg)) || hasKey(r, repoKey("gc/drop", dg)) {
			t.Errorf("cache entries of swept blob %s left in Redis", dg)
		}
	}

	// Redis unreachable from gc: a warning naming what to flush, exit 0.
	im2 := p.push(t, reg.Addr+"/gc/drop2:v1", "swept-while-redis-unreachable")
	testenv.MustRun(t, p.env, p.crane, "delete", "--insecure", reg.Addr+"/gc/drop2@"+im2.Digest)
	cfg, err := os.ReadFile(reg.Config)
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	deadCfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(deadCfg, []byte(strings.ReplaceAll(string(cfg), r.Addr, dead)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = testenv.Run(context.Background(), nil, bin, "gc", "--i-know-registry-is-read-only", deadCfg)
	if err != nil {
		t.Fatalf("gc with Redis unreachable failed: %v\n%s", err, out)
	}
	for _, want := range []string{"redis at " + dead + " is unreachable", "3 swept blobs and 0 deleted manifests were not cleared", "redis-cli --scan --pattern 'gatehouse::v1::*'", "deleted: 3 blobs"} {
		if !strings.Contains(out, want) {
			t.Errorf("gc output lacks %q:\n%s", want, out)
		}
	}
}

// TestGCClearsDeletedManifests: `gatehouse gc --delete-untagged` removes
// the revision link of a manifest no tag reaches; a running registry that
// has that link cached in Redis (and the payload in memory) must stop
// serving it: gc clears the revision entries of the manifests it deleted.
func TestGCClearsDeletedManifests(t *testing.T) {
	r := testenv.StartRedis(t)
	reg := startRegistry(t, fmt.Sprintf("  addr: %s\n", r.Addr))
	reg.waitRedis(t, true)
	p := newPusher(t)
	bin := testenv.Gatehouse(t)

	old := p.push(t, reg.Addr+"/gc/untag:v1", "untagged-by-gc")
	p.push(t, reg.Addr+"/gc/untag:v1", "tagged") // v1 moves: old is untagged
	manifest := "/v2/gc/untag/manifests/" + old.Digest
	if code, _ := reg.do(t, http.MethodGet, manifest); code != http.StatusOK {
		t.Fatalf("GET of the untagged manifest before gc: %d", code)
	}
	key := "gatehouse::v1::repository::gc/untag::revisions::" + old.Digest
	if v := r.Client().HGet(context.Background(), key, "target").Val(); v != old.Digest {
		t.Fatalf("revision entry not cached before gc: %q; keys %q", v, r.Keys("gatehouse::*"))
	}
	out := testenv.MustRun(t, nil, bin, "gc", "--delete-untagged", "--i-know-registry-is-read-only", reg.Config)
	if !strings.Contains(out, "and 1 deleted manifests cleared") {
		t.Errorf("gc output does not report the cleared manifest entry:\n%s", out)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		if code, _ := reg.do(t, m, manifest); code != http.StatusNotFound {
			t.Errorf("%s of the manifest gc deleted, on the running registry: %d, want 404", m, code)
		}
	}
}
