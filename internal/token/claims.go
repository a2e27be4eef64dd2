package token

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// ResourceActions is one entry of a token's "access" claim: the actions
// granted on one resource. Actions is empty (never null) when nothing was
// granted.
type ResourceActions struct {
	Type    string   `json:"type"`
	Class   string   `json:"class,omitempty"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Claims is the claim set of a registry token. Its fields marshal in the
// order docker_auth writes them: iss, sub, aud, exp, nbf, iat, jti, access.
// Times are seconds since the Unix epoch.
type Claims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  string            `json:"aud"`
	Expiry    int64             `json:"exp"`
	NotBefore int64             `json:"nbf"`
	IssuedAt  int64             `json:"iat"`
	ID        string            `json:"jti"`
	Access    []ResourceActions `json:"access"`
}

// NotBeforeSkew is how far before the issue time a token becomes valid, to
// tolerate clocks that run slightly behind (docker_auth uses the same 10 s).
const NotBeforeSkew = 10 * time.Second

// NewClaims returns the claims of a token issued now for subject, valid for
// ttl, with a fresh random ID.
func NewClaims(issuer, subject, audience string, now time.Time, ttl time.Duration, access []ResourceActions) Claims {
	return Claims{
		Issuer:    issuer,
		Subject:   subject,
		Audience:  audience,
		Expiry:    now.Add(ttl).Unix(),
		NotBefore: now.Add(-NotBeforeSkew).Unix(),
		IssuedAt:  now.Unix(),
		ID:        RandomID(),
		Access:    access,
	}
}

// normalized returns c with a non-nil Access and non-nil Actions, so that
// they marshal as [] rather than null.
func (c Claims) normalized() Claims {
	access := make([]ResourceActions, len(c.Access))
	for i, ra := range c.Access {
		if ra.Actions == nil {
			ra.Actions = []string{}
		}
		access[i] = ra
	}
	c.Access = access
	return c
}

// RandomID returns 128 random bits from crypto/rand as 32 hex digits, for
// token IDs (jti).
func RandomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics if the OS has no randomness).
	return hex.EncodeToString(b[:])
}
