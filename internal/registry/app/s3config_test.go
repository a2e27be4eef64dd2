package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/s3"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestS3Config maps a storage.s3 section, with REGISTRY_STORAGE_S3_*
// overrides, to the driver's config.
func TestS3Config(t *testing.T) {
	yml := `version: 0.1
storage:
  s3:
    accesskey: AKIA
    secretkey: from-file
    region: eu-west-1
    bucket: images
    regionendpoint: http://127.0.0.1:9000
    rootdirectory: /reg
    chunksize: 6291456
    storageclass: STANDARD_IA
    timeouts:
      dial: 2s
      responseheader: 3s
`
	env := []string{
		"REGISTRY_STORAGE_S3_SECRETKEY=from-env",
		"REGISTRY_STORAGE_S3_BUCKET=other",
		"REGISTRY_STORAGE_S3_SECURE=false",
		"REGISTRY_STORAGE_S3_FORCEPATHSTYLE=true",
		"REGISTRY_STORAGE_S3_MULTIPARTCOPYMAXCONCURRENCY=4",
		"REGISTRY_STORAGE_S3_REDIRECTENDPOINT=https://cdn.example.com",
		"REGISTRY_STORAGE_S3_LOGLEVEL=debug",
		"REGISTRY_STORAGE_S3_TIMEOUTS_IO=4s",
	}
	cfg, err := regconfig.Parse("c.yml", []byte(yml), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %q", cfg.Warnings)
	}
	got := S3Config(cfg.Storage.S3, nil)
	want := s3.Config{
		AccessKey: "AKIA", SecretKey: secret.Secret("from-env"), Region: "eu-west-1", Bucket: "other",
		RegionEndpoint: "http://127.0.0.1:9000", RedirectEndpoint: "https://cdn.example.com",
		ForcePathStyle: true, Secure: false, V4Auth: true, ChunkSize: 6291456, MultipartCopyMaxConcurrency: 4,
		RootDirectory: "/reg", StorageClass: "STANDARD_IA", LogLevel: "debug",
		Timeouts: s3.Timeouts{Dial: 2 * time.Second, ResponseHeader: 3 * time.Second, IO: 4 * time.Second},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(s3.Config{}, "Logger")); diff != "" {
		t.Errorf("S3Config (-want +got):\n%s", diff)
	}
	if got.SecretKey.Reveal() != "from-env" {
		t.Errorf("secret key not taken from the environment")
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// secure and v4auth default to true when absent.
	if d := S3Config(&regconfig.S3{}, nil); !d.Secure || !d.V4Auth {
		t.Errorf("defaults: secure=%v v4auth=%v, want true", d.Secure, d.V4Auth)
	}
}

// TestOpenDriverS3 opens storage.s3 on a local stand-in that refuses every
// request: the registry must not start, and the error names the endpoint
// and bucket and not the secret.
func TestOpenDriverS3(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	yml := "version: 0.1\nstorage:\n  s3:\n    accesskey: a\n    secretkey: top-secret-value\n    region: us-east-1\n    bucket: images\n    forcepathstyle: true\n    regionendpoint: " + srv.URL + "\n"
	cfg, err := regconfig.Parse("c.yml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenDriver(cfg, nil)
	if err == nil {
		t.Fatal("OpenDriver succeeded against a server refusing access")
	}
	msg := err.Error()
	for _, want := range []string{srv.URL, `"images"`, "access refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "top-secret-value") {
		t.Errorf("error %q shows the secret", msg)
	}
}
