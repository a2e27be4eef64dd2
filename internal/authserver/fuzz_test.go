package authserver

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{
		"", "Basic", "Basic ", "basic YWxpY2U6cHc=", "Basic YWxpY2U=", "Basic !!", "Bearer abc",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("a:b:c")),
		"BASIC " + base64.StdEncoding.EncodeToString([]byte(":")),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		user, pass, ok, err := parseBasic(h)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if !ok && (user != "" || pass != "") {
			t.Fatal("credentials without ok")
		}
		if ok {
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
			if string(raw) != user+":"+pass.Reveal() {
				t.Fatalf("%q decoded to %q / %q", raw, user, pass.Reveal())
			}
		}
	})
}

func FuzzClientIP(f *testing.F) {
	f.Add("X-Forwarded-For", "1.2.3.4, 5.6.7.8", -1, "10.0.0.1:1")
	f.Add("X-Real-Ip", "[::1]:80", 0, "[::1]:2")
	f.Add("", "", 5, "garbage")
	f.Add("X-Forwarded-For", ",,,", 2, "")
	f.Add("X-Forwarded-For", "1.2.3.4", -9223372036854775808, "")
	f.Fuzz(func(t *testing.T, header, value string, pos int, remote string) {
		r := &http.Request{Header: http.Header{}, RemoteAddr: remote}
		if header != "" {
			r.Header[http.CanonicalHeaderKey(header)] = []string{value}
		}
		ip, err := clientIP(r, header, pos)
		if err == nil && ip == nil {
			t.Fatal("nil IP without an error")
		}
	})
}

func FuzzTokenRequest(f *testing.F) {
	f.Add("GET", "service=s&scope=repository:a/b:pull&account=alice", "", "Basic YWxpY2U6YWxpY2Vwdw==")
	f.Add("POST", "", "grant_type=password&username=alice&password=alicepw&client_id=d&scope=repository:a:pull+registry:catalog:*", "")
	f.Add("POST", "", "grant_type=refresh_token&refresh_token=ghr1.e30.AAAA&client_id=d", "")
	f.Add("POST", "", "username=a&password=%zz", "")
	f.Add("GET", "scope=%20%20&scope=repository(plugin):x:pull", "", "")
	fx := &fixture{authn: defaultAuthn(), authz: defaultAuthz()}
	c := newChain(f, fx.authn, fx.authz)
	c.RealIPHeader, c.RealIPPos = "X-Forwarded-For", -2
	srv, err := New(c, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, query, body, authz string) {
		if method != "GET" && method != "POST" {
			method = "GET"
		}
		req := httptest.NewRequest(method, "/auth", strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "192.0.2.1, "+query)
		req.Header.Set("Authorization", authz)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %s %q %q: %s", rec.Code, method, query, body, rec.Body)
		}
	})
}

// FuzzVerifyRefresh: parsing never panics; an accepted token is bound to
// the request's service and client and unexpired; and no token verifies
// under a second key (a key change invalidates every refresh token).
func FuzzVerifyRefresh(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	good, err := issueRefresh(key, refreshClaims{Account: "alice", Service: "registry", ClientID: "docker", Authenticator: "static"}, now, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add("ghr1.")
	f.Add("ghr1..")
	f.Add("ghr1.e30.AAAA")
	f.Add("not a token")
	f.Fuzz(func(t *testing.T, tok string) {
		rc, err := verifyRefresh(key, tok, "registry", "docker", now)
		if err != nil {
			return
		}
		if rc.Service != "registry" || rc.ClientID != "docker" || !now.Before(time.Unix(rc.Expiry, 0)) {
			t.Fatalf("accepted %q with claims %+v for another service, client or time", tok, rc)
		}
		if _, err := verifyRefresh([]byte("another key, another key, another"), tok, "registry", "docker", now); err == nil {
			t.Fatalf("token %q verified under two different keys", tok)
		}
	})
}
