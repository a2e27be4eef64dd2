//go:build integration

package ha

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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
// concurrently through the load balancer, a replica killed with SIGKILL
// while it serves a push request (the test proves it was) costs the client
// a retry through the load balancer, and a replica restarted while the
// others serve rejoins.
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
		tok := c.token("repository:ha/big:pull,push")
		layer, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(layers[0], "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		first := layer[:1<<20]

		// A chunked PATCH through HAProxy whose body the test feeds: after
		// the first MiB it holds the rest back, so the replica HAProxy
		// chose is serving the request (reading its body) until the test
		// lets go. Round robin reaches r2 within a few tries; a PATCH that
		// landed elsewhere is abandoned.
		var held *heldPatch
		for try := 0; try < 6 && held == nil; try++ {
			p := c.startHeldPatch(t, lb, tok, "ha/big", first)
			var on *replica
			testenv.Eventually(t, 20*time.Second, "a replica to be serving the held PATCH", func() bool {
				on = nil
				for _, r := range c.replicas {
					if servingPatch(t, r) {
						on = r
					}
				}
				return on != nil
			})
			if on == r2 {
				held = p
				break
			}
			t.Logf("try %d: the PATCH went to %s; abandoning it", try+1, on.name)
			p.abort()
			testenv.Eventually(t, 20*time.Second, on.name+" to drop the abandoned PATCH", func() bool { return !servingPatch(t, on) })
		}
		if held == nil {
			t.Fatal("HAProxy never sent the PATCH to r2 in 6 tries")
		}
		// The precondition of this test, checked right before the kill:
		// r2 is serving a push request (blocked reading its body, which
		// the test holds back, so it cannot finish meanwhile).
		if !servingPatch(t, r2) {
			t.Fatal("r2 is not serving the PATCH right before the kill: the kill would miss")
		}
		kill(t, r2)
		if res := held.finish(layer[len(first):]); res.err == nil && res.status == http.StatusAccepted {
			t.Fatal("the PATCH succeeded although the replica serving it was killed")
		} else {
			t.Logf("the PATCH failed with its replica, as a client sees it: status %d, %v", res.status, res.err)
		}

		// The client retries through HAProxy (another replica): it asks
		// where the upload stands, sends the rest and commits.
		st := c.mustDo(http.MethodGet, lb, held.path, tok, nil, nil, http.StatusNoContent)
		var end int
		if _, err := fmt.Sscanf(st.header.Get("Range"), "0-%d", &end); err != nil {
			t.Fatalf("upload status Range %q: %v", st.header.Get("Range"), err)
		}
		stored := end + 1
		if end == 0 {
			stored = 0 // "0-0": nothing stored (one byte can't be, parts are 5 MiB)
		}
		t.Logf("after the kill the upload holds %d of %d bytes; resuming from there", stored, len(layer))
		path := strings.TrimPrefix(st.header.Get("Location"), lb)
		c.mustDo(http.MethodPatch, lb, path, tok, layer[stored:], map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", stored, len(layer)-1)}, http.StatusAccepted)
		c.mustDo(http.MethodPut, lb, path+sep(path)+"digest="+layers[0], tok, nil, nil, http.StatusCreated)

		// The rest of the image with crane, through HAProxy (the layer
		// above is found and not sent again).
		testenv.MustRun(t, c.env, crane, "push", dir, ref)
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

// heldPatch is a chunked PATCH whose body the test feeds through a pipe.
type heldPatch struct {
	path string
	body *io.PipeWriter
	done chan patchResult
}

type patchResult struct {
	status int
	err    error
}

// startHeldPatch starts an upload of repo at base and a PATCH of it whose
// body is first and then whatever finish sends (no Content-Length: the
// body is chunked). It returns once first has been taken by the client.
func (c *cluster) startHeldPatch(t *testing.T, base, tok, repo string, first []byte) *heldPatch {
	t.Helper()
	loc := c.mustDo(http.MethodPost, base, "/v2/"+repo+"/blobs/uploads/", tok, nil, nil, http.StatusAccepted).header.Get("Location")
	pr, pw := io.Pipe()
	p := &heldPatch{path: strings.TrimPrefix(loc, base), body: pw, done: make(chan patchResult, 1)}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, base+p.path, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	go func() {
		resp, err := c.http.Do(req)
		if err != nil {
			_ = pr.CloseWithError(err)
			p.done <- patchResult{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		p.done <- patchResult{status: resp.StatusCode}
	}()
	if _, err := pw.Write(first); err != nil {
		t.Fatalf("PATCH body: %v", err)
	}
	return p
}

// finish sends rest, ends the body and returns how the PATCH ended.
func (p *heldPatch) finish(rest []byte) patchResult {
	_, _ = p.body.Write(rest) // fails when the request already has
	_ = p.body.Close()
	return <-p.done
}

// abort breaks the body off, as a client that gives up.
func (p *heldPatch) abort() {
	_ = p.body.CloseWithError(errors.New("abandoned by the test"))
	<-p.done
}

// servingPatch reports whether r has a goroutine in the upload PATCH
// handler (from its pprof goroutine profile).
func servingPatch(t *testing.T, r *replica) bool {
	t.Helper()
	resp, err := http.Get(r.debugURL() + "/debug/pprof/goroutine?debug=1") //nolint:noctx // a test probe
	if err != nil {
		return false // a replica that is down serves nothing
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), "(*Handler).patchUpload")
}

// sep is the separator to add a query parameter to path.
func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}
