package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

// KeyIDMode selects how a Signer computes the "kid" header.
type KeyIDMode int

const (
	// KeyIDLibtrust is the libtrust key ID registry 2.x looks up in its
	// rootcertbundle (docker_auth's default): SHA-256 of the DER
	// SubjectPublicKeyInfo, truncated to 30 bytes, base32 without padding,
	// in 12 groups of 4 joined by ":".
	KeyIDLibtrust KeyIDMode = iota
	// KeyIDThumbprint is the RFC 7638 JWK thumbprint (SHA-256,
	// base64url) that registry 3.x looks up (docker_auth's
	// disable_legacy_key_id: true).
	KeyIDThumbprint
)

// String returns the mode's name.
func (m KeyIDMode) String() string {
	switch m {
	case KeyIDLibtrust:
		return "libtrust"
	case KeyIDThumbprint:
		return "thumbprint"
	}
	return fmt.Sprintf("KeyIDMode(%d)", int(m))
}

// LibtrustKeyID returns the libtrust key ID of a public key.
func LibtrustKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key ID: %w", err)
	}
	sum := sha256.Sum256(der)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:30])
	groups := make([]string, 0, len(enc)/4)
	for i := 0; i < len(enc); i += 4 {
		groups = append(groups, enc[i:i+4])
	}
	return strings.Join(groups, ":"), nil
}

// Thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of an RSA, ECDSA
// or Ed25519 public key, base64url-encoded without padding. For ECDSA keys
// it uses the key's own X and Y coordinates, padded to the curve's size.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	var canonical string
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		e := big.NewInt(int64(k.E)).Bytes()
		canonical = fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, b64(e), b64(k.N.Bytes()))
	case *ecdsa.PublicKey:
		crv, err := curveName(k.Curve)
		if err != nil {
			return "", err
		}
		// Bytes is the uncompressed point 0x04 || X || Y, each padded to
		// the curve's size, which is what RFC 7518 wants for x and y.
		pt, err := k.Bytes()
		if err != nil {
			return "", fmt.Errorf("thumbprint: %w", err)
		}
		size := (len(pt) - 1) / 2
		x, y := pt[1:1+size], pt[1+size:]
		canonical = fmt.Sprintf(`{"crv":"%s","kty":"EC","x":"%s","y":"%s"}`, crv, b64(x), b64(y))
	case ed25519.PublicKey:
		canonical = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":"%s"}`, b64(k))
	default:
		return "", fmt.Errorf("thumbprint: unsupported key type %T", pub)
	}
	sum := sha256.Sum256([]byte(canonical))
	return b64(sum[:]), nil
}

func curveName(c elliptic.Curve) (string, error) {
	switch c {
	case elliptic.P256():
		return "P-256", nil
	case elliptic.P384():
		return "P-384", nil
	case elliptic.P521():
		return "P-521", nil
	}
	return "", fmt.Errorf("unsupported elliptic curve %s", c.Params().Name)
}

func keyID(mode KeyIDMode, pub crypto.PublicKey) (string, error) {
	switch mode {
	case KeyIDLibtrust:
		return LibtrustKeyID(pub)
	case KeyIDThumbprint:
		return Thumbprint(pub)
	}
	return "", fmt.Errorf("unknown key ID mode %d", int(mode))
}
