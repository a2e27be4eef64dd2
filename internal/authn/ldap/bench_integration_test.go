//go:build integration

package ldap

import (
	"context"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// BenchmarkAuthenticate measures a full LDAP login (search as the service
// account, bind as the user, labels) against a local slapd over LDAPS,
// with 4 goroutines, with the connection pools and with a fresh connection
// per request (what docker_auth does). Run:
//
//	go test -tags integration -run XXX -bench Authenticate -cpu 4 ./internal/authn/ldap/
func BenchmarkAuthenticate(b *testing.B) {
	l := testenv.StartSlapd(b)
	for _, bc := range []struct {
		name   string
		pooled bool
	}{{"pool", true}, {"fresh-connection", false}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{
				Addr:         l.TLSAddr,
				TLS:          TLSAlways,
				CACertFile:   l.CAFile,
				BindDN:       l.BindDN,
				BindPassword: secret.Secret(l.BindPassword),
				Base:         l.Base,
				Filter:       l.Filter,
				Labels:       map[string]LabelConfig{"groups": {Attribute: "gidNumber"}},
			}
			a, err := newAuthenticator(context.Background(), cfg, nil, bc.pooled)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			b.SetParallelism(1) // GOMAXPROCS goroutines; -cpu 4 gives 4
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					labels, err := a.Authenticate(context.Background(), testenv.LDAPUserOps, secret.Secret(l.UserPassword))
					if err != nil || len(labels["groups"]) != 1 {
						b.Errorf("Authenticate: %v %v", labels, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}
