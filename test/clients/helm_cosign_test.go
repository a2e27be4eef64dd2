//go:build integration

package clients_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// Media types Helm gives a chart pushed as an OCI artifact.
const (
	helmConfigType = "application/vnd.cncf.helm.config.v1+json"
	helmChartType  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// manifest is the part of an image manifest the tests look at.
type manifest struct {
	Config struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
	} `json:"layers"`
}

// craneEnv is a crane (and cosign) environment logged in as user: the
// credentials in a docker config of its own, the CA from SSL_CERT_FILE.
func craneEnv(t *testing.T, e *env, dir, user, pass string) []string {
	t.Helper()
	d := filepath.Join(dir, "docker-"+user)
	env := []string{"DOCKER_CONFIG=" + d, "HOME=" + d, "SSL_CERT_FILE=" + e.caFile}
	run(t, env, testenv.Tool(t, "crane"), "auth", "login", e.hostPort, "-u", user, "-p", pass)
	return env
}

func readManifest(t *testing.T, env []string, ref string) manifest {
	t.Helper()
	var m manifest
	out := run(t, env, testenv.Tool(t, "crane"), "manifest", ref)
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("crane manifest %s: %v\n%s", ref, err, out)
	}
	return m
}

// TestHelm pushes a chart with Helm 3 as alice, pulls it back as bob
// (byte for byte the same file, stored with Helm's media types), and bob,
// who may only pull, is refused a push.
func TestHelm(t *testing.T) {
	e := setup(t)
	helm := testenv.Tool(t, "helm")
	dir := t.TempDir()
	helmEnv := func(user, pass string) []string {
		home := filepath.Join(dir, "helm-"+user)
		env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
			"XDG_CACHE_HOME=" + filepath.Join(home, "cache"), "XDG_DATA_HOME=" + filepath.Join(home, "data")}
		run(t, env, helm, "registry", "login", e.hostPort, "-u", user, "-p", pass, "--ca-file", e.caFile)
		return env
	}
	a, b := helmEnv(alice, alicePass), helmEnv(bob, bobPass)

	// A minimal chart: Chart.yaml and one template.
	src := filepath.Join(dir, "gatehouse-test")
	must(t, os.MkdirAll(filepath.Join(src, "templates"), 0o700))
	must(t, os.WriteFile(filepath.Join(src, "Chart.yaml"), []byte("apiVersion: v2\nname: gatehouse-test\nversion: 0.1.0\ndescription: pushed by the clients test\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(src, "templates", "configmap.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  hello: gatehouse\n"), 0o600))
	run(t, a, helm, "package", src, "-d", dir)
	chart := filepath.Join(dir, "gatehouse-test-0.1.0.tgz")
	pushed, err := os.ReadFile(chart)
	must(t, err)

	repo := "oci://" + e.hostPort + "/clients/charts"
	run(t, a, helm, "push", chart, repo, "--ca-file", e.caFile)
	pulledDir := filepath.Join(dir, "pulled")
	must(t, os.MkdirAll(pulledDir, 0o700))
	run(t, b, helm, "pull", repo+"/gatehouse-test", "--version", "0.1.0", "--ca-file", e.caFile, "-d", pulledDir)
	pulled, err := os.ReadFile(filepath.Join(pulledDir, "gatehouse-test-0.1.0.tgz"))
	must(t, err)
	if !bytes.Equal(pulled, pushed) {
		t.Errorf("the pulled chart (%d bytes) differs from the pushed one (%d bytes)", len(pulled), len(pushed))
	}
	if out := run(t, b, helm, "show", "chart", repo+"/gatehouse-test", "--version", "0.1.0", "--ca-file", e.caFile); !strings.Contains(out, "pushed by the clients test") {
		t.Errorf("helm show chart lacks the description:\n%s", out)
	}

	m := readManifest(t, craneEnv(t, e, dir, bob, bobPass), e.hostPort+"/clients/charts/gatehouse-test:0.1.0")
	if m.Config.MediaType != helmConfigType || len(m.Layers) != 1 || m.Layers[0].MediaType != helmChartType {
		t.Errorf("the chart is stored as config %q, layers %+v; want config %s and one layer %s", m.Config.MediaType, m.Layers, helmConfigType, helmChartType)
	}
	refused(t, b, helm, "push", chart, "oci://"+e.hostPort+"/clients/bob", "--ca-file", e.caFile)
}

// TestCosign signs an image with cosign as alice, without the transparency
// log, and verifies it as bob: the signature is the sha256-HEX.sig tag
// cosign writes, a key that did not sign is refused, and bob, who may only
// pull, cannot sign.
func TestCosign(t *testing.T) {
	e := setup(t)
	cosign := testenv.Tool(t, "cosign")
	crane := testenv.Tool(t, "crane")
	dir := t.TempDir()
	a, b := craneEnv(t, e, dir, alice, alicePass), craneEnv(t, e, dir, bob, bobPass)
	im, layout := image(t)
	repo := e.hostPort + "/clients/cosign"
	run(t, a, crane, "push", layout, repo+":v1")
	ref := repo + "@" + im.Digest

	keys := func(name string) string {
		d := filepath.Join(dir, name)
		must(t, os.MkdirAll(d, 0o700))
		testenv.MustRun(t, []string{"COSIGN_PASSWORD=" + name + "-passphrase", "HOME=" + d}, "sh", "-c", `cd "$1" && "$2" generate-key-pair`, "sh", d, cosign)
		return d
	}
	signer, stranger := keys("signer"), keys("stranger")
	withKey := func(env []string, d string) []string {
		return append(append([]string{}, env...), "COSIGN_PASSWORD="+filepath.Base(d)+"-passphrase", "TUF_ROOT="+filepath.Join(d, "tuf"))
	}

	run(t, withKey(a, signer), cosign, "sign", "--key", filepath.Join(signer, "cosign.key"), "--tlog-upload=false", ref)
	sigTag := strings.Replace(im.Digest, ":", "-", 1) + ".sig"
	if tags := strings.Fields(run(t, b, crane, "ls", repo)); !slices.Contains(tags, sigTag) {
		t.Fatalf("tags after signing are %q, want the signature tag %s", tags, sigTag)
	}
	if m := readManifest(t, b, repo+":"+sigTag); len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" {
		t.Errorf("the signature's layers are %+v, want one application/vnd.dev.cosign.simplesigning.v1+json", m.Layers)
	}

	out := run(t, withKey(b, signer), cosign, "verify", "--key", filepath.Join(signer, "cosign.pub"), "--insecure-ignore-tlog", ref)
	if !strings.Contains(out, im.Digest) {
		t.Errorf("cosign verify does not name the image's digest %s:\n%s", im.Digest, out)
	}
	if out := fails(t, withKey(b, stranger), cosign, "verify", "--key", filepath.Join(stranger, "cosign.pub"), "--insecure-ignore-tlog", ref); !strings.Contains(out, "no matching signatures") {
		t.Errorf("cosign verify with a key that did not sign failed without saying no matching signatures:\n%s", out)
	}
	refused(t, withKey(b, stranger), cosign, "sign", "--key", filepath.Join(stranger, "cosign.key"), "--tlog-upload=false", ref)

	// cosign's experimental OCI 1.1 mode stores the signature as a
	// referrer of the image (a manifest whose subject is the image) and
	// finds it through the referrers API. Neither cosign's .sig tag nor
	// the OCI fallback tag sha256-HEX (written where a registry lacks the
	// referrers API) may appear.
	t.Run("OCI 1.1 referrers", func(t *testing.T) {
		im, layout := image(t)
		run(t, a, crane, "push", layout, repo+":referrers")
		ref := repo + "@" + im.Digest
		experimental := func(env []string) []string { return append(append([]string{}, env...), "COSIGN_EXPERIMENTAL=1") }
		run(t, experimental(withKey(a, signer)), cosign, "sign", "--key", filepath.Join(signer, "cosign.key"), "--tlog-upload=false", "--registry-referrers-mode=oci-1-1", ref)
		for _, tag := range strings.Fields(run(t, b, crane, "ls", repo)) {
			if strings.HasPrefix(tag, strings.Replace(im.Digest, ":", "-", 1)) {
				t.Fatalf("tag %s was written for %s: the signature was not stored through the referrers API", tag, im.Digest)
			}
		}
		run(t, experimental(withKey(b, signer)), cosign, "verify", "--key", filepath.Join(signer, "cosign.pub"), "--insecure-ignore-tlog", "--experimental-oci11", ref)
		// In this mode cosign words a signature that does not verify
		// as none found.
		if out := fails(t, experimental(withKey(b, stranger)), cosign, "verify", "--key", filepath.Join(stranger, "cosign.pub"), "--insecure-ignore-tlog", "--experimental-oci11", ref); !strings.Contains(out, "no signatures found") {
			t.Errorf("cosign verify with a key that did not sign failed without saying no signatures found:\n%s", out)
		}
	})
}
