package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis is a redis-server started for a test: 127.0.0.1 on a free port,
// no persistence, stopped when the test ends.
type Redis struct {
	Addr     string // host:port
	Password string // requirepass; "" for none
	Dir      string // working directory, config and log
	// With WithRedisTLS: the CA that signed the server's certificate, and
	// a certificate and key (signed by that CA) that clients present; the
	// server speaks only TLS and requires a client certificate.
	CAFile, CertFile, KeyFile string

	t      testing.TB
	bin    string
	conf   string
	proc   *Process
	client *goredis.Client
}

// RedisOption changes how StartRedis starts the server.
type RedisOption func(*Redis)

// WithRedisPassword makes the server require pw (requirepass).
func WithRedisPassword(pw string) RedisOption { return func(r *Redis) { r.Password = pw } }

// WithRedisTLS makes the server speak TLS only (no plain port) with a
// certificate of a fresh test CA for 127.0.0.1, and require clients to
// present a certificate of that CA (Redis.CertFile, Redis.KeyFile).
func WithRedisTLS() RedisOption {
	return func(r *Redis) {
		r.CAFile = filepath.Join(r.Dir, "ca.pem")
		r.CertFile = filepath.Join(r.Dir, "cert.pem")
		r.KeyFile = filepath.Join(r.Dir, "key.pem")
	}
}

// StartRedis runs redis-server on a free 127.0.0.1 port without
// persistence (save "", appendonly no) in a temp dir and waits until it
// answers PING. A missing redis-server fails the test.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	r := &Redis{Dir: t.TempDir(), t: t, bin: Tool(t, "redis-server")}
	for _, o := range opts {
		o(r)
	}
	port := FreePort(t)
	r.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf("bind 127.0.0.1\nport %d\nsave \"\"\nappendonly no\ndir %s\nlogfile \"\"\ndaemonize no\nprotected-mode yes\n", port, r.Dir)
	var tlsConf *tls.Config
	if r.CAFile != "" {
		if err := writeTestCA(r.CAFile, r.CertFile, r.KeyFile); err != nil {
			t.Fatalf("redis TLS certificates: %v", err)
		}
		conf = fmt.Sprintf("bind 127.0.0.1\nport 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients yes\nsave \"\"\nappendonly no\ndir %s\nlogfile \"\"\ndaemonize no\nprotected-mode yes\n",
			port, r.CertFile, r.KeyFile, r.CAFile, r.Dir)
		tlsConf = redisClientTLS(t, r.CAFile, r.CertFile, r.KeyFile)
	}
	if r.Password != "" {
		conf += fmt.Sprintf("requirepass %q\n", r.Password)
	}
	r.conf = filepath.Join(r.Dir, "redis.conf")
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.client = goredis.NewClient(&goredis.Options{Addr: r.Addr, Password: r.Password, MaxRetries: -1, TLSConfig: tlsConf,
		DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = r.client.Close() })
	r.Start()
	return r
}

// Start starts the server (again, after Stop) on the same port, empty.
func (r *Redis) Start() {
	r.t.Helper()
	r.proc = Start(r.t, nil, r.bin, r.conf)
	p := r.proc
	// A paused server ignores SIGTERM: resume it before it is stopped.
	r.t.Cleanup(func() { _ = p.Signal(syscall.SIGCONT) })
	p.waitFor(r.t, "redis PING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return r.client.Ping(ctx).Err() == nil
	})
}

// Stop stops the server; its data is gone (no persistence).
func (r *Redis) Stop() {
	_ = r.proc.Signal(syscall.SIGCONT)
	r.proc.Stop()
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but nothing answers, which is how a stalled Redis looks.
func (r *Redis) Pause() {
	r.t.Helper()
	if err := r.proc.Signal(syscall.SIGSTOP); err != nil {
		r.t.Fatalf("pause redis: %v", err)
	}
}

// Resume undoes Pause.
func (r *Redis) Resume() {
	r.t.Helper()
	if err := r.proc.Signal(syscall.SIGCONT); err != nil {
		r.t.Fatalf("resume redis: %v", err)
	}
}

// Client is a client of the server (with the password), closed when the
// test ends.
func (r *Redis) Client() *goredis.Client { return r.client }

// Keys returns the keys matching pattern, failing the test on error.
func (r *Redis) Keys(pattern string) []string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := r.client.Keys(ctx, pattern).Result()
	if err != nil {
		r.t.Fatalf("redis KEYS %s: %v", pattern, err)
	}
	return keys
}

// FlushAll empties the server, failing the test on error.
func (r *Redis) FlushAll() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.client.FlushAll(ctx).Err(); err != nil {
		r.t.Fatalf("redis FLUSHALL: %v", err)
	}
}

// Log returns the server's log so far.
func (r *Redis) Log() string { return r.proc.Log() }

// redisClientTLS is the test's own client configuration for a server
// started WithRedisTLS: it trusts caFile and presents certFile.
func redisClientTLS(t testing.TB, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", caFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}
