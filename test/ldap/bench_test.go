//go:build integration

package ldap_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// loadClients is the number of concurrent clients of BenchmarkTokenLDAPLoad,
// as in the docker_auth measurement it is compared with.
const loadClients = 4

// BenchmarkTokenLDAPLoad measures what an LDAP user's token requests cost
// through gatehouse auth-server on the seed's config (LDAPS, proxy bind,
// posixAccount filter, groups from gidNumber), from exactly loadClients
// concurrent clients over kept-alive HTTPS connections, and reports
// requests per second and the latency percentiles p50 and p99: "cold" with
// the credential cache off (server.credential_cache_ttl: 0, every request
// searches and binds over the pooled LDAP connections) and "cached" with the
// default cache. Both the auth server and slapd run on this machine.
//
//	go test -tags integration -run '^$' -bench TokenLDAPLoad -benchtime 10s ./test/ldap/
func BenchmarkTokenLDAPLoad(b *testing.B) {
	bin := testenv.Gatehouse(b)
	l := testenv.StartSlapd(b)
	for _, bc := range []struct{ name, server string }{
		{"cold", "  credential_cache_ttl: 0s\n"},
		{"cached", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
			cfgFile, client := authServerFiles(b, l, addr, fixedACL, bc.server)
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 2 * loadClients
			p := testenv.Start(b, nil, bin, "auth-server", cfgFile)
			p.WaitHTTP(b, "https://"+addr+"/")
			url := "https://" + addr + "/auth?service=registry.test&scope=repository:team/app:push,pull"
			get := func() (time.Duration, error) {
				req, err := http.NewRequest(http.MethodGet, url, nil)
				if err != nil {
					return 0, err
				}
				req.SetBasicAuth(testenv.LDAPUserOps, l.UserPassword)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					return 0, err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(start)
				if resp.StatusCode != http.StatusOK {
					return d, fmt.Errorf("status %d", resp.StatusCode)
				}
				return d, nil
			}
			// One request first: the TLS connections and, when on, the
			// cache entry are there before the clock starts.
			if _, err := get(); err != nil {
				b.Fatalf("first token request: %v", err)
			}

			var next atomic.Int64
			lat := make([][]time.Duration, loadClients)
			var wg sync.WaitGroup
			b.ResetTimer()
			for c := range loadClients {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						d, err := get()
						if err != nil {
							b.Error(err)
							return
						}
						lat[c] = append(lat[c], d)
					}
				})
			}
			wg.Wait()
			b.StopTimer()

			all := slices.Sorted(slices.Values(slices.Concat(lat...)))
			if len(all) == 0 {
				b.Fatal("no request succeeded")
			}
			b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
		})
	}
}

// percentile returns the p-th (0..1) value of sorted latencies, nearest
// rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
