package testenv

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a MinIO server started for a test, with one bucket.
type MinIO struct {
	*Process
	Addr      string // host:port on 127.0.0.1
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string
	DataDir   string

	t    testing.TB
	bin  string
	env  []string
	args []string
}

// Endpoint returns the server's URL (http).
func (m *MinIO) Endpoint() string { return "http://" + m.Addr }

// Client returns a minio-go client with the root credentials.
func (m *MinIO) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(m.Addr, &minio.Options{
		Creds:  credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Region: m.Region,
		// The default transport: no CA bundle from the environment is
		// needed for plain http on loopback.
		Transport: &http.Transport{ResponseHeaderTimeout: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewBucket creates another bucket.
func (m *MinIO) NewBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: m.Region}); err != nil {
		t.Fatalf("minio: create bucket %s: %v", name, err)
	}
}

// StartMinIO runs the MinIO server installed by scripts/install-deps.sh on
// a free port of 127.0.0.1 with a temp data dir, creates the bucket
// "registry" and stops the server when the test ends. A missing binary
// fails the test.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := Tool(t, "minio")
	dir := t.TempDir()
	m := &MinIO{
		Addr:      fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		AccessKey: "gatehouse-test",
		SecretKey: "gatehouse-test-secret",
		Region:    "us-east-1",
		Bucket:    "registry",
		DataDir:   filepath.Join(dir, "data"),
	}
	env := []string{
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_SITE_REGION=" + m.Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"HOME=" + dir,
	}
	m.t, m.bin, m.env = t, bin, env
	m.args = []string{"server", m.DataDir, "--quiet",
		"--address", m.Addr, "--console-address", fmt.Sprintf("127.0.0.1:%d", FreePort(t))}
	m.Process = Start(t, env, bin, m.args...)
	m.WaitHTTP(t, m.Endpoint()+"/minio/health/live")
	// The API answers before the server has initialised its drives:
	// retry creating the bucket until it works.
	client := m.Client(t)
	var err error
	m.waitFor(t, "bucket "+m.Bucket, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = client.MakeBucket(ctx, m.Bucket, minio.MakeBucketOptions{Region: m.Region})
		return err == nil
	})
	return m
}

// Restart starts the server again after Stop, on the same address and
// data (the bucket and its objects are kept), and waits until it serves
// the bucket.
func (m *MinIO) Restart() {
	m.t.Helper()
	m.Process = Start(m.t, m.env, m.bin, m.args...)
	m.WaitHTTP(m.t, m.Endpoint()+"/minio/health/ready")
	client := m.Client(m.t)
	m.waitFor(m.t, "bucket "+m.Bucket, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ok, err := client.BucketExists(ctx, m.Bucket)
		return err == nil && ok
	})
}
