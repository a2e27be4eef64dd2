package app

import (
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/notify"
)

// openNotifier builds the notifier of cfg.notifications, or nil when no
// endpoint is enabled. Its queues live in notifications.queuedir (by
// default under the filesystem storage's root directory).
func openNotifier(cfg *regconfig.Config, log *slog.Logger, reg prometheus.Registerer) (*notify.Notifier, error) {
	n := cfg.Notifications
	var eps []notify.Endpoint
	for _, e := range n.Endpoints {
		if e.Disabled {
			continue
		}
		hdr := http.Header{}
		for k, vs := range e.Headers {
			for _, v := range vs {
				hdr.Add(k, v.Reveal())
			}
		}
		eps = append(eps, notify.Endpoint{
			Name: e.Name, URL: e.URL, Headers: hdr,
			Timeout: e.Timeout, Threshold: e.Threshold, Backoff: e.Backoff,
			QueueSize:        e.QueueSize,
			IgnoreMediaTypes: append(append([]string(nil), e.Ignore.MediaTypes...), e.IgnoredMediaTypes...),
			IgnoreActions:    e.Ignore.Actions,
		})
	}
	if len(eps) == 0 {
		return nil, nil
	}
	return notify.New(notify.Options{
		Dir:               n.QueueDir,
		Endpoints:         eps,
		IncludeReferences: n.Events.IncludeReferences,
		Source:            notify.Source{Addr: sourceAddr(cfg.HTTP.Addr), InstanceID: notify.NewID()},
		Logger:            log,
		Registerer:        reg,
	})
}

// sourceAddr is this host's name and the registry's port, as distribution
// reports it in events.
func sourceAddr(addr string) string {
	host, _ := os.Hostname()
	_, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}
