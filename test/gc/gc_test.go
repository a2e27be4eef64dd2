//go:build integration

// Package gc checks `gatehouse gc` on storage written by the reference
// registries: it must keep every blob of every tagged image, whatever kind
// of manifest registry:2 stored, and mark what registry:2's own
// garbage-collect marks.
package gc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// Manifest media types pushed here.
const (
	mtSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mtSchema2       = "application/vnd.docker.distribution.manifest.v2+json"
	mtOCIManifest   = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex      = "application/vnd.oci.image.index.v1+json"
	acceptAll       = mtSchema1Signed + ", application/vnd.docker.distribution.manifest.v1+json, " + mtSchema2 +
		", application/vnd.docker.distribution.manifest.list.v2+json, " + mtOCIManifest + ", " + mtOCIIndex
)

// tagged is an image a test expects to find whole after GC.
type tagged struct{ repo, tag string }

// TestGCKeepsRegistry2Manifests writes, through registry 2.8.2 with
// schema1 enabled, a signed schema1 manifest (PUT as prettyjws; 2.8.2
// verifies the signature and stores the payload without it) and an OCI
// manifest whose layer descriptors have no mediaType, and through registry
// v3.1.2 ordinary images (OCI by crane, Docker schema2, an index) plus
// garbage (an unreferenced blob, a deleted image). Both garbage collectors
// dry-run on the stopped storage and must mark the same number of blobs
// and name the same ones for deletion; then `gatehouse gc` runs, and every
// blob of every tagged image must still be served, by Gatehouse and by
// 2.8.2, while the garbage is gone.
func TestGCKeepsRegistry2Manifests(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "storage")
	var images []tagged
	var garbage []string // blobs no tagged image references

	// 1. Registry 2.8.2 with schema1 enabled.
	schema1 := "compatibility:\n  schema1:\n    enabled: true\n"
	r2 := startRegistry(t, testenv.Tool(t, testenv.Registry2), root, schema1)
	{
		base := r2.url
		l0 := pushBlob(t, base, "legacy/signed", gzipish("schema1 layer 0"))
		l1 := pushBlob(t, base, "legacy/signed", gzipish("schema1 layer 1"))
		payload := signedSchema1(t, "legacy/signed", "v1", []string{l1, l0})
		if !bytes.Contains(payload, []byte(`"signatures"`)) {
			t.Fatal("schema1 manifest not signed")
		}
		signed := putManifest(t, base, "legacy/signed", "v1", mtSchema1Signed, payload)
		// 2.8.2 verifies the signature, then stores the payload without
		// it (the digest is the payload's) and signs again with its own
		// key on every GET: what GC reads is schema1 without mediaType.
		if stored := readBlob(t, root, signed); !bytes.Contains(stored, []byte(`"schemaVersion": 1`)) || !bytes.Contains(stored, []byte(`"fsLayers"`)) {
			t.Fatalf("registry 2.8.2 stored the schema1 manifest %s as:\n%s", signed, stored)
		}
		if served, _ := get(t, base+"/v2/legacy/signed/manifests/v1", mtSchema1Signed); !bytes.Contains(served, []byte(`"signatures"`)) {
			t.Fatalf("registry 2.8.2 serves legacy/signed:v1 unsigned:\n%s", served)
		}
		images = append(images, tagged{"legacy/signed", "v1"})

		cfg := pushBlob(t, base, "legacy/bare", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		b0 := pushBlob(t, base, "legacy/bare", gzipish("bare layer 0"))
		b1 := pushBlob(t, base, "legacy/bare", gzipish("bare layer 1"))
		bare := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"digest":%q,"size":%d},{"digest":%q,"size":%d}]}`,
			mtOCIManifest, cfg, len(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`),
			b0, len(gzipish("bare layer 0")), b1, len(gzipish("bare layer 1")))
		putManifest(t, base, "legacy/bare", "v1", mtOCIManifest, []byte(bare))
		images = append(images, tagged{"legacy/bare", "v1"})

		garbage = append(garbage, pushBlob(t, base, "legacy/bare", gzipish("pushed, never referenced")))
	}
	r2.Stop()

	// 2. Registry v3.1.2: ordinary images, and an image deleted again.
	r3 := startRegistry(t, testenv.Tool(t, testenv.Registry3), root, "")
	{
		base := r3.url
		crane := testenv.Tool(t, "crane")
		im := testenv.NewImage(t, map[string]string{"gc/oci.txt": "an OCI image pushed by crane\n"})
		layout := filepath.Join(dir, "layout")
		im.WriteOCILayout(t, layout, "v1")
		testenv.MustRun(t, []string{"DOCKER_CONFIG=" + dir, "HOME=" + dir}, crane, "push", "--insecure", layout, r3.addr+"/apps/oci:v1")
		images = append(images, tagged{"apps/oci", "v1"})

		cfg := []byte(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cfgDg := pushBlob(t, base, "apps/docker", cfg)
		layer := gzipish("docker schema2 layer")
		layerDg := pushBlob(t, base, "apps/docker", layer)
		s2 := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":%q,"size":%d}]}`,
			mtSchema2, cfgDg, len(cfg), layerDg, len(layer)))
		s2Dg := putManifest(t, base, "apps/docker", "v1", mtSchema2, s2)
		images = append(images, tagged{"apps/docker", "v1"})
		idx := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"architecture":"arm64","os":"linux"}}]}`,
			mtOCIIndex, mtSchema2, s2Dg, len(s2)))
		putManifest(t, base, "apps/docker", "multi", mtOCIIndex, idx)
		images = append(images, tagged{"apps/docker", "multi"})

		// An image whose manifest is deleted: its config, layer and
		// manifest become garbage.
		oldCfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"old":true}`)
		oldCfgDg := pushBlob(t, base, "apps/old", oldCfg)
		oldLayer := gzipish("layer of a deleted image")
		oldLayerDg := pushBlob(t, base, "apps/old", oldLayer)
		old := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
			mtOCIManifest, oldCfgDg, len(oldCfg), oldLayerDg, len(oldLayer)))
		oldDg := putManifest(t, base, "apps/old", "v1", mtOCIManifest, old)
		do(t, http.MethodDelete, base+"/v2/apps/old/manifests/"+oldDg, "", nil, http.StatusAccepted)
		garbage = append(garbage, oldCfgDg, oldLayerDg, oldDg)
		// Keep one tagged image in apps/old so the repository stays.
		images = append(images, tagged{"apps/old", "keep"})
		keepCfg := pushBlob(t, base, "apps/old", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"keep":true}`))
		putManifest(t, base, "apps/old", "keep", mtOCIManifest, []byte(fmt.Sprintf(
			`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`,
			mtOCIManifest, keepCfg, len(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"keep":true}`))))
	}
	r3.Stop()

	// 3. Both garbage collectors, dry run: the same blobs marked and the
	// same blobs eligible for deletion.
	gatehouse := testenv.Gatehouse(t)
	// Gatehouse refuses the compatibility section (it stores no schema1).
	ghcfg := writeConfig(t, filepath.Join(dir, "gatehouse.yml"), root, "127.0.0.1:0", "")
	r2cfg := writeConfig(t, filepath.Join(dir, "registry2.yml"), root, "127.0.0.1:0", schema1)
	ref := testenv.MustRun(t, nil, testenv.Tool(t, testenv.Registry2), "garbage-collect", "--dry-run", r2cfg)
	refMarked, refSwept := registry2GCFigures(t, ref)
	dry := testenv.MustRun(t, nil, gatehouse, "gc", "--dry-run", "--i-know-registry-is-read-only", ghcfg)
	ghMarked, ghSwept := gatehouseGCFigures(t, dry)
	t.Logf("registry 2.8.2 garbage-collect --dry-run: %d blobs marked, %d eligible for deletion", refMarked, len(refSwept))
	t.Logf("gatehouse gc --dry-run: %d blobs marked, %d to delete", ghMarked, len(ghSwept))
	if refMarked != ghMarked {
		t.Errorf("blobs marked: registry 2.8.2 %d, gatehouse %d\n--- registry 2.8.2:\n%s\n--- gatehouse:\n%s", refMarked, ghMarked, ref, dry)
	}
	if d := cmp.Diff(refSwept, ghSwept); d != "" {
		t.Errorf("blobs eligible for deletion differ (-registry 2.8.2 +gatehouse):\n%s", d)
	}
	sort.Strings(garbage)
	if d := cmp.Diff(garbage, ghSwept); d != "" {
		t.Errorf("gatehouse would delete other blobs than the garbage (-garbage +gatehouse):\n%s", d)
	}

	// 4. The real run.
	out := testenv.MustRun(t, nil, gatehouse, "gc", "--i-know-registry-is-read-only", ghcfg)
	t.Logf("gatehouse gc:\n%s", out)

	// 5. Every layer of every tagged image is served, by Gatehouse and by
	// registry 2.8.2; the garbage is not.
	for _, dg := range garbage {
		if _, err := os.Stat(blobPath(root, dg)); !os.IsNotExist(err) {
			t.Errorf("garbage blob %s still stored after gc (%v)", dg, err)
		}
	}
	for _, program := range []struct{ name, bin, extra string }{
		{"gatehouse", "", ""},
		{"registry 2.8.2", testenv.Tool(t, testenv.Registry2), schema1},
	} {
		var reg *server
		if program.bin == "" {
			reg = startRegistry(t, gatehouse, root, "", "registry")
		} else {
			reg = startRegistry(t, program.bin, root, program.extra)
		}
		checked := 0
		for _, im := range images {
			checked += checkPullable(t, program.name, reg.url, im.repo, im.tag)
		}
		t.Logf("%s after gc: %d blobs of %d tagged images pullable", program.name, checked, len(images))
		reg.Stop()
	}
}

// checkPullable fetches repo:tag's manifest and every blob and child it
// references (recursively for indexes), failing on anything but 200 with
// the right digest. It returns how many blobs it fetched.
func checkPullable(t *testing.T, who, base, repo, ref string) int {
	t.Helper()
	body, _ := get(t, base+"/v2/"+repo+"/manifests/"+ref, acceptAll)
	if body == nil {
		t.Errorf("%s: %s:%s: manifest not served after gc", who, repo, ref)
		return 0
	}
	var m struct {
		Config    *struct{ Digest string }
		Layers    []struct{ Digest string }
		Manifests []struct{ Digest string }
		FSLayers  []struct{ BlobSum string } `json:"fsLayers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %s:%s: %v", who, repo, ref, err)
	}
	var blobs []string
	if m.Config != nil {
		blobs = append(blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, l := range m.FSLayers {
		blobs = append(blobs, l.BlobSum)
	}
	if len(blobs) == 0 && len(m.Manifests) == 0 {
		t.Errorf("%s: %s:%s references nothing: %s", who, repo, ref, body)
	}
	n := 0
	for _, dg := range blobs {
		content, code := get(t, base+"/v2/"+repo+"/blobs/"+dg, "")
		switch {
		case code != http.StatusOK:
			t.Errorf("%s: %s:%s: blob %s answers %d after gc", who, repo, ref, dg, code)
		case digestOf(content) != dg:
			t.Errorf("%s: %s:%s: blob %s served with digest %s", who, repo, ref, dg, digestOf(content))
		default:
			n++
		}
	}
	for _, c := range m.Manifests {
		n += checkPullable(t, who, base, repo, c.Digest)
	}
	return n
}

var (
	// registry 2.8.2: "N blobs marked, M blobs and K manifests eligible
	// for deletion" and "blob eligible for deletion: sha256:...".
	r2SummaryRE = regexp.MustCompile(`(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion`)
	r2BlobRE    = regexp.MustCompile(`blob eligible for deletion: (sha256:[0-9a-f]{64})`)
	// gatehouse: "blobs marked: N" and "sweep blob sha256:... (n bytes)".
	ghMarkedRE = regexp.MustCompile(`blobs marked: (\d+)`)
	ghBlobRE   = regexp.MustCompile(`sweep blob (sha256:[0-9a-f]{64})`)
)

func registry2GCFigures(t *testing.T, out string) (marked int, swept []string) {
	t.Helper()
	m := r2SummaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in docker-registry garbage-collect output:\n%s", out)
	}
	_, _ = fmt.Sscan(m[1], &marked)
	return marked, allMatches(r2BlobRE, out)
}

func gatehouseGCFigures(t *testing.T, out string) (marked int, swept []string) {
	t.Helper()
	m := ghMarkedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in gatehouse gc output:\n%s", out)
	}
	_, _ = fmt.Sscan(m[1], &marked)
	return marked, allMatches(ghBlobRE, out)
}

func allMatches(re *regexp.Regexp, s string) []string {
	out := []string{}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

// server is a registry process started on a free port of 127.0.0.1.
type server struct {
	*testenv.Process
	addr, url string
}

// writeConfig writes a distribution config.yml for the storage at root,
// listening on addr; extra is appended.
func writeConfig(t *testing.T, path, root, addr, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n"+
		"  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: %q\n%s", root, addr, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startRegistry runs `bin [sub] serve CONFIG` on a free port of 127.0.0.1
// with the filesystem storage at root (config extra appended) and waits
// for /v2/.
func startRegistry(t *testing.T, bin, root, extra string, sub ...string) *server {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "config.yml"), root, addr, extra)
	args := append(append([]string{}, sub...), "serve", cfg)
	p := testenv.Start(t, []string{"OTEL_TRACES_EXPORTER=none"}, bin, args...)
	p.WaitHTTP(t, "http://"+addr+"/v2/")
	return &server{Process: p, addr: addr, url: "http://" + addr}
}

var client = &http.Client{Timeout: 30 * time.Second}

// do sends a request and fails the test unless it answers want; it
// returns the response's headers and body.
func do(t *testing.T, method, u, contentType string, body []byte, want int) (http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, u, resp.StatusCode, want, b)
	}
	return resp.Header, b
}

// get returns the body and status of a GET (body nil unless 200).
func get(t *testing.T, u, accept string) ([]byte, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	return b, resp.StatusCode
}

// pushBlob uploads content to repo in one POST + PUT and returns its digest.
func pushBlob(t *testing.T, base, repo string, content []byte) string {
	t.Helper()
	dg := digestOf(content)
	h, _ := do(t, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	loc, err := url.Parse(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	loc, err = loc.Parse(h.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", dg)
	loc.RawQuery = q.Encode()
	do(t, http.MethodPut, loc.String(), "application/octet-stream", content, http.StatusCreated)
	return dg
}

// putManifest pushes payload under tag and returns the digest the
// registry answers.
func putManifest(t *testing.T, base, repo, tag, mediaType string, payload []byte) string {
	t.Helper()
	h, _ := do(t, http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, mediaType, payload, http.StatusCreated)
	dg := h.Get("Docker-Content-Digest")
	if dg == "" {
		t.Fatalf("PUT %s:%s: no Docker-Content-Digest", repo, tag)
	}
	return dg
}

// blobPath is where registry:2's filesystem layout keeps blob dg.
func blobPath(root, dg string) string {
	hex := strings.TrimPrefix(dg, "sha256:")
	return filepath.Join(root, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
}

func readBlob(t *testing.T, root, dg string) []byte {
	t.Helper()
	b, err := os.ReadFile(blobPath(root, dg))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return fmt.Sprintf("sha256:%x", sum)
}

// gzipish returns distinct bytes standing for a layer (registries do not
// look inside layers).
func gzipish(s string) []byte { return []byte("layer bytes: " + s) }

// signedSchema1 builds a schema1 manifest for name:tag over the layers
// (newest first, as schema1 lists them) and signs it the way Docker did:
// a JWS (ES256, key in the header) over the payload, spliced into the
// payload as "signatures" before its closing brace; the protected header
// records where the splice is (formatLength) and what followed it
// (formatTail), so a verifier can cut the payload back out.
func signedSchema1(t *testing.T, name, tag string, layers []string) []byte {
	t.Helper()
	type fsLayer struct {
		BlobSum string `json:"blobSum"`
	}
	type history struct {
		V1Compatibility string `json:"v1Compatibility"`
	}
	m := struct {
		SchemaVersion int       `json:"schemaVersion"`
		Name          string    `json:"name"`
		Tag           string    `json:"tag"`
		Architecture  string    `json:"architecture"`
		FSLayers      []fsLayer `json:"fsLayers"`
		History       []history `json:"history"`
	}{SchemaVersion: 1, Name: name, Tag: tag, Architecture: "amd64"}
	ids := make([]string, len(layers))
	for i := range layers {
		ids[i] = strings.Repeat(fmt.Sprintf("%x", i+1), 64)
	}
	for i, l := range layers {
		m.FSLayers = append(m.FSLayers, fsLayer{l})
		v1 := map[string]any{"id": ids[i], "created": "2024-01-01T00:00:00Z", "os": "linux", "architecture": "amd64"}
		if i+1 < len(layers) {
			v1["parent"] = ids[i+1]
		}
		b, err := json.Marshal(v1)
		if err != nil {
			t.Fatal(err)
		}
		m.History = append(m.History, history{string(b)})
	}
	payload, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		t.Fatal(err)
	}
	// The splice point: after the last non-space byte before the closing brace.
	closing := bytes.LastIndexByte(payload, '}')
	formatLength := len(bytes.TrimRight(payload[:closing], " \t\r\n"))
	tail := payload[formatLength:]

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	protected := b64(mustJSON(t, map[string]any{
		"formatLength": formatLength,
		"formatTail":   b64(tail),
		"time":         "2024-01-01T00:00:00Z",
	}))
	digest := sha256.Sum256([]byte(protected + "." + b64(payload)))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	coord := func(b []byte) string { return b64(b) }
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	signatures := mustJSON(t, []any{map[string]any{
		"header": map[string]any{
			"jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": coord(raw[1:33]), "y": coord(raw[33:65])},
			"alg": "ES256",
		},
		"signature": b64(sig),
		"protected": protected,
	}})
	var out bytes.Buffer
	out.Write(payload[:formatLength])
	out.WriteString(",\n   \"signatures\": ")
	out.Write(signatures)
	out.Write(tail)
	return out.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
