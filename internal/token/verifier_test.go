package token

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testNow = time.Now().Truncate(time.Second)

func testVerifier(t *testing.T, opts VerifierOptions) *Verifier {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = "auth"
	}
	if opts.Service == "" && len(opts.Services) == 0 {
		opts.Service = "registry"
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	v, err := NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func testClaims() Claims {
	c := NewClaims("auth", "alice", "registry", testNow, 5*time.Minute,
		[]ResourceActions{{Type: "repository", Name: "alpine", Actions: []string{"pull", "push"}}})
	return c
}

func mustSigner(t *testing.T, key crypto.Signer, chain []*x509.Certificate, opts SignerOptions) *Signer {
	t.Helper()
	s, err := NewSigner(key, chain, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSign(t *testing.T, s *Signer, c Claims) string {
	t.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyRoundTrip(t *testing.T) {
	for _, kind := range []string{"rsa", "p256", "p384", "p521"} {
		t.Run(kind, func(t *testing.T) {
			key := testKey(t, kind)
			cert := testCert(t, "token", key, false, nil, nil)
			v := testVerifier(t, VerifierOptions{RootCerts: []*x509.Certificate{cert}})
			for _, opts := range []SignerOptions{
				{X5C: true, KeyID: KeyIDLibtrust},
				{X5C: false, KeyID: KeyIDLibtrust},
				{X5C: false, KeyID: KeyIDThumbprint},
			} {
				want := testClaims()
				got, err := v.Verify(mustSign(t, mustSigner(t, key, []*x509.Certificate{cert}, opts), want))
				if err != nil {
					t.Fatalf("%+v: %v", opts, err)
				}
				want.Access = want.normalized().Access
				if diff := cmp.Diff(&want, got); diff != "" {
					t.Errorf("%+v: claims mismatch (-want +got):\n%s", opts, diff)
				}
			}
		})
	}
}

func TestVerifyTrustPaths(t *testing.T) {
	caKey := testKey(t, "p256")
	ca := testCert(t, "ca", caKey, true, nil, nil)
	interKey := testKey(t, "p384")
	inter := testCert(t, "intermediate", interKey, true, ca, caKey)
	leafKey := testKey(t, "rsa")
	leaf := testCert(t, "token", leafKey, false, ca, caKey)
	leaf2Key := testKey(t, "p256")
	leaf2 := testCert(t, "token2", leaf2Key, false, inter, interKey)
	strangerKey := testKey(t, "p256")
	stranger := testCert(t, "stranger", strangerKey, false, nil, nil)

	jwksSigner := mustSigner(t, strangerKey, nil, SignerOptions{KeyID: KeyIDThumbprint})
	jwks, err := jwksSigner.PublicJWKS()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		roots   []*x509.Certificate
		jwks    []byte
		signer  *Signer
		wantErr error
	}{
		{"x5c chains to CA", []*x509.Certificate{ca}, nil,
			mustSigner(t, leafKey, []*x509.Certificate{leaf}, SignerOptions{X5C: true}), nil},
		{"x5c leaf and CA in chain", []*x509.Certificate{ca}, nil,
			mustSigner(t, leafKey, []*x509.Certificate{leaf, ca}, SignerOptions{X5C: true}), nil},
		{"x5c leaf in bundle", []*x509.Certificate{leaf}, nil,
			mustSigner(t, leafKey, []*x509.Certificate{leaf}, SignerOptions{X5C: true}), nil},
		{"x5c through intermediate", []*x509.Certificate{ca}, nil,
			mustSigner(t, leaf2Key, []*x509.Certificate{leaf2, inter}, SignerOptions{X5C: true}), nil},
		{"x5c intermediate missing", []*x509.Certificate{ca}, nil,
			mustSigner(t, leaf2Key, []*x509.Certificate{leaf2}, SignerOptions{X5C: true}), ErrUntrustedKey},
		{"x5c untrusted self-signed", []*x509.Certificate{ca}, nil,
			mustSigner(t, strangerKey, []*x509.Certificate{stranger}, SignerOptions{X5C: true}), ErrUntrustedKey},
		{"x5c untrusted even if kid is trusted", []*x509.Certificate{ca, leaf}, nil,
			mustSigner(t, strangerKey, []*x509.Certificate{stranger}, SignerOptions{X5C: true}), ErrUntrustedKey},
		{"CA alone does not trust a kid", []*x509.Certificate{ca}, nil,
			mustSigner(t, leafKey, []*x509.Certificate{leaf}, SignerOptions{KeyID: KeyIDThumbprint}), ErrUntrustedKey},
		{"thumbprint kid of bundle cert", []*x509.Certificate{leaf}, nil,
			mustSigner(t, leafKey, nil, SignerOptions{KeyID: KeyIDThumbprint}), nil},
		{"libtrust kid of bundle cert", []*x509.Certificate{leaf}, nil,
			mustSigner(t, leafKey, nil, SignerOptions{KeyID: KeyIDLibtrust}), nil},
		{"kid from JWKS", nil, jwks, jwksSigner, nil},
		{"kid unknown", []*x509.Certificate{leaf}, jwks,
			mustSigner(t, testKey(t, "p256"), nil, SignerOptions{KeyID: KeyIDThumbprint}), ErrUntrustedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVerifier(t, VerifierOptions{RootCerts: tt.roots, JWKS: tt.jwks, Now: time.Now})
			c := NewClaims("auth", "alice", "registry", time.Now(), time.Minute, nil)
			_, err := v.Verify(mustSign(t, tt.signer, c))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func segment(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyRefuses(t *testing.T) {
	key := testKey(t, "p256")
	cert := testCert(t, "token", key, false, nil, nil)
	s := mustSigner(t, key, []*x509.Certificate{cert}, DefaultSignerOptions())
	v := testVerifier(t, VerifierOptions{RootCerts: []*x509.Certificate{cert}})
	good := mustSign(t, s, testClaims())
	parts := strings.Split(good, ".")

	with := func(f func(*Claims)) string {
		c := testClaims()
		f(&c)
		return mustSign(t, s, c)
	}
	hmacToken := func() string {
		h := segment(`{"typ":"JWT","alg":"HS256","kid":"` + s.KeyID() + `"}`)
		mac := hmac.New(sha256.New, cert.RawSubjectPublicKeyInfo)
		mac.Write([]byte(h + "." + parts[1]))
		return h + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	flipped := []byte(parts[2])
	if flipped[5] == 'A' {
		flipped[5] = 'B'
	} else {
		flipped[5] = 'A'
	}

	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{"tampered signature", parts[0] + "." + parts[1] + "." + string(flipped), ErrSignature},
		{"tampered claims", parts[0] + "." + segment(`{"iss":"auth","sub":"root","aud":"registry","exp":9999999999,"access":[]}`) + "." + parts[2], ErrSignature},
		{"alg none", segment(`{"typ":"JWT","alg":"none","kid":"`+s.KeyID()+`"}`) + "." + parts[1] + ".", ErrAlgorithm},
		{"alg HS256 with the public key", hmacToken(), ErrAlgorithm},
		{"wrong issuer", with(func(c *Claims) { c.Issuer = "other" }), ErrIssuer},
		{"wrong audience", with(func(c *Claims) { c.Audience = "other" }), ErrAudience},
		{"empty audience", with(func(c *Claims) { c.Audience = "" }), ErrAudience},
		{"expired", with(func(c *Claims) { c.Expiry = testNow.Add(-61 * time.Second).Unix() }), ErrExpired},
		{"not yet valid", with(func(c *Claims) { c.NotBefore = testNow.Add(61 * time.Second).Unix() }), ErrNotYetValid},
		{"expired within leeway", with(func(c *Claims) { c.Expiry = testNow.Add(-59 * time.Second).Unix() }), nil},
		{"nbf within leeway", with(func(c *Claims) { c.NotBefore = testNow.Add(59 * time.Second).Unix() }), nil},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"garbage", "a.b.c", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"too long", strings.Repeat("a", maxTokenSize) + "..", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && len(tt.token) > 20 && strings.Contains(err.Error(), tt.token[len(tt.token)-20:]) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
}

func TestVerifyAudienceArrayAndFloatTimes(t *testing.T) {
	key := testKey(t, "rsa")
	v := testVerifier(t, VerifierOptions{Services: []string{"a", "registry"}, JWKS: jwksOf(t, key)})
	// Sign a hand-made payload with aud as an array and exp as a float.
	s := mustSigner(t, key, nil, SignerOptions{KeyID: KeyIDThumbprint})
	payload := `{"iss":"auth","sub":"bob","aud":["x","registry"],"exp":` + fmt.Sprint(testNow.Unix()+100) + `.5,"access":[]}`
	input := s.header + "." + segment(payload)
	h := sha256.Sum256([]byte(input))
	sig, err := key.Sign(nil, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(input + "." + base64.RawURLEncoding.EncodeToString(sig))
	if err != nil {
		t.Fatal(err)
	}
	want := &Claims{Issuer: "auth", Subject: "bob", Audience: "registry", Expiry: testNow.Unix() + 100, Access: []ResourceActions{}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", diff)
	}
}

func jwksOf(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	b, err := mustSigner(t, key, nil, SignerOptions{KeyID: KeyIDThumbprint}).PublicJWKS()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewVerifierRefuses(t *testing.T) {
	cert := testCert(t, "token", testKey(t, "p256"), false, nil, nil)
	roots := []*x509.Certificate{cert}
	tests := []struct {
		name    string
		opts    VerifierOptions
		wantErr string
	}{
		{"no issuer", VerifierOptions{Service: "s", RootCerts: roots}, "issuer is required"},
		{"no service", VerifierOptions{Issuer: "i", RootCerts: roots}, "service is required"},
		{"no keys", VerifierOptions{Issuer: "i", Service: "s"}, "no root certificates"},
		{"hmac algorithm", VerifierOptions{Issuer: "i", Service: "s", RootCerts: roots, Algorithms: []string{"HS256"}}, `"HS256" is not allowed`},
		{"bad JWKS", VerifierOptions{Issuer: "i", Service: "s", JWKS: []byte("{")}, "JWKS"},
		{"symmetric JWKS key", VerifierOptions{Issuer: "i", Service: "s", JWKS: []byte(`{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}`)}, "not an asymmetric public key"},
		{"JWKS key without kid", VerifierOptions{Issuer: "i", Service: "s", JWKS: jwksWithoutKid(t)}, "has no kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewVerifier error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func jwksWithoutKid(t *testing.T) []byte {
	b := jwksOf(t, testKey(t, "p256"))
	return []byte(strings.Replace(string(b), `"kid"`, `"x-kid"`, 1))
}

func TestVerifierAlgorithmsNarrowed(t *testing.T) {
	key := testKey(t, "rsa")
	v := testVerifier(t, VerifierOptions{JWKS: jwksOf(t, key), Algorithms: []string{"ES256"}})
	_, err := v.Verify(mustSign(t, mustSigner(t, key, nil, SignerOptions{KeyID: KeyIDThumbprint}), testClaims()))
	if !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("Verify error = %v, want ErrAlgorithm", err)
	}
}

func FuzzVerify(f *testing.F) {
	key := testKey(f, "p256")
	cert := testCert(f, "token", key, false, nil, nil)
	s := mustSignerTB(f, key, []*x509.Certificate{cert})
	v, err := NewVerifier(VerifierOptions{Issuer: "auth", Service: "registry", RootCerts: []*x509.Certificate{cert},
		Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.Sign(testClaims())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(segment(`{"alg":"none"}`) + "." + segment(`{}`) + ".")
	f.Add(segment(`{"alg":"ES256","x5c":["AAAA"]}`) + "." + segment(`{"aud":[1]}`) + ".AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err == nil && (c == nil || c.Issuer != "auth" || c.Audience != "registry") {
			t.Fatalf("Verify accepted a token with claims %+v", c)
		}
	})
}

func mustSignerTB(tb testing.TB, key crypto.Signer, chain []*x509.Certificate) *Signer {
	s, err := NewSigner(key, chain, DefaultSignerOptions())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
