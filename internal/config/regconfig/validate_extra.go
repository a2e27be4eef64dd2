package regconfig

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Defaults of notifications and health checks, as distribution's (queue
// size and directory are Gatehouse's own).
const (
	DefaultEndpointTimeout   = time.Second
	DefaultEndpointThreshold = 10
	DefaultEndpointBackoff   = time.Second
	DefaultQueueSize         = 100000
	// QueueSubdir is where the notification queues live under
	// storage.filesystem.rootdirectory unless notifications.queuedir says
	// otherwise. Distribution and Gatehouse read only docker/ there.
	QueueSubdir = "gatehouse/notifications"
)

// EventActions are the actions a notification event can carry.
var EventActions = []string{"push", "pull", "delete", "mount"}

// refusedStorageMiddleware names the storage middlewares distribution has
// and Gatehouse does not, with why.
var refusedStorageMiddleware = map[string]string{
	"cloudfront": "needs Amazon CloudFront signing keys and is not supported; use the redirect middleware with your CDN's base URL, or storage.s3.redirectendpoint",
	"rewrite":    "not supported; use the redirect middleware with a base URL",
}

// validateExtra checks notifications, the health checks beyond
// storagedriver, and middleware.
func (c *Config) validateExtra(add func(path, msg, fix string)) {
	httpURL := func(path, v, what string) {
		if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			add(path, fmt.Sprintf("%s %q is not an http(s) URL", what, v), "write it as https://host[:port]/path")
		}
	}
	notNegative := func(path string, d time.Duration) {
		if d < 0 {
			add(path, path+" must not be negative", "leave it out for the default")
		}
	}

	// notifications
	n := c.Notifications
	names := map[string]int{}
	enabled := 0
	for i, e := range n.Endpoints {
		p := fmt.Sprintf("notifications.endpoints.%d", i)
		if e.Name == "" {
			add(p, p+": name is required", "add name: a short word naming the receiver")
		} else if first, dup := names[e.Name]; dup {
			add(p+".name", fmt.Sprintf("endpoint name %q is used twice (also endpoint %d)", e.Name, first), "give each endpoint its own name: it names its queue and metrics")
		} else {
			names[e.Name] = i
		}
		if e.URL == "" {
			add(p, p+": url is required", "add url: https://receiver.example.com/events")
		} else {
			httpURL(p+".url", e.URL, "notification url")
		}
		notNegative(p+".timeout", e.Timeout)
		notNegative(p+".backoff", e.Backoff)
		if e.Threshold < 0 {
			add(p+".threshold", "threshold must not be negative", "leave it out for 10")
		}
		if e.QueueSize < 0 {
			add(p+".queuesize", "queuesize must not be negative", "leave it out for 100000")
		}
		for j, a := range e.Ignore.Actions {
			if !slices.Contains(EventActions, a) {
				add(fmt.Sprintf("%s.ignore.actions.%d", p, j), fmt.Sprintf("ignored action %q is not an event action", a), "use one of: "+strings.Join(EventActions, ", "))
			}
		}
		if !e.Disabled {
			enabled++
		}
	}
	if d := n.QueueDir; d != "" && !filepath.IsAbs(d) {
		add("notifications.queuedir", "notifications.queuedir must be an absolute path", "start it with /")
	}
	if d := c.Driver(); enabled > 0 && n.QueueDir == "" && d != "" && d != "filesystem" {
		add("notifications", "notifications.queuedir is required with "+d+" storage: the event queues are kept on local disk",
			"add notifications.queuedir: /var/lib/gatehouse/notifications (a persistent directory of this host)")
	}

	// health
	for i, f := range c.Health.File {
		p := fmt.Sprintf("health.file.%d", i)
		if f.File == "" {
			add(p, p+": file is required", "add file: /path/whose/existence/means/unhealthy")
		}
		notNegative(p+".interval", f.Interval)
	}
	for i, h := range c.Health.HTTP {
		p := fmt.Sprintf("health.http.%d", i)
		if h.URI == "" {
			add(p, p+": uri is required", "add uri: http://host:port/health")
		} else {
			httpURL(p+".uri", h.URI, "health check uri")
		}
		if h.StatusCode != 0 && (h.StatusCode < 100 || h.StatusCode > 599) {
			add(p+".statuscode", fmt.Sprintf("statuscode %d is not an HTTP status", h.StatusCode), "leave it out for 200")
		}
		notNegative(p+".timeout", h.Timeout)
		notNegative(p+".interval", h.Interval)
		if h.Threshold < 0 {
			add(p+".threshold", "threshold must not be negative", "")
		}
	}
	for i, h := range c.Health.TCP {
		p := fmt.Sprintf("health.tcp.%d", i)
		if h.Addr == "" {
			add(p, p+": addr is required", "add addr: host:port")
		} else if _, _, err := net.SplitHostPort(h.Addr); err != nil {
			add(p+".addr", fmt.Sprintf("health check addr %q is not host:port", h.Addr), "write it as db.example.com:5432")
		}
		notNegative(p+".timeout", h.Timeout)
		notNegative(p+".interval", h.Interval)
		if h.Threshold < 0 {
			add(p+".threshold", "threshold must not be negative", "")
		}
	}

	// middleware
	redirects := 0
	for i, m := range c.Middleware.Storage {
		p := fmt.Sprintf("middleware.storage.%d", i)
		if why, ok := refusedStorageMiddleware[m.Name]; ok {
			add(p+".name", fmt.Sprintf("storage middleware %q is not supported by Gatehouse: %s", m.Name, why), "")
			continue
		}
		if m.Name != "redirect" {
			add(p+".name", fmt.Sprintf("unknown storage middleware %q", m.Name), "the one supported storage middleware is redirect")
			continue
		}
		if !m.Disabled {
			redirects++
		}
		keys := make([]string, 0, len(m.Options))
		for k := range m.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k != "baseurl" {
				add(p+".options."+k, fmt.Sprintf("unknown redirect option %q", k), "the redirect middleware takes baseurl only")
			}
		}
		switch v := m.Options["baseurl"].(type) {
		case nil:
			add(p, "the redirect middleware needs options.baseurl", "add options: {baseurl: https://cdn.example.com/registry}")
		case string:
			httpURL(p+".options.baseurl", v, "redirect baseurl")
		default:
			add(p+".options.baseurl", "redirect baseurl must be a string URL", "")
		}
	}
	if redirects > 1 {
		add("middleware.storage", "more than one redirect middleware is enabled", "keep one")
	}
	if redirects > 0 && c.Storage.Redirect.Disable {
		add("middleware.storage", "the redirect middleware is set but storage.redirect.disable is true, which turns every redirect off", "remove one of the two")
	}
}

// setExtraDefaults fills in the defaults of notifications and health
// checks.
func (c *Config) setExtraDefaults() {
	n := &c.Notifications
	for i := range n.Endpoints {
		e := &n.Endpoints[i]
		if e.Timeout == 0 {
			e.Timeout = DefaultEndpointTimeout
		}
		if e.Threshold == 0 {
			e.Threshold = DefaultEndpointThreshold
		}
		if e.Backoff == 0 {
			e.Backoff = DefaultEndpointBackoff
		}
		if e.QueueSize == 0 {
			e.QueueSize = DefaultQueueSize
		}
	}
	if n.QueueDir == "" && c.Storage.Filesystem != nil {
		n.QueueDir = filepath.Join(c.Storage.Filesystem.RootDirectory, QueueSubdir)
	}
	for i := range c.Health.File {
		if c.Health.File[i].Interval == 0 {
			c.Health.File[i].Interval = DefaultHealthInterval
		}
	}
	for i := range c.Health.HTTP {
		h := &c.Health.HTTP[i]
		if h.Interval == 0 {
			h.Interval = DefaultHealthInterval
		}
		if h.Timeout == 0 {
			h.Timeout = h.Interval
		}
		if h.StatusCode == 0 {
			h.StatusCode = 200
		}
		if h.Threshold == 0 {
			h.Threshold = 1
		}
	}
	for i := range c.Health.TCP {
		h := &c.Health.TCP[i]
		if h.Interval == 0 {
			h.Interval = DefaultHealthInterval
		}
		if h.Timeout == 0 {
			h.Timeout = h.Interval
		}
		if h.Threshold == 0 {
			h.Threshold = 1
		}
	}
}
