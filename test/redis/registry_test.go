//go:build integration

package redis

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

var client = &http.Client{Timeout: 30 * time.Second}

// registry is a `gatehouse registry serve` with its cache on Redis.
type registry struct {
	*testenv.Process
	Addr, Debug string
	Config      string // path of the config file
}

// startRegistry runs the registry with filesystem storage, deletes
// enabled, a debug server with metrics, and redisSection (indented YAML)
// as its redis section.
func startRegistry(t *testing.T, redisSection string) *registry {
	t.Helper()
	dir := t.TempDir()
	reg := &registry{
		Addr:  fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		Debug: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: redis
  delete:
    enabled: true
http:
  addr: %s
  draintimeout: 5s
  debug:
    addr: %s
    prometheus:
      enabled: true
redis:
%s`, filepath.Join(dir, "data"), reg.Addr, reg.Debug, redisSection)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	reg.Config = path
	reg.Process = testenv.Start(t, nil, testenv.Gatehouse(t), "registry", "serve", path)
	reg.WaitHTTP(t, "http://"+reg.Addr+"/v2/")
	return reg
}

// do sends a request and returns the status and body; a 5xx fails the
// test: Redis trouble must never fail a request.
func (reg *registry) do(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+reg.Addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, b
}

func (reg *registry) blobStatus(t *testing.T, method, repo, dgst string) int {
	t.Helper()
	code, _ := reg.do(t, method, "/v2/"+repo+"/blobs/"+dgst)
	return code
}

// health returns /debug/health's status and detail.
func (reg *registry) health(t *testing.T) (int, map[string]string) {
	t.Helper()
	resp, err := client.Get("http://" + reg.Debug + "/debug/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var detail map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&detail); err != nil {
		t.Fatalf("/debug/health body: %v", err)
	}
	return resp.StatusCode, detail
}

// waitRedis waits until /debug/health says Redis is reachable (up) or
// unreachable (!up); either way the status must be 200.
func (reg *registry) waitRedis(t *testing.T, up bool) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("/debug/health to report redis up=%v", up), func() bool {
		code, detail := reg.health(t)
		if code != http.StatusOK {
			t.Fatalf("/debug/health: %d %v; a Redis outage must not make the registry unhealthy", code, detail)
		}
		return (detail["redis"] == "") == up
	})
}

// metric returns the value of a sample line of /metrics (0 if absent).
func (reg *registry) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := client.Get("http://" + reg.Debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

type pusher struct {
	crane string
	env   []string
	dir   string
}

func newPusher(t *testing.T) *pusher {
	dir := t.TempDir()
	return &pusher{crane: testenv.Tool(t, "crane"), env: []string{"DOCKER_CONFIG=" + dir, "HOME=" + dir}, dir: dir}
}

// push pushes a fresh image to ref with crane and returns it.
func (p *pusher) push(t *testing.T, ref, content string) *testenv.Image {
	t.Helper()
	im := testenv.NewImage(t, map[string]string{"redis/" + content + ".txt": content + "\n"})
	layout := filepath.Join(p.dir, content)
	im.WriteOCILayout(t, layout, "v1")
	testenv.MustRun(t, p.env, p.crane, "push", "--insecure", layout, ref)
	return im
}

// pullLayer reads the layer with crane blob and compares it.
func (p *pusher) pullLayer(t *testing.T, repoRef string, im *testenv.Image) {
	t.Helper()
	got := testenv.MustRun(t, p.env, p.crane, "blob", "--insecure", repoRef+"@"+im.LayerDigest)
	if got != string(im.Layer) {
		t.Errorf("layer pulled from %s differs from the pushed one (%d bytes, want %d)", repoRef, len(got), len(im.Layer))
	}
}

func repoKey(repo, dgst string) string {
	return "gatehouse::v1::repository::" + repo + "::blobs::{" + dgst + "}"
}

func globalKey(dgst string) string { return "gatehouse::v1::blobs::{" + dgst + "}" }

func hasKey(r *testenv.Redis, key string) bool { return len(r.Keys(key)) == 1 }

// TestRegistryOnRedis: pushes and pulls through a registry whose cache is
// on Redis fill Redis, respect repository scoping and deletes, and keep
// working, without a 5xx, while Redis is stopped, restarted, flushed and
// stalled; the registry recovers the cache by itself.
func TestRegistryOnRedis(t *testing.T) {
	const password = "redis-pw-42"
	r := testenv.StartRedis(t, testenv.WithRedisPassword(password))
	reg := startRegistry(t, fmt.Sprintf(`  addrs: [%s]
  password: %s
  dialtimeout: 250ms
  readtimeout: 250ms
  writetimeout: 250ms
  poolsize: 8
`, r.Addr, password))
	reg.waitRedis(t, true)
	p := newPusher(t)

	// Push and pull: entries appear in Redis.
	im1 := p.push(t, reg.Addr+"/team/a:v1", "one")
	p.pullLayer(t, reg.Addr+"/team/a", im1)
	if code := reg.blobStatus(t, http.MethodHead, "team/a", im1.LayerDigest); code != http.StatusOK {
		t.Fatalf("HEAD team/a layer: %d", code)
	}
	for _, k := range []string{globalKey(im1.LayerDigest), repoKey("team/a", im1.LayerDigest), repoKey("team/a", im1.ConfigDigest)} {
		if !hasKey(r, k) {
			t.Errorf("redis lacks %s; keys: %q", k, r.Keys("gatehouse::*"))
		}
	}
	if n := len(r.Keys("gatehouse::v1::*")); n < 3 {
		t.Errorf("%d cache entries in redis after a push and pull, want at least 3", n)
	}
	if hits := reg.metric(t, "gatehouse_registry_cache_redis_hits_total"); hits < 1 {
		t.Errorf("hits_total = %v after repeated reads, want > 0", hits)
	}

	// Scoping: warm for team/a and globally, still unknown to team/b.
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		if code := reg.blobStatus(t, m, "team/b", im1.LayerDigest); code != http.StatusNotFound {
			t.Errorf("%s team/b layer pushed only to team/a: %d, want 404", m, code)
		}
	}
	if hasKey(r, repoKey("team/b", im1.LayerDigest)) {
		t.Error("redis holds a team/b entry for a blob team/b does not have")
	}

	// A blob deleted through the API is not served from the cache.
	if code := reg.blobStatus(t, http.MethodDelete, "team/a", im1.ConfigDigest); code != http.StatusAccepted {
		t.Fatalf("DELETE team/a config blob: %d", code)
	}
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		if code := reg.blobStatus(t, m, "team/a", im1.ConfigDigest); code != http.StatusNotFound {
			t.Errorf("%s deleted blob: %d, want 404", m, code)
		}
	}
	if hasKey(r, repoKey("team/a", im1.ConfigDigest)) {
		t.Error("the deleted blob's team/a entry is still in redis")
	}

	// Redis stopped: pushes and pulls go on.
	r.Stop()
	im2 := p.push(t, reg.Addr+"/team/c:v1", "two")
	p.pullLayer(t, reg.Addr+"/team/c", im2)
	p.pullLayer(t, reg.Addr+"/team/a", im1)
	if code := reg.blobStatus(t, http.MethodHead, "team/b", im1.LayerDigest); code != http.StatusNotFound {
		t.Errorf("HEAD team/b layer with redis down: %d, want 404", code)
	}
	reg.waitRedis(t, false)
	if up := reg.metric(t, "gatehouse_registry_cache_redis_up"); up != 0 {
		t.Errorf("redis_up = %v with redis stopped", up)
	}

	// Redis back (empty): the registry uses it again without a restart.
	r.Start()
	reg.waitRedis(t, true)
	testenv.Eventually(t, 10*time.Second, "team/c's layer entry to reappear in redis", func() bool {
		reg.blobStatus(t, http.MethodHead, "team/c", im2.LayerDigest)
		return hasKey(r, repoKey("team/c", im2.LayerDigest))
	})

	// FLUSHALL: still correct.
	r.FlushAll()
	if code, _ := reg.do(t, http.MethodHead, "/v2/team/c/blobs/"+im2.LayerDigest); code != http.StatusOK {
		t.Errorf("HEAD after FLUSHALL: %d", code)
	}
	p.pullLayer(t, reg.Addr+"/team/c", im2)
	if got := strings.TrimSpace(testenv.MustRun(t, p.env, p.crane, "digest", "--insecure", reg.Addr+"/team/c:v1")); got != im2.Digest {
		t.Errorf("digest after FLUSHALL = %s, want %s", got, im2.Digest)
	}
	if !hasKey(r, repoKey("team/c", im2.LayerDigest)) {
		t.Fatal("team/c's layer entry not set again after FLUSHALL")
	}

	// Redis stalled while a blob is deleted: the delete is quick, and the
	// entry Redis still holds is not served when it answers again.
	r.Pause()
	start := time.Now()
	if code := reg.blobStatus(t, http.MethodDelete, "team/c", im2.LayerDigest); code != http.StatusAccepted {
		t.Fatalf("DELETE with redis stalled: %d", code)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("DELETE with redis stalled took %v", el)
	}
	if code := reg.blobStatus(t, http.MethodHead, "team/c", im2.LayerDigest); code != http.StatusNotFound {
		t.Errorf("HEAD deleted blob with redis stalled: %d, want 404", code)
	}
	r.Resume()
	reg.waitRedis(t, true)
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		if code := reg.blobStatus(t, m, "team/c", im2.LayerDigest); code != http.StatusNotFound {
			t.Errorf("%s blob deleted while redis was stalled, after it came back: %d, want 404", m, code)
		}
	}
	if hasKey(r, repoKey("team/c", im2.LayerDigest)) {
		t.Error("the entry of the blob deleted while redis was stalled is still in redis")
	}

	log := reg.Log()
	if strings.Contains(log, password) {
		t.Error("the redis password is in the registry's log")
	}
	if n := strings.Count(log, "redis blob descriptor cache unreachable"); n == 0 || n > 6 {
		t.Errorf("%d 'unreachable' warnings for two outages, want one or a few per outage:\n%s", n, log)
	}
}

// TestSeedRedisForm: the seed's registry 2 redis section (addr, db,
// dial/read/write timeouts, pool.*) plus a password loads, warns about the
// deprecated keys, and caches.
func TestSeedRedisForm(t *testing.T) {
	const password = "seed-redis-pw"
	r := testenv.StartRedis(t, testenv.WithRedisPassword(password))
	reg := startRegistry(t, fmt.Sprintf(`  addr: %s
  password: %s
  db: 0
  dialtimeout: 10ms
  readtimeout: 10ms
  writetimeout: 10ms
  pool:
    maxidle: 16
    maxactive: 64
    idletimeout: 300s
`, r.Addr, password))
	reg.waitRedis(t, true)
	p := newPusher(t)
	im := p.push(t, reg.Addr+"/seed/app:v1", "seed")
	// 10 ms timeouts on a loaded machine may briefly take the cache down:
	// read until the entry is there.
	testenv.Eventually(t, 20*time.Second, "the seed config's cache entry in redis", func() bool {
		p.pullLayer(t, reg.Addr+"/seed/app", im)
		return hasKey(r, repoKey("seed/app", im.LayerDigest))
	})
	log := reg.Log()
	for _, want := range []string{"redis.addr is deprecated", "use redis.addrs", "redis.pool.maxactive is deprecated"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, password) {
		t.Error("the redis password is in the registry's log")
	}
}
