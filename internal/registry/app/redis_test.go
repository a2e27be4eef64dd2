package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// TestRedisOptions maps both forms of the redis section, as written in a
// config file, onto go-redis options.
func TestRedisOptions(t *testing.T) {
	certs := redisTestCerts(t)
	tests := []struct {
		name string
		yml  string
		want goredis.UniversalOptions
		tls  bool // a TLS config is expected
		ca   bool // ... with its own root CAs
		cert bool // ... and a client certificate
	}{
		{
			name: "registry 2 form (the seed's)",
			yml: `  addr: registryv2-redis:6379
  password: s3cret
  db: 2
  dialtimeout: 10ms
  readtimeout: 20ms
  writetimeout: 30ms
  pool:
    maxidle: 16
    maxactive: 64
    idletimeout: 300s
`,
			want: goredis.UniversalOptions{Addrs: []string{"registryv2-redis:6379"}, Password: "s3cret", DB: 2,
				DialTimeout: 10 * time.Millisecond, ReadTimeout: 20 * time.Millisecond, WriteTimeout: 30 * time.Millisecond,
				PoolTimeout: 20 * time.Millisecond, PoolSize: 64, MaxActiveConns: 64, MaxIdleConns: 16,
				ConnMaxIdleTime: 300 * time.Second, MaxRetries: 1},
		},
		{
			name: "registry 2 form with tls.enabled",
			yml:  "  addr: r:6380\n  tls:\n    enabled: true\n",
			want: goredis.UniversalOptions{Addrs: []string{"r:6380"}, DialTimeout: defaultRedisDialTimeout,
				ReadTimeout: defaultRedisReadTimeout, WriteTimeout: defaultRedisWriteTimeout, PoolTimeout: defaultRedisReadTimeout, MaxRetries: 1},
			tls: true,
		},
		{
			name: "registry 3 form, one address",
			yml: fmt.Sprintf(`  addrs: [r1:6379]
  username: registry
  password: pw
  db: 1
  dialtimeout: 1s
  readtimeout: 2s
  writetimeout: 3s
  poolsize: 10
  maxidleconns: 5
  connmaxidletime: 1m
  tls:
    certificate: %s
    key: %s
    rootcas: [%s]
`, certs.cert, certs.key, certs.ca),
			want: goredis.UniversalOptions{Addrs: []string{"r1:6379"}, Username: "registry", Password: "pw", DB: 1,
				DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second, PoolTimeout: 2 * time.Second,
				PoolSize: 10, MaxIdleConns: 5, ConnMaxIdleTime: time.Minute, MaxRetries: 1},
			tls: true, ca: true, cert: true,
		},
		{
			name: "registry 3 form, several addresses, defaults",
			yml:  fmt.Sprintf("  addrs: [r1:6379, r2:6379, r3:6379]\n  tls:\n    rootcas: [%s]\n", certs.ca),
			want: goredis.UniversalOptions{Addrs: []string{"r1:6379", "r2:6379", "r3:6379"}, DialTimeout: defaultRedisDialTimeout,
				ReadTimeout: defaultRedisReadTimeout, WriteTimeout: defaultRedisWriteTimeout, PoolTimeout: defaultRedisReadTimeout, MaxRetries: 1},
			tls: true, ca: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := regconfig.Parse("config.yml", []byte("version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: redis\nredis:\n"+tt.yml), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := redisOptions(cfg.Redis)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(goredis.UniversalOptions{}, "TLSConfig")); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
			if (got.TLSConfig != nil) != tt.tls {
				t.Fatalf("TLS config = %v, want TLS %v", got.TLSConfig, tt.tls)
			}
			if got.TLSConfig == nil {
				return
			}
			if got.TLSConfig.MinVersion != tls.VersionTLS12 || got.TLSConfig.InsecureSkipVerify {
				t.Errorf("TLS min version %x, skip verify %v", got.TLSConfig.MinVersion, got.TLSConfig.InsecureSkipVerify)
			}
			if (got.TLSConfig.RootCAs != nil) != tt.ca {
				t.Errorf("root CAs set = %v, want %v", got.TLSConfig.RootCAs != nil, tt.ca)
			}
			if (len(got.TLSConfig.Certificates) == 1) != tt.cert {
				t.Errorf("client certificates = %d, want one: %v", len(got.TLSConfig.Certificates), tt.cert)
			}
		})
	}
	// One address makes a plain client, several a cluster client.
	for _, tt := range []struct {
		addrs []string
		want  string
	}{{[]string{"a:1"}, "*redis.Client"}, {[]string{"a:1", "b:1"}, "*redis.ClusterClient"}} {
		c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: tt.addrs})
		if got := fmt.Sprintf("%T", c); got != tt.want {
			t.Errorf("%v: client %s, want %s", tt.addrs, got, tt.want)
		}
		_ = c.Close()
	}
}

// TestRedisOptionsBadTLSFiles names the key whose file does not load.
func TestRedisOptionsBadTLSFiles(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		r    regconfig.Redis
		want string
	}{
		{regconfig.Redis{Addrs: []string{"a:1"}, TLS: regconfig.RedisTLS{RootCAs: []string{junk}}}, "redis.tls.rootcas"},
		{regconfig.Redis{Addrs: []string{"a:1"}, TLS: regconfig.RedisTLS{Certificate: junk, Key: junk}}, "redis.tls.certificate"},
	} {
		_, err := redisOptions(tt.r)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want one naming %s", err, tt.want)
		}
	}
}

type testCerts struct{ ca, cert, key string }

func redisTestCerts(t *testing.T) testCerts {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("redis test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := testCerts{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "client.pem"), key: filepath.Join(dir, "client.key")}
	if err := tlsutil.WriteCertPEM(c.ca, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteCertPEM(c.cert, leaf); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(c.key, key); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRedisUnreachable: a registry whose Redis does not answer starts,
// serves, stays healthy and says on /debug/health that Redis is
// unreachable; the password is in no log line.
func TestRedisUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debug := l.Addr().String()
	_ = l.Close()

	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	dir := t.TempDir()
	yml := fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: redis
http:
  addr: 127.0.0.1:0
  debug:
    addr: %s
    prometheus:
      enabled: true
redis:
  addr: %s
  password: hunter2-secret
  dialtimeout: 50ms
`, filepath.Join(dir, "data"), debug, dead)
	cfg, err := regconfig.Parse("config.yml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	base := a.URL()
	resp, err := http.Get("http://" + debug + "/debug/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var detail map[string]string
	if err := json.Unmarshal(body, &detail); err != nil {
		t.Fatalf("health body %q: %v", body, err)
	}
	if resp.StatusCode != http.StatusOK || detail["redis"] != "unreachable" {
		t.Errorf("health: %d %q, want 200 with redis unreachable", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/v2/a/blobs/sha256:" + strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("blob GET with redis down: %d, want 404 from storage", resp.StatusCode)
	}
	resp, err = http.Get("http://" + debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"gatehouse_registry_cache_redis_up 0", "gatehouse_registry_cache_redis_misses_total", `gatehouse_registry_cache_redis_errors_total{op="stat"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("the redis password is in the log:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "redis blob descriptor cache unreachable") {
		t.Errorf("no warning about redis in the log:\n%s", buf.String())
	}
}
