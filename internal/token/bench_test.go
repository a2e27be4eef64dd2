package token

import (
	"crypto/x509"
	"testing"
	"time"
)

func benchSigner(b *testing.B, kind string) (*Signer, *x509.Certificate) {
	key := testKey(b, kind)
	cert := testCert(b, "token", key, false, nil, nil)
	return mustSignerTB(b, key, []*x509.Certificate{cert}), cert
}

func benchSign(b *testing.B, kind string) {
	s, _ := benchSigner(b, kind)
	c := testClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignRS256 measures issuing one RSA-2048 token.
func BenchmarkSignRS256(b *testing.B) { benchSign(b, "rsa") }

// BenchmarkSignES256 measures issuing one P-256 token.
func BenchmarkSignES256(b *testing.B) { benchSign(b, "p256") }

// BenchmarkVerify measures verifying a P-256 token with an x5c header
// against a bundle holding its certificate (the signature cache emptied
// every time; BenchmarkVerifyCached measures a repeated token).
func BenchmarkVerify(b *testing.B) { benchVerify(b, false) }

// BenchmarkVerifyCached measures verifying a token already verified once.
func BenchmarkVerifyCached(b *testing.B) { benchVerify(b, true) }

func benchVerify(b *testing.B, cached bool) {
	s, cert := benchSigner(b, "p256")
	v, err := NewVerifier(VerifierOptions{Issuer: "auth", Service: "registry", RootCerts: []*x509.Certificate{cert}, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := s.Sign(NewClaims("auth", "alice", "registry", time.Now(), time.Hour, nil))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !cached {
			v.sigs.reset()
		}
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
