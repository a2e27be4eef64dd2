package authserver

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// sharedLimits connects the failed-login limits to server.rate_limit.redis.
// An unreachable Redis is not an error: each replica limits alone until it
// answers.
func sharedLimits(ctx context.Context, r *authconfig.RateLimitRedis, log *slog.Logger) (*ratelimit.Shared, error) {
	o, err := sharedLimitsOptions(r)
	if err != nil {
		return nil, err
	}
	s := ratelimit.NewShared(ctx, ratelimit.SharedOptions{Client: o, Timeout: r.Timeout, Logger: log.With("redis", r.Addr)})
	log.Info("failed-login limits shared through redis", "addr", r.Addr, "db", r.DB, "tls", o.TLSConfig != nil, "reachable", s.Shared())
	return s, nil
}

// sharedLimitsOptions maps server.rate_limit.redis onto go-redis options;
// NewShared fills in the timeouts left at zero from the call timeout.
func sharedLimitsOptions(r *authconfig.RateLimitRedis) (goredis.UniversalOptions, error) {
	o := goredis.UniversalOptions{
		Addrs:       []string{r.Addr},
		Username:    r.Username,
		Password:    r.Password.Reveal(),
		DB:          r.DB,
		DialTimeout: r.DialTimeout,
	}
	if t := r.TLS; t.On() {
		var cas []string
		if t.CA != "" {
			cas = []string{t.CA}
		}
		tc, err := tlsutil.ClientConfig(cas, t.Certificate, t.Key)
		if err != nil {
			return o, fmt.Errorf("server.rate_limit.redis.tls.%w", err)
		}
		o.TLSConfig = tc
	}
	return o, nil
}
