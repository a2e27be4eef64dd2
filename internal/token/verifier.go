package token

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Errors Verify wraps, one per check, so callers can tell them apart with
// errors.Is. None of the messages contain the token.
var (
	ErrMalformed     = errors.New("malformed token")
	ErrAlgorithm     = errors.New("token signing algorithm not allowed")
	ErrUntrustedKey  = errors.New("token signed by an untrusted key")
	ErrSignature     = errors.New("token signature is invalid")
	ErrIssuer        = errors.New("token issuer not accepted")
	ErrAudience      = errors.New("token audience not accepted")
	ErrExpired       = errors.New("token has expired")
	ErrNotYetValid   = errors.New("token is not valid yet")
	errNoTrustAnchor = errors.New("token verifier: no root certificates and no JWKS keys to trust")
)

// DefaultLeeway is the clock skew tolerated on exp and nbf, as in the
// registries.
const DefaultLeeway = 60 * time.Second

// maxTokenSize bounds what Verify will parse.
const maxTokenSize = 256 << 10

// DefaultAlgorithms are the asymmetric JWS algorithms Verify accepts
// unless VerifierOptions.Algorithms narrows them. HMAC and "none" are never
// accepted.
var DefaultAlgorithms = []string{
	string(jose.RS256), string(jose.RS384), string(jose.RS512),
	string(jose.PS256), string(jose.PS384), string(jose.PS512),
	string(jose.ES256), string(jose.ES384), string(jose.ES512),
	string(jose.EdDSA),
}

// VerifierOptions configure a Verifier like a registry's auth.token section.
type VerifierOptions struct {
	// Issuer must equal the token's iss.
	Issuer string
	// Service must be in the token's aud. Services lists further accepted
	// audiences. At least one must be set.
	Service  string
	Services []string
	// RootCerts (rootcertbundle) are trusted: as anchors for an x5c chain,
	// and by the RFC 7638 thumbprint and libtrust key ID of their keys.
	RootCerts []*x509.Certificate
	// JWKS is a JSON Web Key Set whose public keys are trusted by their kid.
	JWKS []byte
	// Leeway is the tolerated clock skew for exp and nbf; 0 means
	// DefaultLeeway, a negative value means none.
	Leeway time.Duration
	// Algorithms narrows the accepted algorithms (default
	// DefaultAlgorithms). HS256/384/512 and none are refused.
	Algorithms []string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verifier checks registry tokens as registry 3.x does, plus registry
// 2.x's libtrust key IDs. It is safe for concurrent use.
type Verifier struct {
	issuer    string
	audiences []string
	roots     *x509.CertPool
	keys      map[string]crypto.PublicKey // by thumbprint, libtrust kid or JWKS kid
	algs      []jose.SignatureAlgorithm
	leeway    time.Duration
	now       func() time.Time
	sigs      sigCache
}

// NewVerifier checks opts and returns a Verifier.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	v := &Verifier{
		issuer: opts.Issuer,
		roots:  x509.NewCertPool(),
		keys:   map[string]crypto.PublicKey{},
		leeway: opts.Leeway,
		now:    opts.Now,
	}
	if v.issuer == "" {
		return nil, errors.New("token verifier: issuer is required")
	}
	for _, s := range append([]string{opts.Service}, opts.Services...) {
		if s != "" {
			v.audiences = append(v.audiences, s)
		}
	}
	if len(v.audiences) == 0 {
		return nil, errors.New("token verifier: service is required")
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.now == nil {
		v.now = time.Now
	}
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	for _, a := range algs {
		if !slices.Contains(DefaultAlgorithms, a) {
			return nil, fmt.Errorf("token verifier: algorithm %q is not allowed (choose from %s)", a, strings.Join(DefaultAlgorithms, ", "))
		}
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	for i, c := range opts.RootCerts {
		v.roots.AddCert(c)
		tp, err := Thumbprint(c.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("token verifier: root certificate %d (%s): %w", i+1, c.Subject, err)
		}
		v.keys[tp] = c.PublicKey
		if lt, err := LibtrustKeyID(c.PublicKey); err == nil {
			v.keys[lt] = c.PublicKey
		}
	}
	if len(opts.JWKS) > 0 {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(opts.JWKS, &set); err != nil {
			return nil, fmt.Errorf("token verifier: JWKS: %w", err)
		}
		for i, k := range set.Keys {
			if k.KeyID == "" {
				return nil, fmt.Errorf("token verifier: JWKS key %d has no kid", i+1)
			}
			if _, ok := k.Key.([]byte); ok {
				return nil, fmt.Errorf("token verifier: JWKS key %q is symmetric, not an asymmetric public key", k.KeyID)
			}
			if !k.Valid() {
				return nil, fmt.Errorf("token verifier: JWKS key %q is not a valid key", k.KeyID)
			}
			pub := k.Public()
			if !pub.Valid() || pub.Key == nil {
				return nil, fmt.Errorf("token verifier: JWKS key %q is not an asymmetric public key", k.KeyID)
			}
			v.keys[k.KeyID] = pub.Key
		}
	}
	if len(v.keys) == 0 {
		return nil, errNoTrustAnchor
	}
	return v, nil
}

// wireClaims is the claim set as it arrives: aud may be a string or an
// array, and times may be written as floats.
type wireClaims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  json.RawMessage   `json:"aud"`
	Expiry    *json.Number      `json:"exp"`
	NotBefore *json.Number      `json:"nbf"`
	IssuedAt  *json.Number      `json:"iat"`
	ID        string            `json:"jti"`
	Access    []ResourceActions `json:"access"`
}

// Verify checks the token's algorithm, signing key, signature, issuer,
// audience and validity period, and returns its claims. Claims.Audience is
// the accepted audience (aud may list several). The error wraps one of the
// Err* values of this package.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if len(token) > maxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxTokenSize)
	}
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS (header.payload.signature)", ErrMalformed)
	}
	ck := sigKey(token)
	if c, ok := v.sigs.get(ck, v.now()); ok {
		if err := v.checkTimes(c); err != nil {
			return nil, err
		}
		return c, nil
	}
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return nil, fmt.Errorf("%w: %q", ErrAlgorithm, truncate(string(ua.Got), 32))
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrMalformed)
	}
	h := jws.Signatures[0].Header

	key, notAfter, err := v.signingKey(h)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, ErrSignature
	}
	c, err := v.checkClaims(payload)
	if err != nil {
		return nil, err
	}
	v.sigs.put(ck, c, v.now(), notAfter)
	return c, nil
}

// signingKey finds the trusted key of a token: its x5c chain if present,
// else its kid. For a chain it also returns the earliest NotAfter in it.
func (v *Verifier) signingKey(h jose.Header) (crypto.PublicKey, time.Time, error) {
	chains, err := h.Certificates(x509.VerifyOptions{
		Roots:       v.roots,
		CurrentTime: v.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	switch {
	case err == nil:
		notAfter := chains[0][0].NotAfter
		for _, c := range chains[0][1:] {
			if c.NotAfter.Before(notAfter) {
				notAfter = c.NotAfter
			}
		}
		return chains[0][0].PublicKey, notAfter, nil
	case !errors.Is(err, jose.ErrMissingX5cHeader):
		return nil, time.Time{}, fmt.Errorf("%w: x5c certificate chain: %w", ErrUntrustedKey, err)
	}
	if h.KeyID == "" {
		return nil, time.Time{}, fmt.Errorf("%w: no x5c and no kid header", ErrUntrustedKey)
	}
	key, ok := v.keys[h.KeyID]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%w: no trusted key has ID %q", ErrUntrustedKey, truncate(h.KeyID, 64))
	}
	return key, time.Time{}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (v *Verifier) checkClaims(payload []byte) (*Claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var w wireClaims
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	c := &Claims{Issuer: w.Issuer, Subject: w.Subject, ID: w.ID, Access: w.Access}
	var err error
	if c.Expiry, err = numericDate("exp", w.Expiry, true); err != nil {
		return nil, err
	}
	if c.NotBefore, err = numericDate("nbf", w.NotBefore, false); err != nil {
		return nil, err
	}
	if c.IssuedAt, err = numericDate("iat", w.IssuedAt, false); err != nil {
		return nil, err
	}

	if c.Issuer != v.issuer {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrIssuer, truncate(c.Issuer, 128), v.issuer)
	}
	if c.Audience, err = v.audience(w.Audience); err != nil {
		return nil, err
	}
	if err := v.checkTimes(c); err != nil {
		return nil, err
	}
	return c, nil
}

// checkTimes checks exp and nbf (absent: 0, the epoch) against now.
func (v *Verifier) checkTimes(c *Claims) error {
	now := v.now()
	if exp := time.Unix(c.Expiry, 0); now.After(exp.Add(v.leeway)) {
		return fmt.Errorf("%w: at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	if nbf := time.Unix(c.NotBefore, 0); now.Add(v.leeway).Before(nbf) {
		return fmt.Errorf("%w: valid from %s", ErrNotYetValid, nbf.UTC().Format(time.RFC3339))
	}
	return nil
}

func (v *Verifier) audience(raw json.RawMessage) (string, error) {
	var auds []string
	var one string
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("%w: no aud claim", ErrAudience)
	}
	if err := json.Unmarshal(raw, &one); err == nil {
		auds = []string{one}
	} else if err := json.Unmarshal(raw, &auds); err != nil {
		return "", fmt.Errorf("%w: aud is neither a string nor an array of strings", ErrMalformed)
	}
	for _, a := range auds {
		if slices.Contains(v.audiences, a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w: want %q", ErrAudience, strings.Join(v.audiences, `" or "`))
}

func numericDate(name string, n *json.Number, required bool) (int64, error) {
	if n == nil {
		if required {
			return 0, fmt.Errorf("%w: no %s claim", ErrMalformed, name)
		}
		return 0, nil
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < math.MinInt64 || f > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %s is not a number of seconds", ErrMalformed, name)
	}
	return int64(f), nil
}
