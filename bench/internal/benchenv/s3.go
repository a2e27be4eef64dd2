package benchenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a MinIO server started by StartMinIO: 127.0.0.1, a data dir of
// its own, its Prometheus metrics readable without a token.
type MinIO struct {
	*Process
	Addr      string // host:port
	AccessKey string
	SecretKey string
	Region    string
}

// Endpoint returns the server's URL.
func (m *MinIO) Endpoint() string { return "http://" + m.Addr }

// StartMinIO runs the minio program of the tools dir on a free port of
// 127.0.0.1 with its data and home under dir, waits until it serves, and
// creates the buckets.
func StartMinIO(ctx context.Context, dir string, buckets ...string) (*MinIO, error) {
	bin, err := Tool("minio")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cport, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	m := &MinIO{Addr: fmt.Sprintf("127.0.0.1:%d", port), AccessKey: "registrybench", SecretKey: "registrybench-secret", Region: "us-east-1"}
	env := []string{
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_SITE_REGION=" + m.Region,
		"MINIO_PROMETHEUS_AUTH_TYPE=public",
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"HOME=" + dir,
	}
	m.Process, err = Start("minio", filepath.Join(dir, "minio.log"), env, bin, "server", filepath.Join(dir, "data"), "--quiet",
		"--address", m.Addr, "--console-address", fmt.Sprintf("127.0.0.1:%d", cport))
	if err != nil {
		return nil, err
	}
	if err := m.WaitHTTP(ctx, m.Endpoint()+"/minio/health/ready", time.Minute); err != nil {
		m.Stop()
		return nil, err
	}
	c, err := minio.New(m.Addr, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), Region: m.Region})
	if err != nil {
		m.Stop()
		return nil, err
	}
	for _, b := range buckets {
		// The API can answer before the drives are ready: retry a while.
		deadline := time.Now().Add(30 * time.Second)
		for {
			err = c.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: m.Region})
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			m.Stop()
			return nil, fmt.Errorf("minio: create bucket %s: %w", b, err)
		}
	}
	return m, nil
}

// MinIOCounters are what MinIO has received and sent over the network as
// an S3 server (minio_api_requests_traffic_received_bytes and
// ..._sent_bytes of its metrics v3, which are current; v2's cluster
// figures lag by up to 10 s) and what it has written: the wchar of its
// /proc/PID/io, every byte passed to write(2) and the like, to sockets
// and files, server-side copies included.
type MinIOCounters struct {
	Received, Sent, WChar int64
}

// Written estimates the bytes MinIO wrote to its drives: all it wrote
// less what it sent to clients. (write_bytes of /proc/PID/io, the
// kernel's count of bytes bound for the disk, missed whole copies of
// 1 GiB objects in a trial run, most likely MinIO's O_DIRECT writes.)
func (c MinIOCounters) Written() int64 { return c.WChar - c.Sent }

// Sub returns c - o.
func (c MinIOCounters) Sub(o MinIOCounters) MinIOCounters {
	return MinIOCounters{Received: c.Received - o.Received, Sent: c.Sent - o.Sent, WChar: c.WChar - o.WChar}
}

// Counters reads the server's counters.
func (m *MinIO) Counters(ctx context.Context) (MinIOCounters, error) {
	var c MinIOCounters
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint()+"/minio/metrics/v3/api/requests", nil)
	if err != nil {
		return c, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return c, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("minio metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return c, err
	}
	// Before the first request the metrics are absent: nothing moved.
	if c.Received, _, err = PromCounter(bytes.NewReader(body), "minio_api_requests_traffic_received_bytes"); err != nil {
		return c, err
	}
	if c.Sent, _, err = PromCounter(bytes.NewReader(body), "minio_api_requests_traffic_sent_bytes"); err != nil {
		return c, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", m.PID()))
	if err != nil {
		return c, err
	}
	c.WChar, err = ProcIOField(string(b), "wchar")
	return c, err
}

// PromCounter sums the samples of the metric name in Prometheus text
// format (every label set), and tells whether there was one.
func PromCounter(r io.Reader, name string) (sum int64, found bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var total float64
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			return 0, false, fmt.Errorf("metric line %q without a value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric line %q: %w", line, err)
		}
		total += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, false, err
	}
	return int64(total), found, nil
}

// ProcIOField reads "name: N" from the text of /proc/PID/io.
func ProcIOField(text, name string) (int64, error) {
	for line := range strings.SplitSeq(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == name {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/io", name)
}

// Redis is a redis-server started by StartRedis.
type Redis struct {
	*Process
	Addr string
}

// StartRedis runs redis-server (from PATH or the tools dir) on a free
// port of 127.0.0.1 without persistence, its working dir dir, and waits
// until it answers PING.
func StartRedis(ctx context.Context, dir string) (*Redis, error) {
	bin, err := Tool("redis-server")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "redis.conf")
	text := fmt.Sprintf("bind 127.0.0.1\nport %d\nsave \"\"\nappendonly no\ndir %s\nlogfile \"\"\ndaemonize no\nprotected-mode yes\n", port, dir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	if r.Process, err = Start("redis-server", filepath.Join(dir, "redis.log"), nil, bin, conf); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = ping(ctx, r.Addr)
		if err == nil {
			return r, nil
		}
		if r.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			r.Stop()
			return nil, fmt.Errorf("redis-server did not answer PING: %w\n%s", err, r.Tail(2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping sends PING in Redis's inline protocol and expects +PONG.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New("answer " + strings.TrimSpace(line))
	}
	return nil
}
