// Package regconfig reads distribution's registry config.yml (the format of
// registry:2 and registry:3) into typed structs. Loading is strict: unknown
// keys, duplicate keys, wrong types and invalid values are all reported at
// once with file:line and a suggested fix. REGISTRY_<SECTION>_<KEY>
// environment variables override scalar keys, as they do for distribution.
package regconfig

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// Config is a distribution config.yml.
type Config struct {
	Version string `yaml:"version"`
	Log     Log    `yaml:"log"`
	// LogLevel is the deprecated top-level form of log.level.
	LogLevel   string     `yaml:"loglevel"`
	Storage    Storage    `yaml:"storage"`
	HTTP       HTTP       `yaml:"http"`
	Redis      Redis      `yaml:"redis"`
	Auth       Auth       `yaml:"auth"`
	Validation Validation `yaml:"validation"`
	Catalog    Catalog    `yaml:"catalog"`
	Tags       Tags       `yaml:"tags"`
	Health     Health     `yaml:"health"`
	// Notifications sends webhook events for pushes, pulls, deletes and mounts.
	Notifications Notifications `yaml:"notifications"`
	Middleware    Middleware    `yaml:"middleware"`
	// Proxy makes the registry a pull-through cache; nil when absent.
	Proxy *Proxy `yaml:"proxy"`
	// Warnings lists deprecated keys in use and REGISTRY_* variables that
	// name no key. They do not stop the registry.
	Warnings []string `yaml:"-"`
	// File is where the config was read from.
	File string `yaml:"-"`
}

// Log configures logging.
type Log struct {
	Level     string            `yaml:"level"`     // error, warn, info (default), debug
	Formatter string            `yaml:"formatter"` // text (default) or json; logstash is read as json
	Fields    map[string]string `yaml:"fields"`    // added to every log line
	AccessLog AccessLog         `yaml:"accesslog"`
}

// AccessLog configures the per-request log line.
type AccessLog struct {
	Disabled bool `yaml:"disabled"`
}

// Storage configures where and how content is stored. Exactly one of
// Filesystem, InMemory and S3 is set.
type Storage struct {
	Filesystem  *Filesystem  `yaml:"filesystem"`
	InMemory    *InMemory    `yaml:"inmemory"`
	S3          *S3          `yaml:"s3"`
	Delete      Delete       `yaml:"delete"`
	Maintenance Maintenance  `yaml:"maintenance"`
	Cache       StorageCache `yaml:"cache"`
	Redirect    Redirect     `yaml:"redirect"`
	Tag         TagStorage   `yaml:"tag"`
}

// Filesystem is the local filesystem driver.
type Filesystem struct {
	RootDirectory string `yaml:"rootdirectory"` // default /var/lib/registry
	MaxThreads    int    `yaml:"maxthreads"`    // at least 25; default 100
	// Durable (a Gatehouse extension, default true) fsyncs blobs and links
	// before acknowledging a write. false is for benchmarks only.
	Durable *bool `yaml:"durable"`
}

// IsDurable reports whether writes are fsynced (the default).
func (f *Filesystem) IsDurable() bool { return f == nil || f.Durable == nil || *f.Durable }

// InMemory is the in-memory driver (tests only: content is lost on exit).
type InMemory struct{}

// S3 is the S3 driver. Every key distribution knows is read and checked.
type S3 struct {
	AccessKey                   string        `yaml:"accesskey"`
	SecretKey                   secret.Secret `yaml:"secretkey"`
	Region                      string        `yaml:"region"`
	RegionEndpoint              string        `yaml:"regionendpoint"`
	RedirectEndpoint            string        `yaml:"redirectendpoint"`
	ForcePathStyle              bool          `yaml:"forcepathstyle"`
	Bucket                      string        `yaml:"bucket"`
	Encrypt                     bool          `yaml:"encrypt"`
	KeyID                       string        `yaml:"keyid"`
	Secure                      *bool         `yaml:"secure"`
	SkipVerify                  bool          `yaml:"skipverify"`
	V4Auth                      *bool         `yaml:"v4auth"`
	ChunkSize                   int64         `yaml:"chunksize"`
	MultipartCopyChunkSize      int64         `yaml:"multipartcopychunksize"`
	MultipartCopyMaxConcurrency int           `yaml:"multipartcopymaxconcurrency"`
	MultipartCopyThresholdSize  int64         `yaml:"multipartcopythresholdsize"`
	RootDirectory               string        `yaml:"rootdirectory"`
	StorageClass                string        `yaml:"storageclass"`
	ObjectACL                   string        `yaml:"objectacl"`
	UserAgent                   string        `yaml:"useragent"`
	UseDualStack                bool          `yaml:"usedualstack"`
	Accelerate                  bool          `yaml:"accelerate"`
	UseFIPSEndpoint             bool          `yaml:"usefipsendpoint"`
	LogLevel                    string        `yaml:"loglevel"`
	// Timeouts bound every call to S3 (a Gatehouse extension;
	// distribution has no such keys).
	Timeouts S3Timeouts `yaml:"timeouts"`
}

// S3Timeouts bound the calls to S3 so that a stalled server fails
// requests instead of hanging them. Zero means the default.
type S3Timeouts struct {
	Dial           time.Duration `yaml:"dial"`           // TCP connect; default 10s
	TLSHandshake   time.Duration `yaml:"tlshandshake"`   // default 10s
	ResponseHeader time.Duration `yaml:"responseheader"` // request sent to response headers; default 60s
	// IO is the longest a connection to S3 may go without a byte read or
	// written while a call is in flight; default 2m.
	IO time.Duration `yaml:"io"`
}

// Delete enables DELETE of blobs and manifests.
type Delete struct {
	Enabled bool `yaml:"enabled"`
}

// Maintenance configures upload purging and read-only mode.
type Maintenance struct {
	UploadPurging UploadPurging `yaml:"uploadpurging"`
	ReadOnly      ReadOnly      `yaml:"readonly"`
}

// UploadPurging removes abandoned uploads older than Age every Interval.
type UploadPurging struct {
	Enabled  *bool         `yaml:"enabled"`  // default true
	Age      time.Duration `yaml:"age"`      // default 168h
	Interval time.Duration `yaml:"interval"` // default 24h
	DryRun   bool          `yaml:"dryrun"`
}

// IsEnabled reports whether purging runs (the default).
func (u UploadPurging) IsEnabled() bool { return u.Enabled == nil || *u.Enabled }

// ReadOnly refuses every write when Enabled.
type ReadOnly struct {
	Enabled bool `yaml:"enabled"`
}

// StorageCache configures the blob descriptor cache.
type StorageCache struct {
	BlobDescriptor     string `yaml:"blobdescriptor"` // inmemory or redis
	BlobDescriptorSize *int   `yaml:"blobdescriptorsize"`
	LayerInfo          string `yaml:"layerinfo"` // deprecated name of blobdescriptor
}

// Redirect configures redirects to the storage backend.
type Redirect struct {
	Disable bool `yaml:"disable"`
}

// TagStorage tunes tag lookups.
type TagStorage struct {
	ConcurrencyLimit int `yaml:"concurrencylimit"`
}

// HTTP configures the registry's listener.
type HTTP struct {
	Addr         string              `yaml:"addr"`
	Net          string              `yaml:"net"` // tcp (default) or unix
	Prefix       string              `yaml:"prefix"`
	Host         string              `yaml:"host"`
	Secret       secret.Secret       `yaml:"secret"`
	RelativeURLs bool                `yaml:"relativeurls"`
	DrainTimeout time.Duration       `yaml:"draintimeout"`
	Headers      map[string][]string `yaml:"headers"`
	TLS          TLS                 `yaml:"tls"`
	Debug        Debug               `yaml:"debug"`
	HTTP2        HTTP2               `yaml:"http2"`
	Timeouts     Timeouts            `yaml:"timeouts"`
}

// Timeouts bound how long a client may take (a Gatehouse extension;
// distribution has no such section). Zero means the default.
type Timeouts struct {
	// ReadHeader is the time allowed to send the request headers
	// (default 10s).
	ReadHeader time.Duration `yaml:"readheader"`
	// BodyRead is the longest a request body may pause between two reads
	// that return data (default 1m): a client that announces a body and
	// stops sending is cut off, an upload that keeps sending is not.
	BodyRead time.Duration `yaml:"bodyread"`
	// Idle is how long a kept-alive connection may wait for its next
	// request (default 2m).
	Idle time.Duration `yaml:"idle"`
}

// TLS configures HTTPS for the registry listener.
type TLS struct {
	Certificate  string   `yaml:"certificate"`
	Key          string   `yaml:"key"`
	ClientCAs    []string `yaml:"clientcas"`
	ClientAuth   string   `yaml:"clientauth"`
	MinimumTLS   string   `yaml:"minimumtls"`
	CipherSuites []string `yaml:"ciphersuites"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.Certificate != "" || t.Key != "" }

// Debug configures the debug server (health, metrics, pprof).
type Debug struct {
	Addr       string     `yaml:"addr"`
	Prometheus Prometheus `yaml:"prometheus"`
}

// Prometheus configures the metrics endpoint on the debug server.
type Prometheus struct {
	Enabled bool   `yaml:"enabled"`
	Path    string `yaml:"path"` // default /metrics
}

// HTTP2 configures HTTP/2.
type HTTP2 struct {
	Disabled bool `yaml:"disabled"`
}

// Redis configures the Redis connection. Both the registry 2 form (Addr,
// Pool) and the registry 3 form (Addrs, PoolSize, ...) are read.
type Redis struct {
	Addr            string        `yaml:"addr"`
	Addrs           []string      `yaml:"addrs"`
	Username        string        `yaml:"username"`
	Password        secret.Secret `yaml:"password"`
	DB              int           `yaml:"db"`
	DialTimeout     time.Duration `yaml:"dialtimeout"`
	ReadTimeout     time.Duration `yaml:"readtimeout"`
	WriteTimeout    time.Duration `yaml:"writetimeout"`
	Pool            RedisPool     `yaml:"pool"`
	MaxIdleConns    int           `yaml:"maxidleconns"`
	PoolSize        int           `yaml:"poolsize"`
	ConnMaxIdleTime time.Duration `yaml:"connmaxidletime"`
	TLS             RedisTLS      `yaml:"tls"`
}

// Addresses returns the configured Redis addresses in either form.
func (r Redis) Addresses() []string {
	if len(r.Addrs) > 0 {
		return r.Addrs
	}
	if r.Addr != "" {
		return []string{r.Addr}
	}
	return nil
}

// RedisPool is the registry 2 pool form.
type RedisPool struct {
	MaxIdle     int           `yaml:"maxidle"`
	MaxActive   int           `yaml:"maxactive"`
	IdleTimeout time.Duration `yaml:"idletimeout"`
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	Enabled     bool     `yaml:"enabled"`
	Certificate string   `yaml:"certificate"`
	Key         string   `yaml:"key"`
	RootCAs     []string `yaml:"rootcas"`
}

// Auth selects the access controller: at most one of Token, Htpasswd, None.
type Auth struct {
	Token    *TokenAuth    `yaml:"token"`
	Htpasswd *HtpasswdAuth `yaml:"htpasswd"`
	None     *NoAuth       `yaml:"none"`
}

// NoAuth turns access control off explicitly.
type NoAuth struct{}

// TokenAuth trusts bearer tokens from a Docker token server.
type TokenAuth struct {
	Realm             string   `yaml:"realm"`
	Service           string   `yaml:"service"`
	Issuer            string   `yaml:"issuer"`
	RootCertBundle    string   `yaml:"rootcertbundle"`
	JWKS              string   `yaml:"jwks"`
	AutoRedirect      bool     `yaml:"autoredirect"`
	AutoRedirectPath  string   `yaml:"autoredirectpath"` // default /auth/token/
	SigningAlgorithms []string `yaml:"signingalgorithms"`
	// AnonymousMount (Gatehouse extension) lets POST ?mount=<digest>
	// without from= link a blob from any repository. Off by default under
	// token auth: it would let anyone who knows a digest read a blob from a
	// repository they cannot pull.
	AnonymousMount bool `yaml:"anonymousmount"`
}

// HtpasswdAuth checks Basic credentials against an htpasswd file (bcrypt only).
type HtpasswdAuth struct {
	Realm string `yaml:"realm"`
	Path  string `yaml:"path"`
}

// Validation configures manifest checks.
type Validation struct {
	Disabled  bool                `yaml:"disabled"`
	Enabled   *bool               `yaml:"enabled"` // deprecated inverse of disabled
	Manifests ManifestsValidation `yaml:"manifests"`
}

// ManifestsValidation holds manifest validation rules.
type ManifestsValidation struct {
	URLs    URLRules     `yaml:"urls"`
	Indexes IndexesRules `yaml:"indexes"`
}

// URLRules are regular expressions for foreign layer URLs.
type URLRules struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// IndexesRules say which child manifests of an index must exist.
type IndexesRules struct {
	Platforms    string     `yaml:"platforms"` // all (default), none or list
	PlatformList []Platform `yaml:"platformlist"`
}

// Platform is an os/architecture pair.
type Platform struct {
	Architecture string `yaml:"architecture"`
	OS           string `yaml:"os"`
}

// Catalog caps _catalog page sizes.
type Catalog struct {
	MaxEntries int `yaml:"maxentries"` // default 1000
}

// Tags caps tag list page sizes.
type Tags struct {
	MaxTags int `yaml:"maxtags"` // default 1000
}

// Health configures health checks.
type Health struct {
	StorageDriver StorageDriverHealth `yaml:"storagedriver"`
	File          []FileHealth        `yaml:"file"`
	HTTP          []HTTPHealth        `yaml:"http"`
	TCP           []TCPHealth         `yaml:"tcp"`
}

// FileHealth fails while File exists (an operator's "drain me" switch).
type FileHealth struct {
	File     string        `yaml:"file"`
	Interval time.Duration `yaml:"interval"` // default 10s
}

// HTTPHealth fails while a HEAD of URI does not answer StatusCode.
type HTTPHealth struct {
	URI        string                     `yaml:"uri"`
	Headers    map[string][]secret.Secret `yaml:"headers"`
	StatusCode int                        `yaml:"statuscode"` // default 200
	Timeout    time.Duration              `yaml:"timeout"`    // default: the interval
	Interval   time.Duration              `yaml:"interval"`   // default 10s
	Threshold  int                        `yaml:"threshold"`  // default 1
}

// TCPHealth fails while Addr does not accept connections.
type TCPHealth struct {
	Addr      string        `yaml:"addr"`
	Timeout   time.Duration `yaml:"timeout"`   // default: the interval
	Interval  time.Duration `yaml:"interval"`  // default 10s
	Threshold int           `yaml:"threshold"` // default 1
}

// Notifications configures webhook endpoints.
type Notifications struct {
	Events    NotificationEvents `yaml:"events"`
	Endpoints []Endpoint         `yaml:"endpoints"`
	// QueueDir (a Gatehouse extension) is the directory the per-endpoint
	// queues are kept in. Default: gatehouse/notifications under
	// storage.filesystem.rootdirectory; required with other drivers.
	QueueDir string `yaml:"queuedir"`
}

// NotificationEvents tunes what events carry.
type NotificationEvents struct {
	IncludeReferences bool `yaml:"includereferences"`
}

// Endpoint is one webhook receiver.
type Endpoint struct {
	Name     string `yaml:"name"`
	Disabled bool   `yaml:"disabled"`
	URL      string `yaml:"url"`
	// Headers are sent with every request; values may be secrets
	// (Authorization) and are never logged.
	Headers   map[string][]secret.Secret `yaml:"headers"`
	Timeout   time.Duration              `yaml:"timeout"`   // default 1s
	Threshold int                        `yaml:"threshold"` // default 10
	Backoff   time.Duration              `yaml:"backoff"`   // default 1s
	// IgnoredMediaTypes is the older form of Ignore.MediaTypes; both apply.
	IgnoredMediaTypes []string       `yaml:"ignoredmediatypes"`
	Ignore            EndpointIgnore `yaml:"ignore"`
	// QueueSize (a Gatehouse extension) bounds the events kept for this
	// endpoint; when full, the oldest is dropped. Default 100000.
	QueueSize int `yaml:"queuesize"`
}

// EndpointIgnore filters events out before they are queued.
type EndpointIgnore struct {
	MediaTypes []string `yaml:"mediatypes"`
	Actions    []string `yaml:"actions"`
}

// Middleware configures distribution's middlewares; only the storage
// redirect middleware is supported.
type Middleware struct {
	Storage []MiddlewareEntry `yaml:"storage"`
}

// MiddlewareEntry is one middleware and its options.
type MiddlewareEntry struct {
	Name     string         `yaml:"name"`
	Disabled bool           `yaml:"disabled"`
	Options  map[string]any `yaml:"options"`
}

// RedirectBaseURL returns the base URL of the enabled redirect storage
// middleware, or "" when there is none.
func (c *Config) RedirectBaseURL() string {
	for _, m := range c.Middleware.Storage {
		if m.Name == "redirect" && !m.Disabled {
			s, _ := m.Options["baseurl"].(string)
			return s
		}
	}
	return ""
}

// StorageDriverHealth checks the storage driver periodically.
type StorageDriverHealth struct {
	Enabled   bool          `yaml:"enabled"`
	Interval  time.Duration `yaml:"interval"`  // default 10s
	Threshold int           `yaml:"threshold"` // default 1
}

// Proxy is the pull-through cache section. Distribution's form mirrors one
// upstream for the whole registry (RemoteURL, Username, Password, TTL);
// Gatehouse also reads Upstreams (several upstreams chosen by repository
// prefix, beside hosted repositories) and MaxSize (a disk cap).
type Proxy struct {
	RemoteURL string        `yaml:"remoteurl"`
	Username  string        `yaml:"username"`
	Password  secret.Secret `yaml:"password"`
	// TTL is how long fetched content stays cached (default 168h); zero
	// or negative keeps it until evicted for space. With Upstreams it is
	// the default of each entry.
	TTL *time.Duration `yaml:"ttl"`
	// Upstreams (a Gatehouse extension) mirrors each upstream under its
	// Prefix; repositories under no prefix are hosted and accept pushes.
	Upstreams []Upstream `yaml:"upstreams"`
	// MaxSize (a Gatehouse extension) caps the bytes of cached blobs; the
	// least recently pulled are evicted beyond it. Zero: no cap.
	MaxSize ByteSize `yaml:"maxsize"`
}

// Upstream is one entry of proxy.upstreams.
type Upstream struct {
	Prefix    string         `yaml:"prefix"`
	RemoteURL string         `yaml:"remoteurl"`
	Username  string         `yaml:"username"`
	Password  secret.Secret  `yaml:"password"`
	TTL       *time.Duration `yaml:"ttl"`
}

// List returns the configured upstreams in one form: distribution's
// single remoteurl becomes one upstream with an empty prefix (the whole
// registry). TTLs are filled in.
func (p *Proxy) List() []Upstream {
	if p == nil {
		return nil
	}
	ttl := DefaultProxyTTL
	if p.TTL != nil {
		ttl = *p.TTL
	}
	var out []Upstream
	if p.RemoteURL != "" {
		out = append(out, Upstream{RemoteURL: p.RemoteURL, Username: p.Username, Password: p.Password, TTL: &ttl})
	}
	for _, u := range p.Upstreams {
		if u.TTL == nil {
			t := ttl
			u.TTL = &t
		}
		out = append(out, u)
	}
	return out
}

// ByteSize is a number of bytes, written as a whole number or with a unit:
// 500MB, 20GiB, 1TB (B, KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB,
// TiB of 1024).
type ByteSize int64

// UnmarshalYAML reads a number or a number with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseByteSize parses "1073741824", "1GiB" or "1GB".
func ParseByteSize(s string) (ByteSize, error) {
	orig := s
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > math.MaxInt64/n) {
		return 0, fmt.Errorf("%q is not a size: write a whole number of bytes or a number with a unit (500MB, 20GiB)", orig)
	}
	return ByteSize(n * mult), nil
}
