package authserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func benchServer(b *testing.B, cacheTTL int) *Server {
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
	srv, err := New(c, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv
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

// BenchmarkIssue measures token issuance (ES256 signing) without the network.
func BenchmarkIssue(b *testing.B) {
	b.Run("cold-bcrypt", func(b *testing.B) { benchIssue(b, benchServer(b, -1), "alice", "alicepw") })
	b.Run("cached", func(b *testing.B) { benchIssue(b, benchServer(b, 0), "alice", "alicepw") })
	b.Run("anonymous", func(b *testing.B) { benchIssue(b, benchServer(b, 0), "", "") })
}
