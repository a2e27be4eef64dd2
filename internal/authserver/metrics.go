package authserver

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests    *prometheus.CounterVec   // endpoint, outcome
	duration    *prometheus.HistogramVec // endpoint
	cache       *prometheus.CounterVec   // result
	tokenCache  *prometheus.CounterVec   // result
	rateLimited *prometheus.CounterVec   // key
	reloads     *prometheus.CounterVec   // result
	handler     http.Handler
}

// newMetrics registers the auth server's metrics; shared reports whether
// the failed-login limits are shared through Redis at the moment.
func newMetrics(reg prometheus.Registerer, gat prometheus.Gatherer, shared func() bool) (*metrics, error) {
	if reg == nil && gat == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, gat = r, r
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "auth", Name: "requests_total",
			Help: "HTTP requests by endpoint and outcome (issued, denied_credentials, bad_request, rate_limited, unavailable, error, ok, not_found).",
		}, []string{"endpoint", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "auth", Name: "request_duration_seconds",
			Help:    "HTTP request latency by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"endpoint"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "auth", Name: "credential_cache_total",
			Help: "Verified-credential cache lookups by result (hit, miss).",
		}, []string{"result"}),
		tokenCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "auth", Name: "token_cache_total",
			Help: "Issued-token cache lookups by result (hit: a token signed for an identical request was handed out again; miss: a new one was signed).",
		}, []string{"result"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "auth", Name: "rate_limited_total",
			Help: "Requests refused with 429 because of failed logins, by limit (account, ip).",
		}, []string{"limit"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "auth", Name: "reloads_total",
			Help: "Configuration reloads by result (success, failure).",
		}, []string{"result"}),
	}
	sharedLimits := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "auth", Name: "rate_limit_shared",
		Help: "1 while the failed-login limits are shared with other replicas through Redis, 0 while this process limits alone (no redis configured, or Redis unreachable).",
	}, func() float64 {
		if shared() {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.cache, m.tokenCache, m.rateLimited, m.reloads, sharedLimits} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Make the series visible before the first event.
	m.cache.WithLabelValues("hit")
	m.cache.WithLabelValues("miss")
	m.tokenCache.WithLabelValues("hit")
	m.tokenCache.WithLabelValues("miss")
	m.rateLimited.WithLabelValues("account")
	m.rateLimited.WithLabelValues("ip")
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	if gat == nil {
		gat = prometheus.DefaultGatherer
	}
	m.handler = promhttp.HandlerFor(gat, promhttp.HandlerOpts{})
	return m, nil
}
