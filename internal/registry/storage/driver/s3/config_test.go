package s3

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

func TestValidate(t *testing.T) {
	ok := Config{Region: "us-east-1", Bucket: "registry"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"everything missing", func(c *Config) { *c = Config{} }, []string{"region is required", "bucket is required"}},
		{"half credentials", func(c *Config) { c.AccessKey = "a" }, []string{"accesskey and secretkey go together"}},
		{"small chunks", func(c *Config) { c.ChunkSize = 1 << 20 }, []string{"chunksize 1048576"}},
		{"huge chunks", func(c *Config) { c.ChunkSize = 6 << 30 }, []string{"chunksize"}},
		{"small copy chunks", func(c *Config) { c.MultipartCopyChunkSize = 1 }, []string{"multipartcopychunksize 1"}},
		{"negative concurrency", func(c *Config) { c.MultipartCopyMaxConcurrency = -1 }, []string{"multipartcopymaxconcurrency"}},
		{"endpoint", func(c *Config) { c.RegionEndpoint = "minio:9000" }, []string{"regionendpoint", "not an http(s) URL"}},
		{"endpoint with path", func(c *Config) { c.RedirectEndpoint = "https://cdn/x" }, []string{"redirectendpoint", "no path"}},
		{"storage class", func(c *Config) { c.StorageClass = "COLD" }, []string{`storageclass "COLD"`}},
		{"acl", func(c *Config) { c.ObjectACL = "everyone" }, []string{`objectacl "everyone"`}},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, []string{`loglevel "loud"`}},
		{"keyid without encrypt", func(c *Config) { c.KeyID = "k" }, []string{"keyid is set but encrypt is false"}},
		{"root", func(c *Config) { c.RootDirectory = "/a b" }, []string{"rootdirectory"}},
		{"short timeouts", func(c *Config) { c.Timeouts = Timeouts{Dial: time.Millisecond, IO: 500 * time.Millisecond} }, []string{"timeouts.dial 1ms", "timeouts.io 500ms"}},
		{"long timeout", func(c *Config) { c.Timeouts.ResponseHeader = 2 * time.Hour }, []string{"timeouts.responseheader 2h0m0s is outside 1s .. 1h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.SecretKey = secret.Secret("")
			tt.mod(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.ChunkSize != 10<<20 || c.MultipartCopyChunkSize != 32<<20 || c.MultipartCopyThresholdSize != 32<<20 ||
		c.MultipartCopyMaxConcurrency != 100 || c.StorageClass != "STANDARD" || c.ObjectACL != "private" || c.LogLevel != "off" {
		t.Errorf("defaults: %+v", c)
	}
	to := c.Timeouts
	if to.Dial <= 0 || to.TLSHandshake <= 0 || to.ResponseHeader <= 0 || to.IO <= 0 {
		t.Errorf("timeouts without defaults: %+v", to)
	}
}

func TestTransportCABundle(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", t.TempDir()+"/missing.pem")
	if _, err := newTransport(Config{}.withDefaults()); err == nil || !strings.Contains(err.Error(), "AWS_CA_BUNDLE") {
		t.Errorf("unreadable AWS_CA_BUNDLE: %v", err)
	}
	t.Setenv("AWS_CA_BUNDLE", "")
	tr, err := newTransport(Config{}.withDefaults())
	if err != nil || tr.ResponseHeaderTimeout <= 0 || tr.TLSHandshakeTimeout <= 0 {
		t.Errorf("transport: %v", err)
	}
}
