package app

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/health"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// healthChecks lists the checks of cfg.health: storage (when enabled),
// then each file, http and tcp check, named as distribution names them
// in /debug/health (the file, the URI, the address).
func healthChecks(cfg *regconfig.Config, d driver.Driver) []health.Check {
	var out []health.Check
	if sd := cfg.Health.StorageDriver; sd.Enabled {
		out = append(out, health.Check{Name: "storagedriver", Interval: sd.Interval, Threshold: sd.Threshold,
			Probe: func(ctx context.Context) error { return ping(ctx, d) }})
	}
	for _, f := range cfg.Health.File {
		out = append(out, health.Check{Name: f.File, Interval: f.Interval, Threshold: 1, Probe: health.FileProbe(f.File)})
	}
	for _, h := range cfg.Health.HTTP {
		hdr := http.Header{}
		for k, vs := range h.Headers {
			for _, v := range vs {
				hdr.Add(k, v.Reveal())
			}
		}
		name := h.URI
		if u, err := url.Parse(h.URI); err == nil {
			name = u.Redacted() // a password in the URI stays out of /debug/health
		}
		out = append(out, health.Check{Name: name, Interval: h.Interval, Threshold: h.Threshold, Timeout: h.Timeout,
			Probe: health.HTTPProbe(h.URI, hdr, h.StatusCode)})
	}
	for _, t := range cfg.Health.TCP {
		out = append(out, health.Check{Name: t.Addr, Interval: t.Interval, Threshold: t.Threshold, Timeout: t.Timeout,
			Probe: health.TCPProbe(t.Addr)})
	}
	return out
}
