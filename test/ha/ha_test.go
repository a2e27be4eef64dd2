//go:build integration

package ha

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// TestReplicas runs three replicas behind HAProxy and checks that they
// share everything: an upload started on one finishes on another, a token
// is accepted by all, concurrent commits of one upload and concurrent tag
// puts leave storage consistent, crane and skopeo push and pull
// concurrently through the load balancer, a replica killed with SIGKILL in
// the middle of a push costs the client a retry at most, and a replica
// restarted while the others serve rejoins.
func TestReplicas(t *testing.T) {
	c := startCluster(t, 3)
	crane := testenv.Tool(t, "crane")
	skopeo := testenv.Tool(t, "skopeo")
	r1, r2, r3 := c.replicas[0], c.replicas[1], c.replicas[2]
	lb := "https://" + c.host()

	t.Run("upload across replicas", func(t *testing.T) {
		tok := c.token("repository:ha/raw:pull,push")
		// One token, every replica: /v2/ answers 200 on each.
		for _, r := range c.replicas {
			c.mustDo(http.MethodGet, "http://"+r.addr, "/v2/", tok, nil, nil, http.StatusOK)
		}
		// Chunks of 6 MiB: the first is stored as segments by r1, the
		// second appended by r2 and the upload committed by r3.
		data := randomBytes(t, 12<<20)
		dgst := testenv.Digest(data)
		loc := c.mustDo(http.MethodPost, "http://"+r1.addr, "/v2/ha/raw/blobs/uploads/", tok, nil, nil, http.StatusAccepted).header.Get("Location")
		path := strings.TrimPrefix(loc, "http://"+r1.addr)
		half := len(data) / 2
		c.mustDo(http.MethodPatch, "http://"+r1.addr, path, tok, data[:half], map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", half-1)}, http.StatusAccepted)
		c.mustDo(http.MethodPatch, "http://"+r2.addr, path, tok, data[half:], map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", half, len(data)-1)}, http.StatusAccepted)
		c.mustDo(http.MethodPut, "http://"+r3.addr, path+sep(path)+"digest="+dgst, tok, nil, nil, http.StatusCreated)
		got := c.mustDo(http.MethodGet, lb, "/v2/ha/raw/blobs/"+dgst, tok, nil, nil, http.StatusOK)
		if testenv.Digest(got.body) != dgst {
			t.Fatalf("blob served through the load balancer does not match its digest")
		}
	})

	t.Run("concurrent commits of one upload", func(t *testing.T) {
		tok := c.token("repository:ha/race:pull,push")
		for round := range 6 {
			data := randomBytes(t, 6<<20+round)
			dgst := testenv.Digest(data)
			loc := c.mustDo(http.MethodPost, "http://"+r1.addr, "/v2/ha/race/blobs/uploads/", tok, nil, nil, http.StatusAccepted).header.Get("Location")
			path := strings.TrimPrefix(loc, "http://"+r1.addr)
			c.mustDo(http.MethodPatch, "http://"+r1.addr, path, tok, data, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusAccepted)
			var wg sync.WaitGroup
			codes := make([]int, 2)
			for i, r := range []*replica{r1, r2} {
				wg.Go(func() {
					resp, err := c.do(http.MethodPut, "http://"+r.addr, path+sep(path)+"digest="+dgst, tok, nil, nil)
					if err != nil {
						t.Errorf("commit on %s: %v", r.name, err)
						return
					}
					codes[i] = resp.status
					if resp.status != http.StatusCreated {
						t.Logf("round %d: commit on %s: %d %s", round, r.name, resp.status, resp.body)
					}
				})
			}
			wg.Wait()
			created := 0
			for _, code := range codes {
				switch {
				case code == http.StatusCreated:
					created++
				case code >= 500:
					t.Errorf("round %d: a commit racing another answered %d; want 201, or 4xx for the loser", round, code)
				}
			}
			if created == 0 {
				t.Errorf("round %d: neither of two concurrent commits succeeded (%v)", round, codes)
			}
			got := c.mustDo(http.MethodGet, lb, "/v2/ha/race/blobs/"+dgst, tok, nil, nil, http.StatusOK)
			if testenv.Digest(got.body) != dgst || len(got.body) != len(data) {
				t.Fatalf("round %d: blob content does not match its digest (%d bytes)", round, len(got.body))
			}
		}
	})

	t.Run("concurrent tag puts", func(t *testing.T) {
		tok := c.token("repository:ha/tags:pull,push")
		home := t.TempDir()
		var digests []string
		for i := range 4 {
			im := testenv.NewImage(t, map[string]string{"ha/tag.txt": "image " + strconv.Itoa(i) + "\n"})
			layout := filepath.Join(home, strconv.Itoa(i))
			im.WriteOCILayout(t, layout, "v1")
			testenv.MustRun(t, c.env, crane, "push", layout, c.host()+"/ha/tags:img"+strconv.Itoa(i))
			digests = append(digests, im.Digest)
		}
		manifests := make([][]byte, len(digests))
		for i, d := range digests {
			manifests[i] = c.mustDo(http.MethodGet, lb, "/v2/ha/tags/manifests/"+d, tok, nil,
				map[string]string{"Accept": testenv.MediaTypeOCIManifest}, http.StatusOK).body
		}
		for round := range 5 {
			var wg sync.WaitGroup
			for i, r := range c.replicas {
				m := manifests[(i+round)%len(manifests)]
				wg.Go(func() {
					resp, err := c.do(http.MethodPut, "http://"+r.addr, "/v2/ha/tags/manifests/moving", tok, m,
						map[string]string{"Content-Type": testenv.MediaTypeOCIManifest})
					if err != nil || resp.status != http.StatusCreated {
						t.Errorf("tag put on %s: %v %d %s", r.name, err, resp.status, resp.body)
					}
				})
			}
			wg.Wait()
			got := strings.TrimSpace(testenv.MustRun(t, c.env, crane, "digest", c.host()+"/ha/tags:moving"))
			found := false
			for _, d := range digests {
				found = found || got == d
			}
			if !found {
				t.Fatalf("round %d: tag resolves to %s, none of the manifests put", round, got)
			}
		}
		c.storageCheck()
	})

	t.Run("crane and skopeo concurrently", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 4 {
			im := testenv.NewImage(t, map[string]string{"ha/c.txt": fmt.Sprintf("concurrent %d %s\n", i, t.Name())})
			layout := filepath.Join(t.TempDir(), "layout")
			im.WriteOCILayout(t, layout, "v1")
			ref := fmt.Sprintf("%s/ha/conc%d:v1", c.host(), i)
			wg.Go(func() {
				if i%2 == 0 {
					testenv.MustRun(t, c.env, crane, "push", layout, ref)
				} else {
					testenv.MustRun(t, c.env, skopeo, "copy", "--dest-creds", user+":"+password, "oci:"+layout+":v1", "docker://"+ref)
				}
				if got := strings.TrimSpace(testenv.MustRun(t, c.env, crane, "digest", ref)); got != im.Digest {
					t.Errorf("%s: digest %s, want %s", ref, got, im.Digest)
				}
				dir := t.TempDir()
				testenv.MustRun(t, c.env, skopeo, "copy", "--src-creds", user+":"+password, "docker://"+ref, "oci:"+dir+":v1")
				if got := testenv.MustRun(t, c.env, crane, "blob", ref[:strings.LastIndex(ref, ":")]+"@"+im.LayerDigest); got != string(im.Layer) {
					t.Errorf("%s: layer pulled differs", ref)
				}
			})
		}
		wg.Wait()
	})

	t.Run("replica killed mid-push", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "big")
		manifest, layers := multiLayerImage(t, dir, "v1", 10, 3<<20)
		ref := c.host() + "/ha/big:v1"
		pushed := make(chan error, 1)
		go func() {
			out, err := testenv.Run(t.Context(), c.env, crane, "push", dir, ref)
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, out)
			}
			pushed <- err
		}()
		// Kill r2 once the push is under way: the first layer is linked.
		mc := c.minio.Client(t)
		testenv.Eventually(t, 30*time.Second, "a layer of the push to be stored", func() bool {
			n := 0
			for range mc.ListObjects(t.Context(), c.minio.Bucket, minioList("ha/docker/registry/v2/repositories/ha/big/_layers/")) {
				n++
			}
			return n > 0
		})
		kill(t, r2)
		if err := <-pushed; err != nil {
			// A client whose request died with the replica retries the
			// push; what was stored is reused.
			t.Logf("push failed once, as a client would see it; retrying: %v", err)
			testenv.MustRun(t, c.env, crane, "push", dir, ref)
		}
		if got := strings.TrimSpace(testenv.MustRun(t, c.env, crane, "digest", ref)); got != manifest {
			t.Fatalf("digest %s, want %s", got, manifest)
		}
		for _, l := range layers {
			blob := testenv.MustRun(t, c.env, crane, "blob", c.host()+"/ha/big@"+l)
			if testenv.Digest([]byte(blob)) != l {
				t.Errorf("layer %s does not match its digest after the kill", l)
			}
		}
		c.storageCheck()
	})

	t.Run("replica restarted while the others serve", func(t *testing.T) {
		if !r2.Exited() {
			kill(t, r2)
		}
		// HAProxy takes the dead replica out: pulls keep working.
		for range 6 {
			testenv.MustRun(t, c.env, crane, "digest", c.host()+"/ha/big:v1")
		}
		c.start(r2)
		// Round robin reaches the restarted replica again: watch its
		// access log for a request that came through HAProxy.
		testenv.Eventually(t, 30*time.Second, "r2 to serve through the load balancer again", func() bool {
			testenv.MustRun(t, c.env, crane, "digest", c.host()+"/ha/big:v1")
			return strings.Contains(r2.Log(), "/v2/ha/big/manifests/v1")
		})
	})
}

// sep is the separator to add a query parameter to path.
func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}
