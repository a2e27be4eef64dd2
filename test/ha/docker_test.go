//go:build integration

package ha

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// TestDockerEngineThroughLoadBalancer: the Docker engine logs in through
// HAProxy (the token comes from the auth server every replica trusts),
// pushes three images at once and pulls them back at once; requests of
// the engine reach every replica, and storage is consistent afterwards.
func TestDockerEngineThroughLoadBalancer(t *testing.T) {
	c := startCluster(t, 2)
	caPEM, err := os.ReadFile(filepath.Join(c.certDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.TrustRegistryCA(t, c.host(), caPEM)
	d := testenv.StartDockerd(t)
	if out := d.Docker(t, password+"\n", "login", "-u", user, "--password-stdin", c.host()); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login through the load balancer: %s", out)
	}

	const n = 3
	refs := make([]string, n)
	for i := range n {
		refs[i] = fmt.Sprintf("%s/ha/docker-%d:v1", c.host(), i)
		im := testenv.NewImage(t, map[string]string{fmt.Sprintf("ha/docker-%d.txt", i): string(randomBytes(t, 2<<20))})
		archive := filepath.Join(t.TempDir(), "image.tar")
		im.WriteDockerArchive(t, archive, refs[i])
		d.Docker(t, "", "load", "-i", archive)
	}
	// each runs `docker ARGS ref` for every ref at once and returns the
	// outputs.
	each := func(args ...string) []string {
		outs := make([]string, n)
		var wg sync.WaitGroup
		for i, ref := range refs {
			wg.Go(func() {
				out, err := d.Run(context.Background(), "", append(args, ref)...)
				if err != nil {
					t.Errorf("docker %s %s: %v\n%s", strings.Join(args, " "), ref, err, out)
				}
				outs[i] = out
			})
		}
		wg.Wait()
		return outs
	}
	pushed := make([]string, n)
	for i, out := range each("push") {
		j := strings.Index(out, "digest: ")
		if j < 0 {
			t.Fatalf("docker push %s printed no digest:\n%s", refs[i], out)
		}
		pushed[i] = strings.Fields(out[j+len("digest: "):])[0]
	}
	if t.Failed() {
		t.FailNow()
	}
	each("rmi")
	for i, out := range each("pull") {
		if !strings.Contains(out, "Digest: "+pushed[i]) {
			t.Errorf("docker pull %s did not get the pushed digest %s:\n%s", refs[i], pushed[i], out)
		}
	}
	for _, r := range c.replicas {
		if !strings.Contains(r.Log(), `user_agent="docker/`) {
			t.Errorf("replica %s served no request of the Docker engine: the load balancer did not spread them", r.name)
		}
	}
	c.storageCheck()
}
