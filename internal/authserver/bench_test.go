package authserver

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/token"
	"golang.org/x/crypto/bcrypt"
)

// benchServer returns a server with the fake authenticator (alice with a
// bcrypt cost 10 password, and anonymous) and the test ECDSA key. A
// negative cacheTTL turns the credential cache off, a negative tokenTTL
// the token cache, and mod changes the chain further.
func benchServer(b *testing.B, cacheTTL, tokenTTL int, mod func(*Chain)) *Server {
	b.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("alicepw"), 10)
	if err != nil {
		b.Fatal(err)
	}
	an := &fakeAuthn{name: "static", users: map[string]string{"": ""}, hashes: map[string][]byte{"alice": h}}
	c := newChain(b, an, defaultAuthz())
	if cacheTTL < 0 {
		c.CacheTTL = -1
	}
	if tokenTTL < 0 {
		c.TokenCacheTTL = -1
	}
	if mod != nil {
		mod(c)
	}
	srv, err := New(c, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv
}

// rsaSigner signs with a new RSA-2048 key, the key docker_auth's figures
// were measured with.
func rsaSigner(b *testing.B) func(*Chain) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	s, err := token.NewSigner(key, nil, token.SignerOptions{KeyID: token.KeyIDThumbprint})
	if err != nil {
		b.Fatal(err)
	}
	return func(c *Chain) { c.Signer = s }
}

func benchIssue(b *testing.B, srv *Server, user, pass string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/auth?service=registry.test&scope=repository:library/base:pull", nil)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// BenchmarkIssue measures token issuance without the network: ES256
// signing, and RS256 (RSA-2048) with and without the token cache. A CPU
// profile of the signing cases shows where a request's time goes:
//
//	go test -run '^$' -bench 'Issue/rsa-signed' -cpuprofile cpu.pprof ./internal/authserver/
func BenchmarkIssue(b *testing.B) {
	b.Run("cold-bcrypt", func(b *testing.B) { benchIssue(b, benchServer(b, -1, -1, nil), "alice", "alicepw") })
	b.Run("cached-signed", func(b *testing.B) { benchIssue(b, benchServer(b, 0, -1, nil), "alice", "alicepw") })
	b.Run("cached", func(b *testing.B) { benchIssue(b, benchServer(b, 0, 0, nil), "alice", "alicepw") })
	b.Run("anonymous-signed", func(b *testing.B) { benchIssue(b, benchServer(b, 0, -1, nil), "", "") })
	b.Run("anonymous", func(b *testing.B) { benchIssue(b, benchServer(b, 0, 0, nil), "", "") })
	b.Run("rsa-signed-anonymous", func(b *testing.B) { benchIssue(b, benchServer(b, 0, -1, rsaSigner(b)), "", "") })
	b.Run("rsa-anonymous", func(b *testing.B) { benchIssue(b, benchServer(b, 0, 0, rsaSigner(b)), "", "") })
}
