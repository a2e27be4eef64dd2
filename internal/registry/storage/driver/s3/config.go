package s3

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Sizes and limits of S3 itself.
const (
	// MinChunkSize is the smallest part S3 accepts (except the last one).
	MinChunkSize = 5 << 20
	// MaxChunkSize is the largest single PUT (and part) S3 accepts.
	MaxChunkSize = 5 << 30
	// maxParts is the largest number of parts in a multipart upload.
	maxParts = 10000
)

// Defaults, as distribution's S3 driver has them.
const (
	DefaultChunkSize                   = 10 << 20
	DefaultMultipartCopyChunkSize      = 32 << 20
	DefaultMultipartCopyMaxConcurrency = 100
	DefaultMultipartCopyThresholdSize  = 32 << 20
	DefaultStorageClass                = "STANDARD"
	DefaultObjectACL                   = "private"
)

// Bounds of each of Timeouts: below a second a busy S3 fails healthy
// calls; above an hour a stall holds a request for longer than any client
// waits.
const (
	MinTimeout = time.Second
	MaxTimeout = time.Hour
)

// Timeouts bound every call to S3, so that a stalled server fails requests
// instead of hanging them. Zero fields take the defaults.
type Timeouts struct {
	Dial           time.Duration // TCP connect; default 10s
	TLSHandshake   time.Duration // default 10s
	ResponseHeader time.Duration // from the request sent to the response headers; default 60s
	// IO is the longest a connection may go without reading or writing a
	// byte while a call is in flight (a body that stops mid-way); default 2m.
	IO time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.Dial, 10*time.Second)
	def(&t.TLSHandshake, 10*time.Second)
	def(&t.ResponseHeader, 60*time.Second)
	def(&t.IO, 2*time.Minute)
	return t
}

// Config configures the driver. Its keys are those of distribution's
// storage.s3 section; zero values take distribution's defaults.
type Config struct {
	// AccessKey and SecretKey are static credentials. When both are empty
	// the AWS environment (AWS_ACCESS_KEY_ID, ...), the shared credentials
	// file and the instance's IAM role are tried in that order.
	AccessKey string
	SecretKey secret.Secret
	// Region is required (any value for MinIO).
	Region string
	// RegionEndpoint is an http(s) URL of an S3-compatible server; empty
	// means AWS. Its scheme decides between http and https.
	RegionEndpoint string
	// RedirectEndpoint, when set, is the scheme and host presigned URLs
	// handed to clients point at.
	RedirectEndpoint string
	// ForcePathStyle addresses buckets as host/bucket instead of
	// bucket.host (S3-compatible servers other than AWS always get path
	// style).
	ForcePathStyle bool
	Bucket         string
	// Encrypt asks for server-side encryption: SSE-KMS with KeyID when it
	// is set, else SSE-S3.
	Encrypt bool
	KeyID   string
	// Secure selects https for AWS endpoints (RegionEndpoint's scheme wins).
	Secure     bool
	SkipVerify bool
	// V4Auth selects signature version 4 (version 2 when false).
	V4Auth bool
	// ChunkSize is the size of the parts a writer stores, and the most it
	// buffers in memory.
	ChunkSize                   int64
	MultipartCopyChunkSize      int64
	MultipartCopyMaxConcurrency int
	MultipartCopyThresholdSize  int64
	// RootDirectory prefixes every key ("/reg" stores /x as reg/x).
	RootDirectory string
	// StorageClass of new objects; "NONE" sends none.
	StorageClass string
	// ObjectACL is the canned ACL of new objects.
	ObjectACL string
	// UserAgent replaces the User-Agent of S3 requests when set.
	UserAgent  string
	DualStack  bool
	Accelerate bool
	FIPS       bool
	// LogLevel "off" (default) or any of distribution's debug levels,
	// which log every S3 request (method, key, status, time; never
	// credentials or signatures) at debug level.
	LogLevel string
	// Logger receives the request log and warnings; nil discards them.
	Logger *slog.Logger
	// Timeouts bound the calls; zero means the defaults.
	Timeouts Timeouts
}

// Storage classes and canned ACLs S3 knows.
var (
	storageClasses = []string{"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE", "OUTPOSTS", "EXPRESS_ONEZONE", "NONE"}
	objectACLs     = []string{"private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"}
	logLevels      = []string{"off", "debug", "debugwithsigning", "debugwithhttpbody", "debugwithrequestretries", "debugwithrequesterrors", "debugwitheventstreambody"}
)

// withDefaults returns c with distribution's defaults in its zero fields.
func (c Config) withDefaults() Config {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.MultipartCopyChunkSize == 0 {
		c.MultipartCopyChunkSize = DefaultMultipartCopyChunkSize
	}
	if c.MultipartCopyMaxConcurrency == 0 {
		c.MultipartCopyMaxConcurrency = DefaultMultipartCopyMaxConcurrency
	}
	if c.MultipartCopyThresholdSize == 0 {
		c.MultipartCopyThresholdSize = DefaultMultipartCopyThresholdSize
	}
	if c.StorageClass == "" {
		c.StorageClass = DefaultStorageClass
	}
	if c.ObjectACL == "" {
		c.ObjectACL = DefaultObjectACL
	}
	if c.LogLevel == "" {
		c.LogLevel = "off"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Timeouts = c.Timeouts.withDefaults()
	return c
}

// Validate reports every problem with c at once (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Region == "" {
		add("region is required")
	}
	if c.Bucket == "" {
		add("bucket is required")
	}
	if (c.AccessKey == "") != c.SecretKey.IsEmpty() {
		add("accesskey and secretkey go together: set both, or neither for the AWS credential chain")
	}
	if c.ChunkSize < MinChunkSize || c.ChunkSize > MaxChunkSize {
		add("chunksize %d is outside %d (5 MiB) .. %d (5 GiB)", c.ChunkSize, MinChunkSize, int64(MaxChunkSize))
	}
	if c.MultipartCopyChunkSize < MinChunkSize || c.MultipartCopyChunkSize > MaxChunkSize {
		add("multipartcopychunksize %d is outside %d (5 MiB) .. %d (5 GiB)", c.MultipartCopyChunkSize, MinChunkSize, int64(MaxChunkSize))
	}
	if c.MultipartCopyMaxConcurrency < 1 {
		add("multipartcopymaxconcurrency must be at least 1")
	}
	if c.MultipartCopyThresholdSize < 0 || c.MultipartCopyThresholdSize > MaxChunkSize {
		add("multipartcopythresholdsize %d is outside 0 .. %d (5 GiB)", c.MultipartCopyThresholdSize, int64(MaxChunkSize))
	}
	for _, e := range []struct{ name, v string }{{"regionendpoint", c.RegionEndpoint}, {"redirectendpoint", c.RedirectEndpoint}} {
		if e.v == "" {
			continue
		}
		if _, _, err := parseEndpoint(e.v); err != nil {
			add("%s: %v", e.name, err)
		}
	}
	if !slices.Contains(storageClasses, c.StorageClass) {
		add("storageclass %q is none of %s", c.StorageClass, strings.Join(storageClasses, ", "))
	}
	if !slices.Contains(objectACLs, c.ObjectACL) {
		add("objectacl %q is none of %s", c.ObjectACL, strings.Join(objectACLs, ", "))
	}
	if !slices.Contains(logLevels, c.LogLevel) {
		add("loglevel %q is none of %s", c.LogLevel, strings.Join(logLevels, ", "))
	}
	if c.KeyID != "" && !c.Encrypt {
		add("keyid is set but encrypt is false: set encrypt: true for SSE-KMS")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dial", c.Timeouts.Dial}, {"tlshandshake", c.Timeouts.TLSHandshake}, {"responseheader", c.Timeouts.ResponseHeader}, {"io", c.Timeouts.IO}} {
		if d.v < MinTimeout || d.v > MaxTimeout {
			add("timeouts.%s %s is outside %s .. %s", d.key, d.v, MinTimeout, MaxTimeout)
		}
	}
	if _, err := rootPrefix(c.RootDirectory); err != nil {
		add("rootdirectory: %v", err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("s3 config: %w", errors.Join(errs...))
}

// parseEndpoint splits an http(s) URL into host and whether it is https.
func parseEndpoint(v string) (host string, secure bool, err error) {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, fmt.Errorf("%q is not an http(s) URL such as https://host:port", v)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("%q must be scheme://host[:port] only (no path, query or user)", v)
	}
	return u.Host, u.Scheme == "https", nil
}

// rootPrefix turns a root directory into the key prefix of the storage
// root: "" and "/" give "", "/reg/" and "reg" give "reg".
func rootPrefix(root string) (string, error) {
	r := strings.Trim(root, "/")
	if r == "" {
		return "", nil
	}
	if err := driver.ValidatePath(Name, "/"+r); err != nil {
		return "", fmt.Errorf("%q: use only A-Z a-z 0-9 . _ - and / between names", root)
	}
	return r, nil
}
