//go:build integration

package docs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServeHelm runs serve.md's Helm block against a `gatehouse serve` of
// its own: the chart pulled back is the file pushed, byte for byte, and the
// registry holds it as Helm's OCI artifact.
func TestServeHelm(t *testing.T) {
	blocks := loadBlocks(t)
	in := startServe(t, []string{"serve"}, false)
	r := newRunner(t, nil)
	b := blocks["serve-helm"]
	r.run(t, b, in.dir, substitute(t, b, "localhost:5000", fmt.Sprintf("localhost:%d", in.regPort)))

	pushed, err := os.ReadFile(filepath.Join(in.dir, "mychart-0.1.0.tgz"))
	must(t, err)
	pulled, err := os.ReadFile(filepath.Join(in.dir, "pulled-chart", "mychart-0.1.0.tgz"))
	must(t, err)
	if !bytes.Equal(pushed, pulled) {
		t.Errorf("the pulled chart (%s) differs from the pushed one (%s)", sha(pulled), sha(pushed))
	}

	var m struct {
		Config struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"layers"`
	}
	must(t, json.Unmarshal(registryGet(t, in, "charts/mychart", "manifests/0.1.0"), &m))
	if got, want := m.Config.MediaType, "application/vnd.cncf.helm.config.v1+json"; got != want {
		t.Errorf("the chart's config media type is %q, want %q", got, want)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.cncf.helm.chart.content.v1.tar+gzip" || m.Layers[0].Digest != sha(pushed) {
		t.Errorf("the chart's layers are %+v, want one %s of media type application/vnd.cncf.helm.chart.content.v1.tar+gzip", m.Layers, sha(pushed))
	}
}

// TestServeCosign runs serve.md's crane block (which pushes the image) and
// then its cosign block against a `gatehouse serve` of its own: the
// signature lands in the sha256-HEX.sig tag cosign looks for, and a key
// that did not sign is refused.
func TestServeCosign(t *testing.T) {
	blocks := loadBlocks(t)
	in := startServe(t, []string{"serve"}, false)
	r := newRunner(t, nil)
	reg := fmt.Sprintf("localhost:%d", in.regPort)
	for _, name := range []string{"serve-crane", "serve-cosign"} {
		b := blocks[name]
		r.run(t, b, in.dir, substitute(t, b, "localhost:5000", reg))
	}

	var tags struct {
		Tags []string `json:"tags"`
	}
	must(t, json.Unmarshal(registryGet(t, in, "hello", "tags/list"), &tags))
	digest := registryDigest(t, in, "hello", "crane")
	sigTag := strings.Replace(digest, ":", "-", 1) + ".sig"
	if !slices.Contains(tags.Tags, sigTag) {
		t.Fatalf("hello's tags are %q, want the signature tag %s", tags.Tags, sigTag)
	}

	// The signature holds for cosign.pub only: a key pair that did not
	// sign is refused.
	other := t.TempDir()
	env := append(append([]string{}, r.env...), "SSL_CERT_FILE="+in.trustCA, "COSIGN_PASSWORD=another passphrase")
	image := reg + "/hello@" + digest
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cosign := func(dir string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "cosign", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cosign(other, "generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	out, err := cosign(other, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", image)
	if err == nil {
		t.Fatalf("cosign verify with a key that did not sign succeeded:\n%s", out)
	}
	if !strings.Contains(out, "no matching signatures") {
		t.Errorf("cosign verify with another key failed without saying no matching signatures:\n%s", out)
	}
	if out, err := cosign(in.dir, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", image); err != nil {
		t.Errorf("cosign verify with the signing key, run again: %v\n%s", err, out)
	}
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// registryGet reads /v2/REPO/PATH from a serve instance as admin, with a
// token for pulling REPO from its auth server.
func registryGet(t *testing.T, in *instance, repo, path string) []byte {
	t.Helper()
	resp := registryDo(t, in, repo, path)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/%s/%s: %s\n%s", repo, path, resp.Status, body)
	}
	return body
}

// registryDigest returns the digest the registry names for REPO:TAG.
func registryDigest(t *testing.T, in *instance, repo, tag string) string {
	t.Helper()
	resp := registryDo(t, in, repo, "manifests/"+tag)
	resp.Body.Close()
	d := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusOK || d == "" {
		t.Fatalf("GET /v2/%s/manifests/%s: %s, digest %q", repo, tag, resp.Status, d)
	}
	return d
}

func registryDo(t *testing.T, in *instance, repo, path string) *http.Response {
	t.Helper()
	ca, err := os.ReadFile(in.trustCA)
	must(t, err)
	password, err := os.ReadFile(in.adminPasswordFile)
	must(t, err)
	client := trustingClient(t, ca)

	req, err := http.NewRequest(http.MethodGet, in.authURL+"/auth?service=gatehouse&scope="+url.QueryEscape("repository:"+repo+":pull"), nil)
	must(t, err)
	req.SetBasicAuth("admin", strings.TrimSpace(string(password)))
	resp, err := client.Do(req)
	must(t, err)
	var tok struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || tok.Token == "" {
		t.Fatalf("token for pulling %s: %s, %v", repo, resp.Status, err)
	}

	req, err = http.NewRequest(http.MethodGet, fmt.Sprintf("https://%s:%d/v2/%s/%s", in.host, in.regPort, repo, path), nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err = client.Do(req)
	must(t, err)
	return resp
}
