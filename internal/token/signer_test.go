package token

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func decodeSegment(t *testing.T, seg string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment is not base64url: %v", err)
	}
	return b
}

func TestSignerHeaderAndSignature(t *testing.T) {
	for _, tt := range []struct{ kind, alg string }{
		{"rsa", "RS256"}, {"p256", "ES256"}, {"p384", "ES384"}, {"p521", "ES512"},
	} {
		for _, mode := range []KeyIDMode{KeyIDLibtrust, KeyIDThumbprint} {
			t.Run(tt.kind+"/"+mode.String(), func(t *testing.T) {
				key := testKey(t, tt.kind)
				cert := testCert(t, "token", key, false, nil, nil)
				s, err := NewSigner(key, []*x509.Certificate{cert}, SignerOptions{X5C: true, KeyID: mode})
				if err != nil {
					t.Fatal(err)
				}
				claims := NewClaims("issuer", "alice", "registry", time.Now(), time.Minute,
					[]ResourceActions{{Type: "repository", Name: "alpine", Actions: []string{"pull"}}})
				tok, err := s.Sign(claims)
				if err != nil {
					t.Fatal(err)
				}
				parts := strings.Split(tok, ".")
				if len(parts) != 3 {
					t.Fatalf("token has %d parts, want 3", len(parts))
				}

				// Header: exact key order and values.
				var wantKid string
				if mode == KeyIDThumbprint {
					b, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
					if err != nil {
						t.Fatal(err)
					}
					wantKid = base64.RawURLEncoding.EncodeToString(b)
				} else {
					wantKid = libtrustKIDIndependent(cert)
				}
				wantHeader := `{"typ":"JWT","alg":"` + tt.alg + `","kid":"` + wantKid + `","x5c":["` +
					base64.StdEncoding.EncodeToString(cert.Raw) + `"]}`
				if diff := cmp.Diff(wantHeader, string(decodeSegment(t, parts[0]))); diff != "" {
					t.Errorf("header mismatch (-want +got):\n%s", diff)
				}
				if s.KeyID() != wantKid || s.Algorithm() != tt.alg {
					t.Errorf("KeyID, Algorithm = %q, %q; want %q, %q", s.KeyID(), s.Algorithm(), wantKid, tt.alg)
				}

				// Claims: docker_auth's key order.
				payload := string(decodeSegment(t, parts[1]))
				wantPrefix := `{"iss":"issuer","sub":"alice","aud":"registry","exp":`
				if !strings.HasPrefix(payload, wantPrefix) || !strings.HasSuffix(payload,
					`,"jti":"`+claims.ID+`","access":[{"type":"repository","name":"alpine","actions":["pull"]}]}`) {
					t.Errorf("claims = %s, want docker_auth's key order", payload)
				}

				// Signature: go-jose verifies it with the public key.
				jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tt.alg)})
				if err != nil {
					t.Fatal(err)
				}
				got, err := jws.Verify(key.Public())
				if err != nil {
					t.Fatalf("go-jose cannot verify the signature: %v", err)
				}
				if string(got) != payload {
					t.Errorf("verified payload differs from the token's")
				}
			})
		}
	}
}

// libtrustKIDIndependent computes the libtrust key ID from the
// certificate's raw SubjectPublicKeyInfo, by a path that does not share
// code with LibtrustKeyID.
func libtrustKIDIndependent(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	enc := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	var b strings.Builder
	for i, r := range enc {
		if i > 0 && i%4 == 0 {
			b.WriteByte(':')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestLibtrustKeyIDShape(t *testing.T) {
	key := testKey(t, "p256")
	kid, err := LibtrustKeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	groups := strings.Split(kid, ":")
	if len(groups) != 12 {
		t.Fatalf("kid %q has %d groups, want 12", kid, len(groups))
	}
	for _, g := range groups {
		if len(g) != 4 {
			t.Errorf("group %q of %q is not 4 characters", g, kid)
		}
	}
}

func TestThumbprintMatchesGoJose(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"rsa", "p256", "p384", "p521", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			var pub any = edPub
			if kind != "ed25519" {
				pub = testKey(t, kind).Public()
			}
			got, err := Thumbprint(pub)
			if err != nil {
				t.Fatal(err)
			}
			b, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.RawURLEncoding.EncodeToString(b); got != want {
				t.Errorf("Thumbprint = %q, go-jose says %q", got, want)
			}
		})
	}
	// Two EC keys must not share a thumbprint (docker_auth's bug).
	a, _ := Thumbprint(testKey(t, "p256").Public())
	b, _ := Thumbprint(testKey(t, "p256").Public())
	if a == b {
		t.Errorf("two P-256 keys have the same thumbprint %q", a)
	}
}

func TestNewSignerRefuses(t *testing.T) {
	rsaKey := testKey(t, "rsa")
	other := testKey(t, "p256")
	cert := testCert(t, "token", rsaKey, false, nil, nil)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		run     func() error
		wantErr string
	}{
		{"ed25519", func() error {
			_, err := NewSigner(edKey, nil, SignerOptions{})
			return err
		}, "not supported"},
		{"small rsa", func() error {
			_, err := NewSigner(small, nil, SignerOptions{})
			return err
		}, "at least 2048"},
		{"key and cert differ", func() error {
			_, err := NewSigner(other, []*x509.Certificate{cert}, DefaultSignerOptions())
			return err
		}, "does not belong"},
		{"x5c without cert", func() error {
			_, err := NewSigner(rsaKey, nil, DefaultSignerOptions())
			return err
		}, "no certificate"},
		{"nil key", func() error {
			_, err := NewSigner(nil, nil, SignerOptions{})
			return err
		}, "no private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSignerNoX5CAndEmptyAccess(t *testing.T) {
	key := testKey(t, "p256")
	s, err := NewSigner(key, nil, SignerOptions{KeyID: KeyIDThumbprint})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(Claims{Issuer: "i", Access: []ResourceActions{{Type: "repository", Name: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if h := string(decodeSegment(t, parts[0])); strings.Contains(h, "x5c") {
		t.Errorf("header %s has x5c although it is off", h)
	}
	if p := string(decodeSegment(t, parts[1])); !strings.HasSuffix(p, `"access":[{"type":"repository","name":"a","actions":[]}]}`) {
		t.Errorf("claims %s: denied actions must be []", p)
	}
	tok, err = s.Sign(Claims{Issuer: "i"})
	if err != nil {
		t.Fatal(err)
	}
	if p := string(decodeSegment(t, strings.Split(tok, ".")[1])); !strings.HasSuffix(p, `"access":[]}`) {
		t.Errorf("claims %s: no access must be []", p)
	}
}

func TestPublicJWKS(t *testing.T) {
	for _, kind := range []string{"rsa", "p384"} {
		t.Run(kind, func(t *testing.T) {
			key := testKey(t, kind)
			s, err := NewSigner(key, nil, SignerOptions{KeyID: KeyIDThumbprint})
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.PublicJWKS()
			if err != nil {
				t.Fatal(err)
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(b, &set); err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 1 {
				t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
			}
			k := set.Keys[0]
			if k.KeyID != s.KeyID() || k.Use != "sig" || k.Algorithm != s.Algorithm() || !k.IsPublic() {
				t.Errorf("JWKS key = kid %q use %q alg %q public %v; want kid %q use sig alg %q public",
					k.KeyID, k.Use, k.Algorithm, k.IsPublic(), s.KeyID(), s.Algorithm())
			}
			if !publicKeysEqual(key.Public(), k.Key) {
				t.Errorf("JWKS key is not the signer's public key")
			}
		})
	}
}

func TestRandomID(t *testing.T) {
	a, b := RandomID(), RandomID()
	if len(a) != 32 || a == b {
		t.Errorf("RandomID() = %q, %q; want two different 32-digit values", a, b)
	}
}
