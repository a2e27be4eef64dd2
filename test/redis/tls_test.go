//go:build integration

package redis

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// TestRegistryOnRedisTLS: a Redis that speaks only TLS and requires a
// client certificate caches the registry's blob descriptors when the
// registry 3 form names the CA and the certificate; the registry 2 form
// (tls.enabled, the system's roots) verifies the server, so it refuses the
// test CA's certificate: the cache stays down, the registry serves from
// storage without a 5xx and says why in its log.
func TestRegistryOnRedisTLS(t *testing.T) {
	r := testenv.StartRedis(t, testenv.WithRedisTLS())

	t.Run("registry 3 form with rootcas and a client certificate", func(t *testing.T) {
		reg := startRegistry(t, fmt.Sprintf(`  addrs: [%s]
  tls:
    certificate: %s
    key: %s
    rootcas: [%s]
`, r.Addr, r.CertFile, r.KeyFile, r.CAFile))
		reg.waitRedis(t, true)
		p := newPusher(t)
		im := p.push(t, reg.Addr+"/tls/app:v1", "tls")
		testenv.Eventually(t, 20*time.Second, "the layer's cache entry in redis", func() bool {
			p.pullLayer(t, reg.Addr+"/tls/app", im)
			return hasKey(r, repoKey("tls/app", im.LayerDigest))
		})
		if !strings.Contains(reg.Log(), `"tls":true`) && !strings.Contains(reg.Log(), "tls=true") {
			t.Errorf("the registry's log does not say the cache uses TLS:\n%s", reg.Log())
		}
	})

	t.Run("registry 2 form verifies the server", func(t *testing.T) {
		reg := startRegistry(t, fmt.Sprintf(`  addr: %s
  tls:
    enabled: true
`, r.Addr))
		reg.waitRedis(t, false)
		p := newPusher(t)
		im := p.push(t, reg.Addr+"/tls/untrusted:v1", "untrusted")
		p.pullLayer(t, reg.Addr+"/tls/untrusted", im)
		if hasKey(r, repoKey("tls/untrusted", im.LayerDigest)) {
			t.Error("a registry that cannot verify Redis's certificate wrote to it")
		}
		testenv.Eventually(t, 20*time.Second, "a certificate error in the registry's log", func() bool {
			return strings.Contains(reg.Log(), "failed to verify certificate")
		})
	})
}
