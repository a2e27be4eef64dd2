package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// layerSpec is one generated layer of the multi-layer image.
type layerSpec struct {
	seed   uint64
	size   int64
	digest string
}

// imageLayers returns n layers of 1 to 20 MiB (random sizes, seeded by
// round so that every round pushes new content) and their digests.
func imageLayers(round, n int) []layerSpec {
	rng := rand.New(rand.NewPCG(uint64(round), 50)) //nolint:gosec // seeded on purpose: the same sizes every run
	out := make([]layerSpec, n)
	var wg sync.WaitGroup
	for i := range out {
		seed := uint64(1000*round + i + 100)
		size := int64(1<<20 + rng.IntN(19<<20+1))
		out[i] = layerSpec{seed: seed, size: size}
		wg.Go(func() { out[i].digest = genDigest(seed, size) })
	}
	wg.Wait()
	return out
}

// parallel runs f on items 0..n-1 with workers goroutines and returns the
// first error.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// pushStreamed uploads a layer as the Docker engine does: POST, one
// PATCH streaming the whole layer, and the closing PUT with the digest.
func (t *target) pushStreamed(ctx context.Context, l layerSpec) error {
	loc, err := t.startUpload(ctx)
	if err != nil {
		return err
	}
	resp, err := t.do(ctx, http.MethodPatch, loc, newGen(l.seed, l.size), l.size, //nolint:bodyclose // expect closes it
		map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	next, lerr := t.location(resp)
	if err := expect(resp, http.StatusAccepted, "PATCH layer"); err != nil {
		return err
	}
	if lerr != nil {
		return lerr
	}
	resp, err = t.do(ctx, http.MethodPut, withDigest(next, l.digest), bytes.NewReader(nil), 0, nil) //nolint:bodyclose // expect closes it
	if err != nil {
		return err
	}
	return expect(resp, http.StatusCreated, "PUT layer")
}

// pushImage pushes the layers with workers concurrent uploads, then the
// config and the manifest under tag, and returns the time taken.
func (t *target) pushImage(ctx context.Context, layers []layerSpec, workers int, tag string) (time.Duration, error) {
	start := time.Now()
	if err := parallel(ctx, len(layers), workers, func(i int) error { return t.pushStreamed(ctx, layers[i]) }); err != nil {
		return 0, err
	}
	cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"created":%q}`, tag)
	cd, err := t.pushSmallBlob(ctx, cfg)
	if err != nil {
		return 0, err
	}
	if err := t.putManifest(ctx, tag, imageManifest(cd, len(cfg), layers)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func imageManifest(cfgDigest string, cfgSize int, layers []layerSpec) []byte {
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[`,
		ociManifest, ociConfig, cfgDigest, cfgSize)
	for i, l := range layers {
		if i > 0 {
			m = append(m, ',')
		}
		m = fmt.Appendf(m, `{"mediaType":%q,"digest":%q,"size":%d}`, ociLayer, l.digest, l.size)
	}
	return append(m, "]}"...)
}

// pullImage GETs the manifest under tag, then its layers with workers
// concurrent GETs, each read to the end and its length checked.
func (t *target) pullImage(ctx context.Context, tag string, layers []layerSpec, workers int) (time.Duration, error) {
	start := time.Now()
	resp, err := t.do(ctx, http.MethodGet, t.base+"/v2/"+t.repo+"/manifests/"+tag, nil, 0, map[string]string{"Accept": ociManifest}) //nolint:bodyclose // expect closes it
	if err != nil {
		return 0, err
	}
	if err := expect(resp, http.StatusOK, "GET manifest"); err != nil {
		return 0, err
	}
	err = parallel(ctx, len(layers), workers, func(i int) error {
		resp, err := t.do(ctx, http.MethodGet, t.base+"/v2/"+t.repo+"/blobs/"+layers[i].digest, nil, 0, nil)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET layer: %s%s", resp.Status, redirectNote(resp))
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return err
		}
		if n != layers[i].size {
			return fmt.Errorf("GET layer: %d bytes, want %d", n, layers[i].size)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// listCatalog GETs /v2/_catalog?n=n, following Link pagination, and
// returns the repositories counted and the time the requests took.
func (t *target) listCatalog(ctx context.Context, n int) (int, int, time.Duration, error) {
	u := fmt.Sprintf("%s/v2/_catalog?n=%d", t.base, n)
	var bodies [][]byte
	start := time.Now()
	for u != "" {
		resp, err := t.do(ctx, http.MethodGet, u, nil, 0, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return 0, 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, 0, fmt.Errorf("catalog: %s: %s", resp.Status, bytes.TrimSpace(body))
		}
		bodies = append(bodies, body)
		u = ""
		if link := resp.Header.Get("Link"); link != "" {
			if u, err = nextLink(t.base, link); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	elapsed := time.Since(start)
	total := 0
	for _, b := range bodies {
		total += bytes.Count(b, []byte(`"scale/`))
	}
	return total, len(bodies), elapsed, nil
}
