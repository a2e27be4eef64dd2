package regconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/config"
)

// Defaults, as distribution documents them.
const (
	DefaultAddr              = ":5000"
	DefaultRootDirectory     = "/var/lib/registry"
	DefaultMaxThreads        = 100
	DefaultPurgeAge          = 168 * time.Hour
	DefaultPurgeInterval     = 24 * time.Hour
	DefaultMaxEntries        = 1000
	DefaultMaxTags           = 1000
	DefaultBlobDescriptorLRU = 10000
	DefaultAutoRedirectPath  = "/auth/token/"
	DefaultMetricsPath       = "/metrics"
	DefaultHealthInterval    = 10 * time.Second
	DefaultProxyTTL          = 168 * time.Hour
)

// AuthKind names the access controller in use: "token", "htpasswd" or ""
// (no access control).
func (c *Config) AuthKind() string {
	switch {
	case c.Auth.Token != nil:
		return "token"
	case c.Auth.Htpasswd != nil:
		return "htpasswd"
	}
	return ""
}

// Driver names the storage driver: "filesystem", "inmemory" or "s3".
func (c *Config) Driver() string {
	switch {
	case c.Storage.Filesystem != nil:
		return "filesystem"
	case c.Storage.InMemory != nil:
		return "inmemory"
	case c.Storage.S3 != nil:
		return "s3"
	}
	return ""
}

// ReadOnly reports whether the registry refuses writes.
func (c *Config) ReadOnly() bool { return c.Storage.Maintenance.ReadOnly.Enabled }

// markPresent turns sections written with an empty value (`inmemory:`,
// `none:`) into non-nil pointers so that their presence counts.
func (c *Config) markPresent(doc *config.Doc) {
	if doc.Node("storage.inmemory") != nil && c.Storage.InMemory == nil {
		c.Storage.InMemory = &InMemory{}
	}
	if doc.Node("storage.filesystem") != nil && c.Storage.Filesystem == nil {
		c.Storage.Filesystem = &Filesystem{}
	}
	if doc.Node("storage.s3") != nil && c.Storage.S3 == nil {
		c.Storage.S3 = &S3{}
	}
	if doc.Node("auth.none") != nil && c.Auth.None == nil {
		c.Auth.None = &NoAuth{}
	}
	if doc.Node("auth.token") != nil && c.Auth.Token == nil {
		c.Auth.Token = &TokenAuth{}
	}
	if doc.Node("auth.htpasswd") != nil && c.Auth.Htpasswd == nil {
		c.Auth.Htpasswd = &HtpasswdAuth{}
	}
	if doc.Node("proxy") != nil && c.Proxy == nil {
		c.Proxy = &Proxy{}
	}
}

var (
	logLevels     = []string{"panic", "fatal", "error", "warn", "warning", "info", "debug", "trace"}
	logFormatters = []string{"text", "json", "logstash"}
	clientAuths   = []string{"request-client-cert", "require-any-client-cert", "verify-client-cert-if-given", "require-and-verify-client-cert"}
	tlsVersions   = []string{"tls1.0", "tls1.1", "tls1.2", "tls1.3"}
	storageClass  = []string{"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE", "OUTPOSTS", "EXPRESS_ONEZONE", "NONE"}
	objectACLs    = []string{"private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"}
	signingAlgs   = []string{"EdDSA", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
	platformModes = []string{"all", "none", "list"}
)

const minS3ChunkSize = 5 << 20

// Bounds of storage.s3.timeouts: below a second a busy S3 fails healthy
// calls; above an hour a stall holds a request (and its connection) for
// longer than any client waits.
const (
	minS3Timeout = time.Second
	maxS3Timeout = time.Hour
)

// validate checks values and combinations the types alone cannot.
func (c *Config) validate(doc *config.Doc) config.Problems {
	c.markPresent(doc)
	var ps config.Problems
	add := func(path, msg, fix string) { ps = append(ps, doc.At(path, msg, fix)) }
	oneOf := func(path, v string, allowed []string) {
		if v != "" && !slices.Contains(allowed, v) {
			add(path, fmt.Sprintf("%s is %q", path, v), "use one of: "+strings.Join(allowed, ", "))
		}
	}
	fileExists := func(path, name string) {
		if name == "" {
			return
		}
		if st, err := os.Stat(name); err != nil {
			add(path, fmt.Sprintf("%s: cannot read %q: %v", path, name, unwrapPathErr(err)), "point it at an existing file")
		} else if st.IsDir() {
			add(path, fmt.Sprintf("%s: %q is a directory", path, name), "point it at a file")
		}
	}

	switch c.Version {
	case "0.1":
	case "":
		add("version", "version is missing", "add `version: 0.1` at the top")
	default:
		add("version", fmt.Sprintf("version %q is not a config version this registry reads", c.Version), "use `version: 0.1`")
	}

	// log
	if c.LogLevel != "" {
		c.Warnings = append(c.Warnings, "top-level loglevel is deprecated; use log.level")
		oneOf("loglevel", c.LogLevel, logLevels)
		if c.Log.Level == "" {
			c.Log.Level = c.LogLevel
		}
	}
	oneOf("log.level", c.Log.Level, logLevels)
	oneOf("log.formatter", c.Log.Formatter, logFormatters)

	// storage
	var drivers []string
	for _, d := range []struct {
		name string
		set  bool
	}{{"filesystem", c.Storage.Filesystem != nil}, {"inmemory", c.Storage.InMemory != nil}, {"s3", c.Storage.S3 != nil}} {
		if d.set {
			drivers = append(drivers, d.name)
		}
	}
	switch len(drivers) {
	case 0:
		add("storage", "no storage driver is configured", "add storage.filesystem.rootdirectory (or storage.s3, or storage.inmemory for tests)")
	case 1:
	default:
		add("storage."+drivers[1], "more than one storage driver is configured: "+strings.Join(drivers, ", "), "keep exactly one")
	}
	if fs := c.Storage.Filesystem; fs != nil {
		if fs.MaxThreads != 0 && fs.MaxThreads < 25 {
			add("storage.filesystem.maxthreads", fmt.Sprintf("storage.filesystem.maxthreads is %d; the minimum is 25", fs.MaxThreads), "remove it (default 100) or set 25 or more")
		}
		if fs.RootDirectory != "" && !strings.HasPrefix(fs.RootDirectory, "/") {
			add("storage.filesystem.rootdirectory", "storage.filesystem.rootdirectory must be an absolute path", "start it with /")
		}
	}
	if s3 := c.Storage.S3; s3 != nil {
		if s3.Region == "" {
			add("storage.s3", "storage.s3.region is required", "add region: us-east-1 (any value for MinIO)")
		}
		if s3.Bucket == "" {
			add("storage.s3", "storage.s3.bucket is required", "add bucket: NAME")
		}
		if (s3.AccessKey == "") != s3.SecretKey.IsEmpty() {
			add("storage.s3", "storage.s3 needs both accesskey and secretkey, or neither (instance credentials)", "")
		}
		if s3.ChunkSize != 0 && s3.ChunkSize < minS3ChunkSize {
			add("storage.s3.chunksize", fmt.Sprintf("storage.s3.chunksize is %d; S3 parts must be at least 5 MiB (5242880)", s3.ChunkSize), "set 5242880 or more")
		}
		if s3.MultipartCopyChunkSize < 0 || s3.MultipartCopyThresholdSize < 0 || s3.MultipartCopyMaxConcurrency < 0 {
			add("storage.s3", "storage.s3 multipart copy settings must not be negative", "")
		}
		for _, k := range []struct{ path, v string }{{"storage.s3.regionendpoint", s3.RegionEndpoint}, {"storage.s3.redirectendpoint", s3.RedirectEndpoint}} {
			if k.v == "" {
				continue
			}
			if u, err := url.Parse(k.v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				add(k.path, fmt.Sprintf("%s %q is not an http(s) URL", k.path, k.v), "write it as https://host:port")
			}
		}
		oneOf("storage.s3.storageclass", s3.StorageClass, storageClass)
		oneOf("storage.s3.objectacl", s3.ObjectACL, objectACLs)
		to := s3.Timeouts
		for _, d := range []struct {
			key string
			v   time.Duration
		}{{"dial", to.Dial}, {"tlshandshake", to.TLSHandshake}, {"responseheader", to.ResponseHeader}, {"io", to.IO}} {
			if d.v != 0 && (d.v < minS3Timeout || d.v > maxS3Timeout) {
				key := "storage.s3.timeouts." + d.key
				add(key, fmt.Sprintf("%s is %s; it must be between %s and %s", key, d.v, minS3Timeout, maxS3Timeout), "leave it out for the default")
			}
		}
	}
	if c.Storage.Cache.LayerInfo != "" {
		c.Warnings = append(c.Warnings, "storage.cache.layerinfo is deprecated; use storage.cache.blobdescriptor")
		if c.Storage.Cache.BlobDescriptor == "" {
			c.Storage.Cache.BlobDescriptor = c.Storage.Cache.LayerInfo
		}
	}
	oneOf("storage.cache.blobdescriptor", c.Storage.Cache.BlobDescriptor, []string{"inmemory", "redis"})
	if c.Storage.Cache.BlobDescriptor == "redis" && len(c.Redis.Addresses()) == 0 {
		add("storage.cache.blobdescriptor", "storage.cache.blobdescriptor is redis but the redis section has no addr or addrs", "add redis.addrs: [host:6379]")
	}
	if n := c.Storage.Cache.BlobDescriptorSize; n != nil && *n < 0 {
		add("storage.cache.blobdescriptorsize", "storage.cache.blobdescriptorsize must not be negative", "0 means unbounded")
	}
	up := c.Storage.Maintenance.UploadPurging
	if up.Age < 0 || up.Interval < 0 {
		add("storage.maintenance.uploadpurging", "upload purging age and interval must be positive durations", `e.g. age: 168h, interval: 24h`)
	}
	if c.Storage.Tag.ConcurrencyLimit < 0 {
		add("storage.tag.concurrencylimit", "storage.tag.concurrencylimit must not be negative", "")
	}

	// http
	oneOf("http.net", c.HTTP.Net, []string{"tcp", "unix"})
	if p := c.HTTP.Prefix; p != "" && !strings.HasPrefix(p, "/") {
		add("http.prefix", fmt.Sprintf("http.prefix %q must start with /", p), "write it as /"+p)
	}
	if h := c.HTTP.Host; h != "" {
		if u, err := url.Parse(h); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			add("http.host", fmt.Sprintf("http.host %q is not an absolute URL", h), "write it as https://registry.example.com")
		}
	}
	if c.HTTP.DrainTimeout < 0 {
		add("http.draintimeout", "http.draintimeout must not be negative", "")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"http.timeouts.readheader", c.HTTP.Timeouts.ReadHeader}, {"http.timeouts.bodyread", c.HTTP.Timeouts.BodyRead}, {"http.timeouts.idle", c.HTTP.Timeouts.Idle}} {
		if d.v < 0 {
			add(d.key, d.key+" must not be negative", "leave it out for the default")
		}
	}
	t := c.HTTP.TLS
	if (t.Certificate == "") != (t.Key == "") {
		add("http.tls", "http.tls needs both certificate and key", "set both, or remove the tls section")
	}
	fileExists("http.tls.certificate", t.Certificate)
	fileExists("http.tls.key", t.Key)
	for i, ca := range t.ClientCAs {
		fileExists(fmt.Sprintf("http.tls.clientcas.%d", i), ca)
	}
	oneOf("http.tls.clientauth", t.ClientAuth, clientAuths)
	oneOf("http.tls.minimumtls", t.MinimumTLS, tlsVersions)
	known := map[string]bool{}
	for _, s := range tls.CipherSuites() {
		known[s.Name] = true
	}
	for i, s := range t.CipherSuites {
		if !known[s] {
			add(fmt.Sprintf("http.tls.ciphersuites.%d", i), fmt.Sprintf("cipher suite %q is unknown or insecure", s), "use names such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, or remove the list (Go's defaults are good)")
		}
	}
	if p := c.HTTP.Debug.Prometheus.Path; p != "" && !strings.HasPrefix(p, "/") {
		add("http.debug.prometheus.path", "http.debug.prometheus.path must start with /", "")
	}
	if c.HTTP.Debug.Prometheus.Enabled && c.HTTP.Debug.Addr == "" {
		add("http.debug.prometheus", "http.debug.prometheus.enabled needs http.debug.addr (metrics are served on the debug server)", "add http.debug.addr: localhost:5001")
	}

	// redis
	r := c.Redis
	if r.Addr != "" && len(r.Addrs) > 0 {
		add("redis.addrs", "redis has both addr (registry 2 form) and addrs (registry 3 form)", "keep addrs")
	}
	if (r.TLS.Certificate == "") != (r.TLS.Key == "") {
		add("redis.tls", "redis.tls needs both certificate and key for client certificates", "")
	}
	fileExists("redis.tls.certificate", r.TLS.Certificate)
	fileExists("redis.tls.key", r.TLS.Key)
	for i, ca := range r.TLS.RootCAs {
		fileExists(fmt.Sprintf("redis.tls.rootcas.%d", i), ca)
	}
	if r.DB < 0 || r.Pool.MaxIdle < 0 || r.Pool.MaxActive < 0 || r.MaxIdleConns < 0 || r.PoolSize < 0 {
		add("redis", "redis numbers (db, pool sizes) must not be negative", "")
	}
	if r.DialTimeout < 0 || r.ReadTimeout < 0 || r.WriteTimeout < 0 || r.Pool.IdleTimeout < 0 || r.ConnMaxIdleTime < 0 {
		add("redis", "redis durations (timeouts, idle times) must not be negative", "")
	}
	// The registry 2 form still works; registry 3 renamed these keys.
	for _, k := range []struct {
		set, clash bool
		old, new   string
	}{
		{r.Addr != "", false, "redis.addr", "redis.addrs: [host:port]"},
		{r.Pool.MaxIdle != 0, r.MaxIdleConns != 0, "redis.pool.maxidle", "redis.maxidleconns"},
		{r.Pool.MaxActive != 0, r.PoolSize != 0, "redis.pool.maxactive", "redis.poolsize"},
		{r.Pool.IdleTimeout != 0, r.ConnMaxIdleTime != 0, "redis.pool.idletimeout", "redis.connmaxidletime"},
	} {
		switch {
		case k.set && k.clash:
			add(k.old, fmt.Sprintf("%s (registry 2 form) and %s (registry 3 form) are both set", k.old, strings.Split(k.new, ":")[0]), "keep "+strings.Split(k.new, ":")[0])
		case k.set:
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s is deprecated (registry 2 form); use %s", k.old, k.new))
		}
	}

	// auth
	var kinds []string
	if c.Auth.Token != nil {
		kinds = append(kinds, "token")
	}
	if c.Auth.Htpasswd != nil {
		kinds = append(kinds, "htpasswd")
	}
	if c.Auth.None != nil {
		kinds = append(kinds, "none")
	}
	if len(kinds) > 1 {
		add("auth."+kinds[1], "more than one access controller is configured: "+strings.Join(kinds, ", "), "keep exactly one")
	}
	if tk := c.Auth.Token; tk != nil {
		if tk.Realm == "" && !tk.AutoRedirect {
			add("auth.token", "auth.token.realm is required (the token server's URL)", "add realm: https://auth.example.com/auth")
		} else if tk.Realm != "" {
			if u, err := url.Parse(tk.Realm); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				add("auth.token.realm", fmt.Sprintf("auth.token.realm %q is not an absolute http(s) URL", tk.Realm), "")
			}
		}
		if tk.Service == "" {
			add("auth.token", "auth.token.service is required (the token audience)", "")
		}
		if tk.Issuer == "" {
			add("auth.token", "auth.token.issuer is required (must equal the token server's issuer)", "")
		}
		if tk.RootCertBundle == "" && tk.JWKS == "" {
			add("auth.token", "auth.token needs rootcertbundle or jwks to verify token signatures", "add rootcertbundle: /path/to/token-signing-cert.pem")
		}
		fileExists("auth.token.rootcertbundle", tk.RootCertBundle)
		fileExists("auth.token.jwks", tk.JWKS)
		for i, a := range tk.SigningAlgorithms {
			if strings.HasPrefix(a, "HS") || strings.EqualFold(a, "none") {
				add(fmt.Sprintf("auth.token.signingalgorithms.%d", i), fmt.Sprintf("signing algorithm %q is refused: a shared-secret or unsigned token could be forged by anyone who can read the secret", a), "use RS256, ES256 or EdDSA keys, or remove the list")
				continue
			}
			if !slices.Contains(signingAlgs, a) {
				add(fmt.Sprintf("auth.token.signingalgorithms.%d", i), fmt.Sprintf("signing algorithm %q is unknown", a), "use one of: "+strings.Join(signingAlgs, ", "))
			}
		}
		if p := tk.AutoRedirectPath; p != "" && !strings.HasPrefix(p, "/") {
			add("auth.token.autoredirectpath", "auth.token.autoredirectpath must start with /", "")
		}
	}
	if h := c.Auth.Htpasswd; h != nil {
		if h.Realm == "" {
			add("auth.htpasswd", "auth.htpasswd.realm is required", "add realm: basic-realm")
		}
		if h.Path == "" {
			add("auth.htpasswd", "auth.htpasswd.path is required", "add path: /etc/registry/htpasswd (gatehouse hash-password makes bcrypt hashes)")
		}
		fileExists("auth.htpasswd.path", h.Path)
	}

	// validation
	if c.Validation.Enabled != nil {
		c.Warnings = append(c.Warnings, "validation.enabled is deprecated; use validation.disabled")
		if !*c.Validation.Enabled {
			c.Validation.Disabled = true
		}
	}
	for _, l := range []struct {
		path string
		res  []string
	}{{"validation.manifests.urls.allow", c.Validation.Manifests.URLs.Allow}, {"validation.manifests.urls.deny", c.Validation.Manifests.URLs.Deny}} {
		for i, re := range l.res {
			if _, err := regexp.Compile(re); err != nil {
				add(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("invalid regular expression %q: %v", re, err), "")
			}
		}
	}
	idx := c.Validation.Manifests.Indexes
	oneOf("validation.manifests.indexes.platforms", idx.Platforms, platformModes)
	if idx.Platforms == "list" && len(idx.PlatformList) == 0 {
		add("validation.manifests.indexes.platformlist", "validation.manifests.indexes.platforms is list but platformlist is empty", "add entries such as {os: linux, architecture: amd64}")
	}

	if c.Catalog.MaxEntries < 0 {
		add("catalog.maxentries", "catalog.maxentries must not be negative", "")
	}
	if c.Tags.MaxTags < 0 {
		add("tags.maxtags", "tags.maxtags must not be negative", "")
	}
	if c.Health.StorageDriver.Interval < 0 || c.Health.StorageDriver.Threshold < 0 {
		add("health.storagedriver", "health.storagedriver interval and threshold must not be negative", "")
	}
	c.validateExtra(add)
	ps = append(ps, c.validateProxy(doc)...)
	return ps
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// setDefaults fills in what distribution defaults.
func (c *Config) setDefaults() {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Level == "warning" {
		c.Log.Level = "warn"
	}
	if c.Log.Formatter == "" {
		c.Log.Formatter = "text"
	}
	if c.Log.Formatter == "logstash" {
		c.Log.Formatter = "json"
	}
	if fs := c.Storage.Filesystem; fs != nil {
		if fs.RootDirectory == "" {
			fs.RootDirectory = DefaultRootDirectory
		}
		if fs.MaxThreads == 0 {
			fs.MaxThreads = DefaultMaxThreads
		}
	}
	up := &c.Storage.Maintenance.UploadPurging
	if up.Age == 0 {
		up.Age = DefaultPurgeAge
	}
	if up.Interval == 0 {
		up.Interval = DefaultPurgeInterval
	}
	if c.Storage.Cache.BlobDescriptorSize == nil {
		n := DefaultBlobDescriptorLRU
		c.Storage.Cache.BlobDescriptorSize = &n
	}
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = DefaultAddr
	}
	if c.HTTP.Net == "" {
		c.HTTP.Net = "tcp"
	}
	c.HTTP.Prefix = strings.TrimSuffix(c.HTTP.Prefix, "/")
	if c.HTTP.Debug.Prometheus.Path == "" {
		c.HTTP.Debug.Prometheus.Path = DefaultMetricsPath
	}
	if c.HTTP.TLS.MinimumTLS == "" {
		c.HTTP.TLS.MinimumTLS = "tls1.2"
	}
	if c.HTTP.TLS.ClientAuth == "" && len(c.HTTP.TLS.ClientCAs) > 0 {
		c.HTTP.TLS.ClientAuth = "require-and-verify-client-cert"
	}
	if tk := c.Auth.Token; tk != nil && tk.AutoRedirectPath == "" {
		tk.AutoRedirectPath = DefaultAutoRedirectPath
	}
	if c.Validation.Manifests.Indexes.Platforms == "" {
		c.Validation.Manifests.Indexes.Platforms = "all"
	}
	if c.Catalog.MaxEntries == 0 {
		c.Catalog.MaxEntries = DefaultMaxEntries
	}
	if c.Tags.MaxTags == 0 {
		c.Tags.MaxTags = DefaultMaxTags
	}
	hs := &c.Health.StorageDriver
	if hs.Interval == 0 {
		hs.Interval = DefaultHealthInterval
	}
	if hs.Threshold == 0 {
		hs.Threshold = 1
	}
	c.setExtraDefaults()
}
