package redis

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the cache does. A nil *Metrics counts nothing.
type Metrics struct {
	hits, misses prometheus.Counter
	errors       *prometheus.CounterVec
	up, pending  prometheus.Gauge
}

// NewMetrics registers the cache's metrics with reg:
// gatehouse_registry_cache_redis_{hits,misses}_total,
// gatehouse_registry_cache_redis_errors_total{op},
// gatehouse_registry_cache_redis_up and
// gatehouse_registry_cache_redis_pending_invalidations.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "gatehouse", Subsystem: "registry_cache_redis", Name: name, Help: help}
	}
	m := &Metrics{
		hits:   prometheus.NewCounter(prometheus.CounterOpts(opts("hits_total", "Blob descriptor and manifest link lookups answered from Redis."))),
		misses: prometheus.NewCounter(prometheus.CounterOpts(opts("misses_total", "Blob descriptor and manifest link lookups not answered from Redis (absent, or Redis unreachable), served from storage."))),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("errors_total", "Redis operations that failed or timed out, by operation (stat, set, clear).")), []string{"op"}),
		up:     prometheus.NewGauge(prometheus.GaugeOpts(opts("up", "1 while the cache uses Redis, 0 while Redis is unreachable and requests go to storage."))),
		pending: prometheus.NewGauge(prometheus.GaugeOpts(opts("pending_invalidations",
			"Invalidations waiting for Redis to come back."))),
	}
	for _, c := range []prometheus.Collector{m.hits, m.misses, m.errors, m.up, m.pending} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, op := range []string{"stat", "set", "clear"} {
		m.errors.WithLabelValues(op)
	}
	return m, nil
}

func (m *Metrics) hit() {
	if m != nil {
		m.hits.Inc()
	}
}

func (m *Metrics) miss() {
	if m != nil {
		m.misses.Inc()
	}
}

func (m *Metrics) error(op string) {
	if m != nil {
		m.errors.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) setUp(up bool) {
	if m != nil {
		v := 0.0
		if up {
			v = 1
		}
		m.up.Set(v)
	}
}

func (m *Metrics) setPending(n int) {
	if m != nil {
		m.pending.Set(float64(n))
	}
}
