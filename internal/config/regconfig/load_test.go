package regconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/config"
)

// files writes placeholder files and returns their directory.
func files(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("placeholder\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSeedConfigLoads(t *testing.T) {
	data, err := os.ReadFile("testdata/seed-config.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := files(t, "coreos-cert.pem", "coreos-key.pem")
	data = []byte(strings.ReplaceAll(string(data), "/ssl/", dir+"/"))
	cfg, err := Parse("config.yml", data, nil)
	if err != nil {
		t.Fatalf("seed config: %v", err)
	}
	if got := cfg.Driver(); got != "s3" {
		t.Errorf("driver = %q, want s3", got)
	}
	if got := cfg.AuthKind(); got != "token" {
		t.Errorf("auth = %q, want token", got)
	}
	if got, want := cfg.Redis.Addresses(), []string{"registryv2-redis:6379"}; !cmp.Equal(got, want) {
		t.Errorf("redis addresses = %v, want %v", got, want)
	}
	if cfg.Redis.DialTimeout != 10*time.Millisecond || cfg.Redis.Pool.IdleTimeout != 300*time.Second {
		t.Errorf("redis durations = %v, %v", cfg.Redis.DialTimeout, cfg.Redis.Pool.IdleTimeout)
	}
	if cfg.Storage.Maintenance.UploadPurging.Age != 168*time.Hour {
		t.Errorf("purge age = %v", cfg.Storage.Maintenance.UploadPurging.Age)
	}
	if cfg.HTTP.Secret.Reveal() != "secretword" || cfg.Storage.S3.SecretKey.Reveal() != "minio123" {
		t.Error("secrets not read")
	}
	if cfg.Storage.S3.ChunkSize != 5242880 {
		t.Errorf("chunksize = %d", cfg.Storage.S3.ChunkSize)
	}
	if !cfg.Storage.Delete.Enabled || cfg.Log.Level != "debug" || cfg.HTTP.Headers["X-Content-Type-Options"][0] != "nosniff" {
		t.Errorf("cfg = %+v", cfg)
	}
	// The seed's redis section is the registry 2 form: it loads, with a
	// warning naming each new key.
	wantWarnings := []string{
		"top-level loglevel is deprecated; use log.level",
		"redis.addr is deprecated (registry 2 form); use redis.addrs: [host:port]",
		"redis.pool.maxidle is deprecated (registry 2 form); use redis.maxidleconns",
		"redis.pool.maxactive is deprecated (registry 2 form); use redis.poolsize",
		"redis.pool.idletimeout is deprecated (registry 2 form); use redis.connmaxidletime",
	}
	if diff := cmp.Diff(wantWarnings, cfg.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestSeedConfigMissingFiles(t *testing.T) {
	data, err := os.ReadFile("testdata/seed-config.yml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("config.yml", data, nil)
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v, want Problems", err)
	}
	// certificate, key and rootcertbundle all point at /ssl/, which does not exist here.
	if len(ps) != 3 {
		t.Fatalf("got %d problems, want 3:\n%v", len(ps), ps)
	}
	for _, p := range ps {
		if p.Line == 0 || !strings.Contains(p.Msg, "cannot read") {
			t.Errorf("problem %v: want a positioned file problem", p)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse("c.yml", []byte("version: 0.1\nstorage:\n  inmemory:\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Addr, Driver, Auth, Level, Fmt string
		MaxTags, MaxEntries            int
		Purge                          bool
		Durable                        bool
	}{cfg.HTTP.Addr, cfg.Driver(), cfg.AuthKind(), cfg.Log.Level, cfg.Log.Formatter, cfg.Tags.MaxTags, cfg.Catalog.MaxEntries,
		cfg.Storage.Maintenance.UploadPurging.IsEnabled(), cfg.Storage.Filesystem.IsDurable()}
	want := got
	want.Addr, want.Driver, want.Auth, want.Level, want.Fmt = ":5000", "inmemory", "", "info", "text"
	want.MaxTags, want.MaxEntries, want.Purge, want.Durable = 1000, 1000, true, true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestParseProblems(t *testing.T) {
	dir := files(t, "cert.pem", "key.pem", "htpasswd")
	tests := []struct {
		name string
		yaml string
		want []string // substrings, one per expected problem, in order
	}{
		{"no storage", "version: 0.1\n", []string{"no storage driver"}},
		{"two drivers", "version: 0.1\nstorage:\n  inmemory:\n  filesystem:\n    rootdirectory: /x\n", []string{"more than one storage driver"}},
		{"missing version", "storage:\n  inmemory:\n", []string{"version is missing"}},
		{"unknown key", "version: 0.1\nstorage:\n  filesystem:\n    rootdir: /x\n", []string{`unknown key "storage.filesystem.rootdir"`}},
		{"endpoint incomplete", "version: 0.1\nstorage: {filesystem: {rootdirectory: /x}}\nnotifications:\n  endpoints:\n    - disabled: false\n", []string{"name is required", "url is required"}},
		{"endpoint bad values", "version: 0.1\nstorage: {filesystem: {rootdirectory: /x}}\nnotifications:\n  endpoints:\n    - name: a\n      url: ftp://x/\n      timeout: -1s\n      threshold: -1\n      ignore: {actions: [push, fetch]}\n    - name: a\n      url: http://b/\n",
			[]string{"notification url \"ftp://x/\"", "timeout must not be negative", "threshold must not be negative", `ignored action "fetch"`, "used twice"}},
		{"endpoint unknown key", "version: 0.1\nstorage: {filesystem: {rootdirectory: /x}}\nnotifications:\n  endpoints:\n    - name: a\n      url: http://b/\n      retries: 3\n", []string{`unknown key "notifications.endpoints.0.retries"`}},
		{"queuedir needed for s3", "version: 0.1\nstorage:\n  s3: {region: r, bucket: b}\nnotifications:\n  endpoints:\n    - {name: a, url: http://b/}\n", []string{"queuedir is required with s3"}},
		{"queuedir relative", "version: 0.1\nstorage: {inmemory: {}}\nnotifications:\n  queuedir: q\n  endpoints:\n    - {name: a, url: http://b/}\n", []string{"must be an absolute path"}},
		{"health incomplete", "version: 0.1\nstorage: {inmemory: {}}\nhealth:\n  file: [{interval: 1s}]\n  http: [{uri: 'x'}, {uri: 'http://a/', statuscode: 999, timeout: -1s}]\n  tcp: [{addr: nope}, {}]\n",
			[]string{"file is required", "not an http(s) URL", "not an HTTP status", "timeout must not be negative", "not host:port", "addr is required"}},
		{"refused registry middleware", "version: 0.1\nstorage: {inmemory: {}}\nmiddleware:\n  registry:\n    - name: x\n", []string{"registry middlewares are not supported"}},
		{"refused repository middleware", "version: 0.1\nstorage: {inmemory: {}}\nmiddleware:\n  repository: []\n", []string{"repository middlewares are not supported"}},
		{"refused cloudfront", "version: 0.1\nstorage: {inmemory: {}}\nmiddleware:\n  storage:\n    - name: cloudfront\n      options: {baseurl: https://x.cloudfront.net/, privatekey: /k}\n", []string{"CloudFront"}},
		{"redirect bad", "version: 0.1\nstorage: {inmemory: {}}\nmiddleware:\n  storage:\n    - name: redirect\n      options: {baseurl: cdn.example.com, duration: 1h}\n    - name: magic\n",
			[]string{"not an http(s) URL", `unknown redirect option "duration"`, `unknown storage middleware "magic"`}},
		{"redirect without baseurl", "version: 0.1\nstorage: {inmemory: {}}\nmiddleware:\n  storage:\n    - name: redirect\n", []string{"needs options.baseurl"}},
		{"proxy empty", "version: 0.1\nstorage: {inmemory: {}}\nproxy:\n", []string{"needs remoteurl"}},
		{"proxy url not absolute", "version: 0.1\nstorage: {inmemory: {}}\nproxy: {remoteurl: registry-1.docker.io}\n", []string{"not an absolute http(s) URL"}},
		{"proxy url with path", "version: 0.1\nstorage: {inmemory: {}}\nproxy: {remoteurl: 'https://r.example/v2/'}\n", []string{"without a path"}},
		{"proxy username only", "version: 0.1\nstorage: {inmemory: {}}\nproxy: {remoteurl: 'https://r.example', username: u}\n", []string{"both username and password"}},
		{"proxy exec refused", "version: 0.1\nstorage: {inmemory: {}}\nproxy: {remoteurl: 'https://r.example', exec: {command: x}}\n", []string{"credential helpers"}},
		{"proxy bad ttl", "version: 0.1\nstorage: {inmemory: {}}\nproxy: {remoteurl: 'https://r.example', ttl: 7days}\n", []string{"7days"}},
		{"proxy both forms", "version: 0.1\nstorage: {inmemory: {}}\nproxy:\n  remoteurl: https://r.example\n  upstreams: [{prefix: a, remoteurl: 'https://a.example'}]\n", []string{"both remoteurl"}},
		{"proxy upstream problems", "version: 0.1\nstorage: {inmemory: {}}\nproxy:\n  upstreams:\n  - {remoteurl: 'https://a.example'}\n  - {prefix: Docker.IO, remoteurl: 'https://b.example'}\n  - {prefix: d, remoteurl: 'https://c.example'}\n  - {prefix: d}\n  - {prefix: d/x, remoteurl: 'https://e.example'}\n",
			[]string{"proxy.upstreams.0.prefix is required", `"Docker.IO" is not a repository name`, "proxy.upstreams.3.remoteurl is required", `also the prefix of proxy.upstreams.2`, `prefix "d/x" lies under the prefix "d"`, `prefix "d/x" lies under the prefix "d"`}},
		{"proxy credentials at the top with upstreams", "version: 0.1\nstorage: {inmemory: {}}\nproxy:\n  username: u\n  password: p\n  upstreams: [{prefix: a, remoteurl: 'https://a.example'}]\n", []string{"belong in each upstreams entry"}},
		{"proxy bad maxsize", "version: 0.1\nstorage: {inmemory: {}}\nproxy: {remoteurl: 'https://r.example', maxsize: 12 parsecs}\n", []string{"is not a size"}},
		{"refused silly", "version: 0.1\nstorage: {inmemory: {}}\nauth:\n  silly: {realm: x}\n", []string{"silly"}},
		{"bad duration", "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      age: 7days\n", []string{"7days"}},
		{"bad bool", "version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: maybe\n", []string{"true or false"}},
		{"duplicate key", "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: :1\n  addr: :2\n", []string{"duplicate key"}},
		{"small maxthreads", "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n    maxthreads: 5\n", []string{"minimum is 25"}},
		{"s3 missing region and bucket", "version: 0.1\nstorage:\n  s3:\n    accesskey: a\n    secretkey: b\n", []string{"region is required", "bucket is required"}},
		{"s3 small chunks", "version: 0.1\nstorage:\n  s3:\n    region: r\n    bucket: b\n    chunksize: 1024\n", []string{"at least 5 MiB"}},
		{"s3 bad endpoint", "version: 0.1\nstorage:\n  s3:\n    region: r\n    bucket: b\n    regionendpoint: minio:9000\n", []string{"not an http(s) URL"}},
		{"s3 timeouts out of bounds", "version: 0.1\nstorage:\n  s3:\n    region: r\n    bucket: b\n    timeouts: {dial: 10ms, tlshandshake: -1s, responseheader: 2h, io: 1s}\n",
			[]string{"storage.s3.timeouts.dial is 10ms; it must be between 1s and 1h0m0s", "storage.s3.timeouts.tlshandshake is -1s", "storage.s3.timeouts.responseheader is 2h0m0s"}},
		{"s3 timeouts bad duration", "version: 0.1\nstorage:\n  s3:\n    region: r\n    bucket: b\n    timeouts: {io: 2minutes}\n", []string{"2minutes"}},
		{"s3 timeouts unknown key", "version: 0.1\nstorage:\n  s3:\n    region: r\n    bucket: b\n    timeouts: {read: 2s}\n", []string{"read"}},
		{"tls half", "version: 0.1\nstorage: {inmemory: {}}\nhttp:\n  tls:\n    certificate: " + dir + "/cert.pem\n", []string{"both certificate and key"}},
		{"tls version", "version: 0.1\nstorage: {inmemory: {}}\nhttp:\n  tls:\n    certificate: " + dir + "/cert.pem\n    key: " + dir + "/key.pem\n    minimumtls: tls1.5\n", []string{"tls1.5"}},
		{"cipher", "version: 0.1\nstorage: {inmemory: {}}\nhttp:\n  tls:\n    certificate: " + dir + "/cert.pem\n    key: " + dir + "/key.pem\n    ciphersuites: [TLS_RSA_WITH_RC4_128_SHA]\n", []string{"RC4"}},
		{"host not url", "version: 0.1\nstorage: {inmemory: {}}\nhttp:\n  host: registry.example.com\n", []string{"not an absolute URL"}},
		{"token incomplete", "version: 0.1\nstorage: {inmemory: {}}\nauth:\n  token:\n    realm: https://a/auth\n", []string{"service is required", "issuer is required", "rootcertbundle or jwks"}},
		{"two auths", "version: 0.1\nstorage: {inmemory: {}}\nauth:\n  htpasswd: {realm: r, path: " + dir + "/htpasswd}\n  none:\n", []string{"more than one access controller"}},
		{"htpasswd missing file", "version: 0.1\nstorage: {inmemory: {}}\nauth:\n  htpasswd: {realm: r, path: " + dir + "/nope}\n", []string{"cannot read"}},
		{"redis both forms", "version: 0.1\nstorage: {inmemory: {}}\nredis:\n  addr: a:1\n  addrs: [b:1]\n", []string{"both addr"}},
		{"redis pool both forms", "version: 0.1\nstorage: {inmemory: {}}\nredis:\n  addrs: [a:1]\n  pool: {maxidle: 1, maxactive: 2, idletimeout: 1s}\n  maxidleconns: 1\n  poolsize: 2\n  connmaxidletime: 1s\n",
			[]string{"redis.pool.maxidle (registry 2 form) and redis.maxidleconns", "redis.pool.maxactive (registry 2 form) and redis.poolsize", "redis.pool.idletimeout (registry 2 form) and redis.connmaxidletime"}},
		{"redis negative timeout", "version: 0.1\nstorage: {inmemory: {}}\nredis:\n  addrs: [a:1]\n  readtimeout: -1s\n", []string{"redis durations"}},
		{"redis cache without redis", "version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: redis\n", []string{"no addr or addrs"}},
		{"bad cache", "version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: memcached\n", []string{"memcached"}},
		{"bad regex", "version: 0.1\nstorage: {inmemory: {}}\nvalidation:\n  manifests:\n    urls:\n      allow: ['(']\n", []string{"invalid regular expression"}},
		{"platform list empty", "version: 0.1\nstorage: {inmemory: {}}\nvalidation:\n  manifests:\n    indexes:\n      platforms: list\n", []string{"platformlist is empty"}},
		{"negative maxtags", "version: 0.1\nstorage: {inmemory: {}}\ntags:\n  maxtags: -1\n", []string{"maxtags must not be negative"}},
		{"log level", "version: 0.1\nstorage: {inmemory: {}}\nlog:\n  level: loud\n", []string{"loud"}},
		{"prometheus without debug", "version: 0.1\nstorage: {inmemory: {}}\nhttp:\n  debug:\n    prometheus:\n      enabled: true\n", []string{"needs http.debug.addr"}},
		{"hmac refused", "version: 0.1\nstorage: {inmemory: {}}\nauth:\n  token:\n    realm: https://a/auth\n    service: s\n    issuer: i\n    jwks: " + dir + "/cert.pem\n    signingalgorithms: [RS256, HS256]\n", []string{"HS256"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a YAML mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yml", []byte(tt.yaml), nil)
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err = %v, want Problems", err)
			}
			if len(ps) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tt.want), ps)
			}
			for i, w := range tt.want {
				if !strings.Contains(ps[i].String(), w) {
					t.Errorf("problem %d = %q, want it to mention %q", i, ps[i], w)
				}
				if ps[i].File != "c.yml" {
					t.Errorf("problem %d file = %q", i, ps[i].File)
				}
			}
		})
	}
}

func TestNotificationsHealthMiddleware(t *testing.T) {
	yml := `version: 0.1
storage:
  filesystem:
    rootdirectory: /data
notifications:
  events:
    includereferences: true
  endpoints:
    - name: hook
      url: https://hooks.example.com/registry
      headers:
        Authorization: [Bearer s3cret]
      ignoredmediatypes: [application/octet-stream]
      ignore:
        actions: [pull]
    - name: off
      disabled: true
      url: http://127.0.0.1:1/
      timeout: 3s
      threshold: 2
      backoff: 5s
      queuesize: 10
health:
  file:
    - file: /tmp/drain
  http:
    - uri: http://db.example.com/health
      headers: {X-Probe: [yes]}
  tcp:
    - addr: db.example.com:5432
      interval: 3s
middleware:
  storage:
    - name: redirect
      options:
        baseurl: https://cdn.example.com/registry
`
	cfg, err := Parse("c.yml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notifications
	if n.QueueDir != "/data/gatehouse/notifications" || !n.Events.IncludeReferences || len(n.Endpoints) != 2 {
		t.Errorf("notifications = %+v", n)
	}
	e := n.Endpoints[0]
	got := []any{e.Timeout, e.Threshold, e.Backoff, e.QueueSize, e.Headers["Authorization"][0].Reveal(), e.Ignore.Actions, e.IgnoredMediaTypes}
	want := []any{time.Second, 10, time.Second, DefaultQueueSize, "Bearer s3cret", []string{"pull"}, []string{"application/octet-stream"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("endpoint defaults (-want +got):\n%s", diff)
	}
	if off := n.Endpoints[1]; off.Timeout != 3*time.Second || off.Threshold != 2 || off.Backoff != 5*time.Second || off.QueueSize != 10 {
		t.Errorf("explicit endpoint = %+v", off)
	}
	h := cfg.Health
	gotH := []any{h.File[0].Interval, h.HTTP[0].Interval, h.HTTP[0].Timeout, h.HTTP[0].StatusCode, h.HTTP[0].Threshold, h.TCP[0].Interval, h.TCP[0].Timeout, h.TCP[0].Threshold}
	wantH := []any{10 * time.Second, 10 * time.Second, 10 * time.Second, 200, 1, 3 * time.Second, 3 * time.Second, 1}
	if diff := cmp.Diff(wantH, gotH); diff != "" {
		t.Errorf("health defaults (-want +got):\n%s", diff)
	}
	if got := cfg.RedirectBaseURL(); got != "https://cdn.example.com/registry" {
		t.Errorf("redirect base = %q", got)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data",
		"REGISTRY_HTTP_ADDR=127.0.0.1:6000",
		"REGISTRY_HTTP_SECRET=s3cret",
		"REGISTRY_STORAGE_DELETE_ENABLED=true",
		"REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE=2h",
		"REGISTRY_AUTH_TOKEN_REALM=https://auth.example.com/auth",
		"REGISTRY_NO_SUCH_THING=1",
		"PATH=/bin",
	}
	yml := "version: 0.1\nauth:\n  token:\n    service: s\n    issuer: i\n    jwks: " + files(t, "jwks.json") + "/jwks.json\n"
	cfg, err := Parse("c.yml", []byte(yml), env)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.Storage.Filesystem.RootDirectory, cfg.HTTP.Addr, cfg.HTTP.Secret.Reveal(), cfg.Storage.Delete.Enabled,
		cfg.Storage.Maintenance.UploadPurging.Age, cfg.Auth.Token.Realm, cfg.Auth.Token.Service}
	want := []any{"/data", "127.0.0.1:6000", "s3cret", true, 2 * time.Hour, "https://auth.example.com/auth", "s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("overrides (-want +got):\n%s", diff)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "REGISTRY_NO_SUCH_THING") {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

func TestEnvOverrideBadValue(t *testing.T) {
	tests := []struct{ env, want string }{
		{"REGISTRY_STORAGE_DELETE_ENABLED=yesplease", "true or false"},
		{"REGISTRY_CATALOG_MAXENTRIES=lots", "whole number"},
		{"REGISTRY_HTTP_DRAINTIMEOUT=soon", "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Parse("c.yml", []byte("version: 0.1\nstorage: {inmemory: {}}\n"), []string{tt.env})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "environment") {
				t.Errorf("err = %v, want an environment problem mentioning %q", err, tt.want)
			}
		})
	}
}

func TestEnvSecretNotShown(t *testing.T) {
	_, err := Parse("c.yml", []byte("version: 0.1\nstorage: {inmemory: {}}\nredis:\n  addr: a:1\n"), []string{"REGISTRY_REDIS_DB=hunter2"})
	if err == nil {
		t.Fatal("want a problem")
	}
	// db is not secret, so the value is shown; secrets are masked.
	_, err = Parse("c.yml", []byte("version: 0.1\nstorage: {inmemory: {}}\n"), []string{"REGISTRY_HTTP_SECRET=hunter2"})
	if err != nil {
		t.Fatal(err)
	}
}

func TestExampleConfigParses(t *testing.T) {
	path := filepath.Join("..", "..", "..", "docs", "examples", "registry-config.yml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The example points at files under /etc/gatehouse; swap in real ones.
	dir := files(t, "registry.crt", "registry.key", "token-ca.crt")
	data = []byte(strings.ReplaceAll(string(data), "/etc/gatehouse/", dir+"/"))
	cfg, err := Parse(path, data, nil)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if cfg.Driver() != "filesystem" || cfg.AuthKind() != "token" || len(cfg.Warnings) != 0 {
		t.Errorf("driver %q auth %q warnings %q", cfg.Driver(), cfg.AuthKind(), cfg.Warnings)
	}
}

func TestProxyForms(t *testing.T) {
	week, hour := 168*time.Hour, time.Hour
	tests := []struct {
		name string
		yaml string
		env  []string
		want []Upstream
		max  ByteSize
	}{
		{"distribution form, default ttl", "proxy:\n  remoteurl: https://registry-1.docker.io\n  username: u\n  password: p\n", nil,
			[]Upstream{{RemoteURL: "https://registry-1.docker.io", Username: "u", Password: "p", TTL: &week}}, 0},
		{"ttl 0 kept", "proxy:\n  remoteurl: https://r.example\n  ttl: 0s\n", nil,
			[]Upstream{{RemoteURL: "https://r.example", TTL: new(time.Duration)}}, 0},
		{"environment", "", []string{"REGISTRY_PROXY_REMOTEURL=https://env.example", "REGISTRY_PROXY_USERNAME=eu", "REGISTRY_PROXY_PASSWORD=ep", "REGISTRY_PROXY_TTL=1h", "REGISTRY_PROXY_MAXSIZE=2GiB"},
			[]Upstream{{RemoteURL: "https://env.example", Username: "eu", Password: "ep", TTL: &hour}}, 2 << 30},
		{"upstreams inherit ttl", "proxy:\n  ttl: 1h\n  maxsize: 500MB\n  upstreams:\n  - {prefix: docker.io, remoteurl: 'https://registry-1.docker.io'}\n  - {prefix: ghcr.io, remoteurl: 'https://ghcr.io', ttl: 168h}\n", nil,
			[]Upstream{{Prefix: "docker.io", RemoteURL: "https://registry-1.docker.io", TTL: &hour}, {Prefix: "ghcr.io", RemoteURL: "https://ghcr.io", TTL: &week}}, 500e6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yml", []byte("version: 0.1\nstorage: {inmemory: {}}\n"+tt.yaml), tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cfg.Proxy.List()); diff != "" {
				t.Errorf("upstreams (-want +got):\n%s", diff)
			}
			if cfg.Proxy.MaxSize != tt.max {
				t.Errorf("maxsize = %d, want %d", cfg.Proxy.MaxSize, tt.max)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"0": 0, "1024": 1024, "1KiB": 1024, "3 MiB": 3 << 20, "2GB": 2e9, "1TiB": 1 << 40, "7B": 7} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5GB", "GB", "1PB", "99999999999TiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/seed-config.yml")
	f.Add(seed, "REGISTRY_HTTP_ADDR=:1")
	f.Add([]byte("version: 0.1\nstorage: {inmemory: {}}\n"), "REGISTRY_STORAGE_DELETE_ENABLED=true")
	f.Add([]byte("storage: [1, 2]\nhttp: 3\n"), "REGISTRY_HTTP_TLS_CERTIFICATE=x")
	f.Add([]byte("a: &x {b: *x}\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		cfg, err := Parse("fuzz.yml", data, []string{env})
		if cfg == nil {
			t.Fatalf("nil config (err %v)", err)
		}
	})
}
