package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// layout writes registry:2's storage layout directly on disk, under
// root (a filesystem driver's rootdirectory), without a registry: data
// for the workloads whose setup through the API would take longer than
// the measurement (10,000 repositories, 100,000 blobs). Nothing is
// flushed; the caller runs sync before timing anything.
type layout struct{ root string }

func (l layout) v2() string { return filepath.Join(l.root, "docker", "registry", "v2") }

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}

// blob stores b and returns its digest.
func (l layout) blob(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	return "sha256:" + h, writeFile(filepath.Join(l.v2(), "blobs", "sha256", h[:2], h, "data"), b)
}

// link writes repositories/<repo>/<rel>/link holding dgst.
func (l layout) link(repo, rel, dgst string) error {
	return writeFile(filepath.Join(l.v2(), "repositories", filepath.FromSlash(repo), filepath.FromSlash(rel), "link"), []byte(dgst))
}

func hexOf(dgst string) string { return dgst[len("sha256:"):] }

// image stores a manifest of cfg and layers (all already stored) in repo:
// its blob, its layer links, its revision link and, when tag is not "",
// the tag. It returns the manifest's digest.
func (l layout) image(repo, tag string, cfg []byte, cfgDigest string, layers []string, layerSizes []int) (string, error) {
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[`,
		ociManifest, ociConfig, cfgDigest, len(cfg))
	for i, d := range layers {
		if i > 0 {
			m = append(m, ',')
		}
		m = fmt.Appendf(m, `{"mediaType":%q,"digest":%q,"size":%d}`, ociLayer, d, layerSizes[i])
	}
	m = append(m, "]}"...)
	md, err := l.blob(m)
	if err != nil {
		return "", err
	}
	for _, d := range append([]string{cfgDigest}, layers...) {
		if err := l.link(repo, "_layers/sha256/"+hexOf(d), d); err != nil {
			return "", err
		}
	}
	if err := l.link(repo, "_manifests/revisions/sha256/"+hexOf(md), md); err != nil {
		return "", err
	}
	if tag != "" {
		if err := l.link(repo, "_manifests/tags/"+tag+"/index/sha256/"+hexOf(md), md); err != nil {
			return "", err
		}
		if err := l.link(repo, "_manifests/tags/"+tag+"/current", md); err != nil {
			return "", err
		}
	}
	return md, nil
}

// genRepos writes n repositories (scale/r00000 ...), each with one image
// tagged latest; all share the same config and layer blobs.
func genRepos(root string, n int) error {
	l := layout{root}
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd, err := l.blob(cfg)
	if err != nil {
		return err
	}
	layer := []byte("a small layer shared by every repository")
	ld, err := l.blob(layer)
	if err != nil {
		return err
	}
	for i := range n {
		if _, err := l.image(repoOf(i), "latest", cfg, cd, []string{ld}, []int{len(layer)}); err != nil {
			return err
		}
	}
	return nil
}

func repoOf(i int) string { return fmt.Sprintf("scale/r%05d", i) }

// gcData describes what genGC wrote.
type gcData struct {
	blobs, referenced int
	bytes             int64 // of all blob data
}

// genGC writes repos repositories holding manifests manifests in all
// (half of them tagged), each with a unique config and layers, and then
// unreferenced layer blobs (linked into a repository, as a push that never
// got its manifest leaves them) until there are blobs blobs. Blobs are
// small (256 B to 4 KiB of random bytes).
func genGC(root string, blobs, manifests, repos int) (gcData, error) {
	l := layout{root}
	rng := rand.New(rand.NewPCG(7, 7)) //nolint:gosec // seeded on purpose: the same data every run
	var res gcData
	random := func() []byte {
		b := make([]byte, 256+rng.IntN(4096-256))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		res.blobs++
		res.bytes += int64(len(b))
		return b
	}
	perManifest := max(1, (blobs/2)/max(1, manifests)-2) // layers per manifest
	for m := range manifests {
		repo := fmt.Sprintf("gc/r%04d", m%repos)
		cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","created":"%d"}`, m)
		cd, err := l.blob(cfg)
		if err != nil {
			return res, err
		}
		res.blobs++
		res.bytes += int64(len(cfg))
		var layers []string
		var sizes []int
		for range perManifest {
			b := random()
			d, err := l.blob(b)
			if err != nil {
				return res, err
			}
			layers, sizes = append(layers, d), append(sizes, len(b))
		}
		tag := ""
		if m%2 == 0 {
			tag = fmt.Sprintf("t%d", m/repos)
		}
		md, err := l.image(repo, tag, cfg, cd, layers, sizes)
		if err != nil {
			return res, err
		}
		res.blobs++
		if fi, err := os.Stat(filepath.Join(l.v2(), "blobs", "sha256", hexOf(md)[:2], hexOf(md), "data")); err == nil {
			res.bytes += fi.Size()
		}
	}
	res.referenced = res.blobs
	for i := 0; res.blobs < blobs; i++ {
		d, err := l.blob(random())
		if err != nil {
			return res, err
		}
		if err := l.link(fmt.Sprintf("gc/r%04d", i%repos), "_layers/sha256/"+hexOf(d), d); err != nil {
			return res, err
		}
	}
	return res, nil
}
