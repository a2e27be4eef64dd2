package proxy

import "github.com/prometheus/client_golang/prometheus"

// metrics are the cache's Prometheus metrics.
type metrics struct {
	hits, misses *prometheus.CounterVec // by kind: manifest, blob
	stale        *prometheus.CounterVec // cached copies served because the upstream failed
	fetchedBytes *prometheus.CounterVec // bytes read from upstreams, by kind
	evictions    *prometheus.CounterVec // by reason: ttl, size
	linked       prometheus.Counter     // stored blobs linked into a mirrored repository instead of fetched
	cachedBytes  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gatehouse", Subsystem: "proxy", Name: name, Help: help}, labels)
	}
	m := &metrics{
		hits:         counter("hits_total", "Pulls of mirrored content served from the cache (a tag counts when the upstream confirmed it), by kind.", "kind"),
		misses:       counter("misses_total", "Pulls of mirrored content that had to be fetched from the upstream, by kind.", "kind"),
		stale:        counter("stale_served_total", "Cached manifests served because the upstream could not answer (unreachable, 401/403, 429, 5xx).", "kind"),
		fetchedBytes: counter("fetched_bytes_total", "Bytes fetched from upstream registries, by kind.", "kind"),
		evictions:    counter("evictions_total", "Cached manifests and blobs removed, by reason (ttl, size).", "reason"),
		linked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "gatehouse", Subsystem: "proxy", Name: "linked_blobs_total",
			Help: "Blobs already stored for another repository, linked into a mirrored one after the upstream confirmed it has them, instead of fetched again."}),
		cachedBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "gatehouse", Subsystem: "proxy", Name: "cached_bytes",
			Help: "Bytes of cached blobs the cache accounts for (the size cap applies to it)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.hits, m.misses, m.stale, m.fetchedBytes, m.evictions, m.linked, m.cachedBytes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) hit(kind string)  { m.hits.WithLabelValues(kind).Inc() }
func (m *metrics) miss(kind string) { m.misses.WithLabelValues(kind).Inc() }
