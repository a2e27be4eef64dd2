package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/ratelimit"
	"github.com/gatehouse-registry/gatehouse/internal/registry/auth"
)

// TestHtpasswdParallelWrongPasswords: wrong passwords sent all at once get
// at most the failed-login limit's worth of 401s; the rest are refused with
// 429 TOOMANYREQUESTS and a Retry-After before any password check.
func TestHtpasswdParallelWrongPasswords(t *testing.T) {
	const n = 100
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		accounts int // requests cycle through this many accounts
		want401  int
	}{
		{"one account, one address", 1, ratelimit.DefaultAccountFailures},
		{"many accounts, one address", n, ratelimit.DefaultIPFailures},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctl, err := auth.ParseHtpasswd("reg", []byte("alice:"+string(hash)+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			h := newTestHandler(t, func(o *Options) { o.Auth = ctl })
			recs := make([]*httptest.ResponseRecorder, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					account := "alice"
					if tt.accounts > 1 {
						account = fmt.Sprint("user", i%tt.accounts)
					}
					r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
					r.RemoteAddr = "203.0.113.5:40000"
					r.SetBasicAuth(account, "wrong")
					recs[i] = httptest.NewRecorder()
					<-start
					h.ServeHTTP(recs[i], r)
				}()
			}
			close(start)
			wg.Wait()
			codes := map[int]int{}
			for _, rec := range recs {
				codes[rec.Code]++
				switch rec.Code {
				case http.StatusUnauthorized:
					if got := errCode(t, rec.Body.String()); got != "UNAUTHORIZED" {
						t.Errorf("401 with code %s", got)
					}
				case http.StatusTooManyRequests:
					if got := errCode(t, rec.Body.String()); got != "TOOMANYREQUESTS" {
						t.Errorf("429 with code %s", got)
					}
					if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
						t.Errorf("429 with Retry-After %q", rec.Header().Get("Retry-After"))
					}
				}
			}
			if codes[http.StatusUnauthorized] != tt.want401 || codes[http.StatusTooManyRequests] != n-tt.want401 {
				t.Errorf("statuses %v, want %d × 401 and %d × 429", codes, tt.want401, n-tt.want401)
			}
		})
	}
}
