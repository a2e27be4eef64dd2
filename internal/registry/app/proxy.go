package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/proxy"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

// newProxy builds the pull-through cache of cfg.proxy.
func newProxy(ctx context.Context, cfg *regconfig.Config, reg *storage.Registry, log *slog.Logger, metrics prometheus.Registerer) (*proxy.Cache, error) {
	var ups []proxy.Upstream
	for _, u := range cfg.Proxy.List() {
		ups = append(ups, proxy.Upstream{Prefix: u.Prefix, URL: u.RemoteURL, Username: u.Username, Password: u.Password, TTL: *u.TTL})
		what := "every repository"
		if u.Prefix != "" {
			what = u.Prefix + "/..."
		}
		log.Info("pull-through cache", "repositories", what, "upstream", u.RemoteURL, "ttl", u.TTL.String(), "authenticated", u.Username != "")
	}
	c, err := proxy.New(ctx, proxy.Options{Registry: reg, Upstreams: ups, MaxSize: int64(cfg.Proxy.MaxSize), Logger: log, Metrics: metrics})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return c, nil
}
