package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/go-jose/go-jose/v4"
)

// SignerOptions tune the header of the tokens a Signer issues.
type SignerOptions struct {
	// X5C includes the "x5c" header: the base64 DER of the signing
	// certificate followed by its chain. Registry 2.x and 3.x both trust a
	// token by its x5c chain first, whether their rootcertbundle holds the
	// signing certificate itself or a CA that issued it. On by default (see
	// DefaultSignerOptions).
	X5C bool
	// KeyID selects the "kid" header: KeyIDLibtrust (registry 2.x; the
	// zero value, as in docker_auth) or KeyIDThumbprint (registry 3.x).
	KeyID KeyIDMode
}

// DefaultSignerOptions returns the options Gatehouse uses unless configured
// otherwise: x5c included and the libtrust kid, which registry 2.x and 3.x
// both accept.
func DefaultSignerOptions() SignerOptions {
	return SignerOptions{X5C: true, KeyID: KeyIDLibtrust}
}

// Signer issues signed registry tokens (compact JWS). It is safe for
// concurrent use.
type Signer struct {
	key    crypto.Signer
	alg    jose.SignatureAlgorithm
	hash   crypto.Hash
	size   int // ECDSA: bytes per coordinate in the JOSE signature
	kid    string
	header string // base64url of the encoded header
	pub    crypto.PublicKey
}

// header is the JOSE header in docker_auth's key order, with x5c last.
type header struct {
	Typ string   `json:"typ"`
	Alg string   `json:"alg"`
	Kid string   `json:"kid"`
	X5C []string `json:"x5c,omitempty"`
}

// NewSigner returns a Signer for key. chain is the token certificate file's
// content, leaf first then intermediates; the leaf must hold key's public
// key. RSA keys sign with RS256, ECDSA P-256/P-384/P-521 keys with
// ES256/ES384/ES512; other keys are refused. chain may be empty only when
// opts.X5C is false.
func NewSigner(key crypto.Signer, chain []*x509.Certificate, opts SignerOptions) (*Signer, error) {
	if key == nil {
		return nil, errors.New("token signer: no private key")
	}
	pub := key.Public()
	s := &Signer{key: key, pub: pub}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("token signer: RSA key has %d bits, want at least 2048", k.N.BitLen())
		}
		s.alg, s.hash = jose.RS256, crypto.SHA256
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			s.alg, s.hash, s.size = jose.ES256, crypto.SHA256, 32
		case elliptic.P384():
			s.alg, s.hash, s.size = jose.ES384, crypto.SHA384, 48
		case elliptic.P521():
			s.alg, s.hash, s.size = jose.ES512, crypto.SHA512, 66
		default:
			return nil, fmt.Errorf("token signer: ECDSA curve %s is not supported (use P-256, P-384 or P-521)", k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("token signer: %T keys are not supported; registries accept RSA or ECDSA (P-256, P-384, P-521) token keys", pub)
	}
	if len(chain) > 0 {
		if !publicKeysEqual(pub, chain[0].PublicKey) {
			return nil, errors.New("token signer: the private key does not belong to the first certificate of the chain")
		}
	} else if opts.X5C {
		return nil, errors.New("token signer: x5c is on but no certificate was given")
	}
	kid, err := keyID(opts.KeyID, pub)
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	s.kid = kid
	h := header{Typ: "JWT", Alg: string(s.alg), Kid: kid}
	if opts.X5C {
		for _, c := range chain {
			h.X5C = append(h.X5C, base64.StdEncoding.EncodeToString(c.Raw))
		}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	s.header = base64.RawURLEncoding.EncodeToString(hb)
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// Algorithm returns the JWS algorithm the Signer uses (RS256, ES256, ...).
func (s *Signer) Algorithm() string { return string(s.alg) }

// KeyID returns the "kid" header of the Signer's tokens.
func (s *Signer) KeyID() string { return s.kid }

// Public returns the public key tokens verify with.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign returns the compact JWS of claims. A nil Access or Actions is
// written as [].
func (s *Signer) Sign(claims Claims) (string, error) {
	payload, err := json.Marshal(claims.normalized())
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	input := s.header + "." + base64.RawURLEncoding.EncodeToString(payload)
	h := s.hash.New()
	h.Write([]byte(input))
	sig, err := s.key.Sign(rand.Reader, h.Sum(nil), s.hash)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	if s.size > 0 {
		if sig, err = joseECDSASignature(sig, s.size); err != nil {
			return "", fmt.Errorf("sign token: %w", err)
		}
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// joseECDSASignature turns an ASN.1 ECDSA signature, as crypto.Signer
// returns it, into JOSE's fixed-size r || s.
func joseECDSASignature(der []byte, size int) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil {
		return nil, errors.New("malformed ECDSA signature from the key")
	}
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > size*8 || rs.S.BitLen() > size*8 {
		return nil, errors.New("ECDSA signature out of range")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// PublicJWKS returns a JSON Web Key Set holding the Signer's public key
// under the same kid its tokens carry, with "use": "sig" and "alg", for
// registry 3's auth.token.jwks.
func (s *Signer) PublicJWKS() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       s.pub,
		KeyID:     s.kid,
		Algorithm: string(s.alg),
		Use:       "sig",
	}}}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("public JWKS: %w", err)
	}
	return b, nil
}
