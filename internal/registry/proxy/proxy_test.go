package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

func TestBearerFlow(t *testing.T) {
	up := newFakeUpstream(t, "bearer")
	up.tokenTTL = 120
	want, _ := up.push("library/app", "1.0", []byte("layer one"))
	e := newEnv(t, up, envOpts{ttl: time.Hour, creds: true})

	got, err := e.pull(t, "library/app", "1.0")
	if err != nil || got != want {
		t.Fatalf("pull = %s, %v; want %s", got, err, want)
	}
	if n := up.tokenReq.Load(); n != 1 {
		t.Errorf("token requests after the first pull = %d, want 1", n)
	}
	if s, _ := up.lastScope.Load().(string); s != "repository:library/app:pull" {
		t.Errorf("token scope = %q", s)
	}
	// The token is cached per scope until it expires.
	if _, err := e.pull(t, "library/app", "1.0"); err != nil {
		t.Fatal(err)
	}
	if n := up.tokenReq.Load(); n != 1 {
		t.Errorf("token requests after a second pull = %d, want 1 (cached)", n)
	}
	e.clock.add(2 * time.Minute)
	if _, err := e.pull(t, "library/app", "1.0"); err != nil {
		t.Fatal(err)
	}
	if n := up.tokenReq.Load(); n != 2 {
		t.Errorf("token requests after expiry = %d, want 2", n)
	}
	// Another repository is another scope: a token of its own, fetched
	// before the first request now that the realm is known.
	up.push("library/other", "x", []byte("other"))
	before := up.manifestReq.Load()
	if _, err := e.pull(t, "library/other", "x"); err != nil {
		t.Fatal(err)
	}
	if n := up.tokenReq.Load(); n != 3 {
		t.Errorf("token requests after another repository = %d, want 3", n)
	}
	if n := up.manifestReq.Load() - before; n != 2 {
		t.Errorf("manifest requests for a new scope = %d, want 2 (HEAD and GET, no 401 round)", n)
	}
	if strings.Contains(e.logs.String(), up.pass) {
		t.Error("the upstream password reached the log")
	}
}

func TestBearerWrongCredentials(t *testing.T) {
	up := newFakeUpstream(t, "bearer")
	up.push("library/app", "1.0", []byte("layer"))
	up.pass = "changed-upstream-pw"
	e := newEnv(t, up, envOpts{creds: true})
	up.pass = "upstream-pw-123-rotated"
	_, err := e.pull(t, "library/app", "1.0")
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Status != http.StatusUnauthorized {
		t.Fatalf("pull with rejected credentials = %v, want an upstream 401", err)
	}
	if strings.Contains(err.Error(), "changed-upstream-pw") {
		t.Errorf("the error names the password: %v", err)
	}
}

func TestBasicAuth(t *testing.T) {
	up := newFakeUpstream(t, "basic")
	want, _ := up.push("app", "v1", []byte("layer"))
	e := newEnv(t, up, envOpts{creds: true})
	if got, err := e.pull(t, "app", "v1"); err != nil || got != want {
		t.Fatalf("pull = %s, %v", got, err)
	}
	// Without credentials the upstream's 401 comes back.
	e2 := newEnv(t, up, envOpts{})
	_, err := e2.pull(t, "app", "v1")
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous pull = %v, want an upstream 401", err)
	}
}

func TestSharedBlobFetch(t *testing.T) {
	up := newFakeUpstream(t, "bearer")
	layer := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	up.push("library/big", "1", layer)
	d := digest.FromBytes(layer)
	up.gate = make(chan struct{})
	e := newEnv(t, up, envOpts{creds: true})

	const clients = 8
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	started := make(chan struct{}, clients)
	for range clients {
		wg.Go(func() {
			rc, size, err := e.cache.FetchBlob(context.Background(), "library/big", d)
			started <- struct{}{}
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = rc.Close() }()
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(rc); err != nil {
				errs <- err
				return
			}
			if size != int64(len(layer)) || !bytes.Equal(buf.Bytes(), layer) {
				errs <- errors.New("a client got other bytes than the blob")
			}
		})
	}
	// Every client is reading (the upstream holds the second half back)
	// before the body completes.
	for range clients {
		<-started
	}
	close(up.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("upstream blob GETs = %d, want 1", n)
	}
	// It is in storage once the fetch has committed it.
	e.cache.fetching.Wait()
	repo, _ := e.reg.Repository("library/big")
	if desc, err := repo.StatBlob(context.Background(), d); err != nil || desc.Size != int64(len(layer)) {
		t.Errorf("cached blob: %+v, %v", desc, err)
	}
}

// gatedMove is a storage driver whose Move (the last step of committing a
// blob) waits for gate.
type gatedMove struct {
	driver.Driver
	gate chan struct{}
}

func (g gatedMove) Move(ctx context.Context, src, dst string) error {
	<-g.gate
	return g.Driver.Move(ctx, src, dst)
}

// A reader gets the whole blob, checked, without waiting for storage to
// commit its copy; a pull meanwhile joins the fetch instead of starting
// another; the blob is stored once the commit goes on.
func TestBlobReadersDoNotWaitForStorage(t *testing.T) {
	up := newFakeUpstream(t, "")
	layer := bytes.Repeat([]byte("layer bytes "), 1<<14)
	up.push("app", "1", layer)
	d := digest.FromBytes(layer)
	gate := make(chan struct{})
	e := newEnv(t, up, envOpts{d: gatedMove{Driver: inmemory.New(), gate: gate}})
	// Without the gate open, a reader that waited for the commit would
	// time out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		rc, _, err := e.cache.FetchBlob(ctx, "app", d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || !bytes.Equal(got, layer) {
			t.Fatalf("read %d while storage commits: %d bytes, %v", i, len(got), err)
		}
	}
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("upstream blob GETs = %d, want 1", n)
	}
	repo, _ := e.reg.Repository("app")
	if _, err := repo.StatBlob(context.Background(), d); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Errorf("blob visible before its commit finished: %v", err)
	}
	close(gate)
	e.cache.fetching.Wait()
	if _, err := repo.StatBlob(context.Background(), d); err != nil {
		t.Errorf("blob not stored after the commit: %v", err)
	}
}

func TestBlobDigestMismatchNotStored(t *testing.T) {
	up := newFakeUpstream(t, "")
	up.push("app", "1", []byte("good"))
	bad := digest.FromString("something else")
	up.mu.Lock()
	up.blobs[bad] = []byte("not that")
	up.mu.Unlock()
	e := newEnv(t, up, envOpts{})
	if _, err := e.readBlob(t, "app", bad); err == nil {
		t.Fatal("reading a blob whose bytes do not match succeeded")
	}
	repo, _ := e.reg.Repository("app")
	if _, err := repo.StatBlob(context.Background(), bad); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Errorf("a mismatching blob was stored: %v", err)
	}
}

func TestRevalidation(t *testing.T) {
	up := newFakeUpstream(t, "")
	first, _ := up.push("app", "latest", []byte("one"))
	e := newEnv(t, up, envOpts{})
	if got, err := e.pull(t, "app", "latest"); err != nil || got != first {
		t.Fatalf("first pull = %s, %v", got, err)
	}
	second, _ := up.push("app", "latest", []byte("two"))
	if got, err := e.pull(t, "app", "latest"); err != nil || got != second {
		t.Fatalf("pull after the tag moved = %s, %v; want %s", got, err, second)
	}
	// By digest the cached copy answers without asking.
	before := up.manifestReq.Load()
	if got, err := e.pull(t, "app", first.String()); err != nil || got != first {
		t.Fatalf("pull by digest = %s, %v", got, err)
	}
	if n := up.manifestReq.Load() - before; n != 0 {
		t.Errorf("a cached digest cost %d upstream requests", n)
	}
}

func TestFallbackToCache(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusUnauthorized} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			up := newFakeUpstream(t, "")
			want, _ := up.push("app", "v1", []byte("layer"))
			e := newEnv(t, up, envOpts{})
			if _, err := e.pull(t, "app", "v1"); err != nil {
				t.Fatal(err)
			}
			up.setFail(status)
			if got, err := e.pull(t, "app", "v1"); err != nil || got != want {
				t.Fatalf("pull while the upstream answers %d = %s, %v; want the cached %s", status, got, err, want)
			}
			// Not cached: the upstream's answer comes back.
			_, err := e.pull(t, "app", "v2")
			var ue *UpstreamError
			if !errors.As(err, &ue) || ue.Status != status {
				t.Fatalf("pull of an uncached tag = %v, want upstream %d", err, status)
			}
			if status == http.StatusTooManyRequests && ue.RetryAfter != "7" {
				t.Errorf("Retry-After = %q", ue.RetryAfter)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		up := newFakeUpstream(t, "")
		want, _ := up.push("app", "v1", []byte("layer"))
		e := newEnv(t, up, envOpts{})
		if _, err := e.pull(t, "app", "v1"); err != nil {
			t.Fatal(err)
		}
		up.srv.Close()
		if got, err := e.pull(t, "app", "v1"); err != nil || got != want {
			t.Fatalf("pull with the upstream gone = %s, %v", got, err)
		}
	})
	t.Run("404 is an answer", func(t *testing.T) {
		up := newFakeUpstream(t, "")
		up.push("app", "v1", []byte("layer"))
		e := newEnv(t, up, envOpts{})
		if _, err := e.pull(t, "app", "v1"); err != nil {
			t.Fatal(err)
		}
		up.mu.Lock()
		delete(up.manifests, "app:v1")
		up.mu.Unlock()
		if _, err := e.pull(t, "app", "v1"); !errors.Is(err, storage.ErrManifestUnknown) {
			t.Fatalf("pull of a tag deleted upstream = %v, want manifest unknown", err)
		}
	})
}

func TestTTLExpiry(t *testing.T) {
	up := newFakeUpstream(t, "")
	layer := []byte("expiring layer")
	want, _ := up.push("app", "v1", layer)
	d := inmemory.New()
	e := newEnv(t, up, envOpts{ttl: time.Hour, d: d})
	if _, err := e.pull(t, "app", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.readBlob(t, "app", digest.FromBytes(layer)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e.cache.housekeep(ctx)
	repo, _ := e.reg.Repository("app")
	if _, err := repo.StatManifest(ctx, want.String()); err != nil {
		t.Fatalf("evicted before the ttl: %v", err)
	}
	// A restart keeps the record: a new cache over the same storage
	// expires what the first one stored.
	if err := e.cache.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, up, envOpts{ttl: time.Hour, d: d})
	e2.clock.add(61 * time.Minute)
	e2.cache.housekeep(ctx)
	if _, err := repo.StatManifest(ctx, want.String()); !errors.Is(err, storage.ErrManifestUnknown) {
		t.Errorf("manifest after the ttl: %v, want unknown", err)
	}
	if _, err := repo.StatBlob(ctx, digest.FromBytes(layer)); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Errorf("blob after the ttl: %v, want unknown", err)
	}
	if _, err := d.Stat(ctx, "/docker/registry/v2/blobs/sha256/"+digest.FromBytes(layer).Encoded()[:2]+"/"+digest.FromBytes(layer).Encoded()+"/data"); err == nil {
		t.Error("the bytes of an expired blob are still stored")
	}
}

func TestTTLZeroNeverExpires(t *testing.T) {
	up := newFakeUpstream(t, "")
	want, _ := up.push("app", "v1", []byte("kept"))
	e := newEnv(t, up, envOpts{ttl: 0})
	if _, err := e.pull(t, "app", "v1"); err != nil {
		t.Fatal(err)
	}
	e.clock.add(10 * 365 * 24 * time.Hour)
	e.cache.housekeep(context.Background())
	repo, _ := e.reg.Repository("app")
	if _, err := repo.StatManifest(context.Background(), want.String()); err != nil {
		t.Errorf("ttl 0 expired content: %v", err)
	}
}

func TestSizeCapEvictsLeastRecentlyPulled(t *testing.T) {
	up := newFakeUpstream(t, "")
	blobs := map[string][]byte{}
	for _, n := range []string{"a", "b", "c"} {
		blobs[n] = bytes.Repeat([]byte(n), 1000)
		up.push("app", n, blobs[n])
	}
	e := newEnv(t, up, envOpts{prefix: "hub", maxSize: 2500})
	ctx := context.Background()
	hosted, _ := e.reg.Repository("team/app")
	// A hosted repository holds the same bytes as "a": never evicted.
	u, _ := hosted.NewUpload(ctx)
	if _, err := u.Append(ctx, bytes.NewReader(blobs["a"])); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, digest.FromBytes(blobs["a"]), -1); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := e.readBlob(t, "hub/app", digest.FromBytes(blobs[n])); err != nil {
			t.Fatal(err)
		}
		e.clock.add(time.Minute)
	}
	e.cache.Served("hub/app", digest.FromBytes(blobs["a"])) // a is now the most recent
	e.clock.add(time.Minute)
	if _, err := e.readBlob(t, "hub/app", digest.FromBytes(blobs["c"])); err != nil {
		t.Fatal(err)
	}
	e.cache.housekeep(ctx)
	cached, _ := e.reg.Repository("hub/app")
	for n, wantKept := range map[string]bool{"a": true, "b": false, "c": true} {
		_, err := cached.StatBlob(ctx, digest.FromBytes(blobs[n]))
		if (err == nil) != wantKept {
			t.Errorf("blob %s: kept = %t, want %t", n, err == nil, wantKept)
		}
	}
	if _, err := hosted.StatBlob(ctx, digest.FromBytes(blobs["a"])); err != nil {
		t.Errorf("hosted blob lost: %v", err)
	}
	if got := e.cache.state.usage(); got > 2500 {
		t.Errorf("usage after eviction = %d", got)
	}
}

func TestRouteByPrefix(t *testing.T) {
	up := newFakeUpstream(t, "")
	want, _ := up.push("library/app", "v1", []byte("layer"))
	e := newEnv(t, up, envOpts{prefix: "docker.io"})
	for name, proxied := range map[string]bool{"docker.io/library/app": true, "docker.io": false, "docker.iox/app": false, "team/app": false} {
		if got := e.cache.Proxied(name); got != proxied {
			t.Errorf("Proxied(%q) = %t, want %t", name, got, proxied)
		}
	}
	if got, err := e.pull(t, "docker.io/library/app", "v1"); err != nil || got != want {
		t.Fatalf("pull under the prefix = %s, %v", got, err)
	}
}

// TestLinkStored: a blob storage holds for one mirrored repository is
// linked into another once the upstream confirms it has it with the same
// size, without fetching its bytes again; any doubt links nothing.
func TestLinkStored(t *testing.T) {
	ctx := context.Background()
	up := newFakeUpstream(t, "bearer")
	layer := bytes.Repeat([]byte("shared base layer "), 1000)
	up.push("library/one", "1", layer)
	d := digest.FromBytes(layer)
	e := newEnv(t, up, envOpts{creds: true, ttl: time.Hour})
	if b, err := e.readBlob(t, "library/one", d); err != nil || !bytes.Equal(b, layer) {
		t.Fatalf("first fetch: %d bytes, %v", len(b), err)
	}
	if !e.cache.LinkStored(ctx, "library/two", d) {
		t.Fatalf("a stored blob the upstream has was not linked; log:\n%s", e.logs)
	}
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("upstream blob GETs = %d, want 1", n)
	}
	two, _ := e.reg.Repository("library/two")
	if desc, err := two.StatBlob(ctx, d); err != nil || desc.Size != int64(len(layer)) {
		t.Errorf("linked blob: %+v, %v", desc, err)
	}
	// The link is cached content: it expires with the ttl.
	e.clock.add(2 * time.Hour)
	e.cache.housekeep(ctx)
	if _, err := two.StatBlob(ctx, d); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Errorf("the linked blob outlived its ttl: %v", err)
	}

	// Stored bytes under a digest the upstream serves with another length:
	// not linked.
	other := []byte("stored locally only")
	od := digest.FromBytes(other)
	hosted, _ := e.reg.Repository("library/one")
	u, err := hosted.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, od, -1); err != nil {
		t.Fatal(err)
	}
	if e.cache.LinkStored(ctx, "library/three", od) {
		t.Error("linked a blob the upstream does not have")
	}
	up.mu.Lock()
	up.blobs[od] = append(other, '!')
	up.mu.Unlock()
	if e.cache.LinkStored(ctx, "library/three", od) {
		t.Error("linked a blob the upstream describes with another size")
	}
	up.mu.Lock()
	up.blobs[od] = other
	up.mu.Unlock()
	up.setFail(http.StatusServiceUnavailable)
	if e.cache.LinkStored(ctx, "library/three", od) {
		t.Error("linked a blob while the upstream could not confirm it")
	}
	up.setFail(0)
	if !e.cache.LinkStored(ctx, "library/three", od) {
		t.Error("did not link once the upstream confirmed it")
	}
	// A digest storage does not hold asks the upstream nothing.
	before := up.blobGets.Load()
	if e.cache.LinkStored(ctx, "library/three", digest.FromString("absent")) {
		t.Error("linked a blob storage does not hold")
	}
	if up.blobGets.Load() != before {
		t.Error("an absent blob was fetched")
	}
}
