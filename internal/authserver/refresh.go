package authserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// Refresh tokens are stateless: "ghr1." + base64url(JSON payload) + "." +
// base64url(HMAC-SHA256(RefreshKey, "ghr1." + payload)). The payload is
// readable by its holder (it holds nothing the holder does not know) and
// cannot be changed without the key. They are bound to account, service
// and client_id, expire, and die with the signing key; for authenticators
// that can tell a password change without the password (static users),
// they are bound to the credential too and die with it.
const refreshPrefix = "ghr1."

// maxRefreshLen bounds what is parsed.
const maxRefreshLen = 16 << 10

type refreshClaims struct {
	Account       string       `json:"sub"`
	Service       string       `json:"aud"`
	ClientID      string       `json:"cid"`
	Authenticator string       `json:"authn"`
	Labels        authn.Labels `json:"labels,omitempty"`
	// Credential binds the token to the credential the login was checked
	// against, where the authenticator can tell it (see CredentialVersion).
	Credential string `json:"cred,omitempty"`
	IssuedAt   int64  `json:"iat"`
	Expiry     int64  `json:"exp"`
	ID         string `json:"jti"`
}

var (
	errRefreshMalformed = errors.New("refresh token is malformed")
	errRefreshSignature = errors.New("refresh token signature does not verify (tampered, or the signing key changed)")
	errRefreshExpired   = errors.New("refresh token has expired")
	errRefreshService   = errors.New("refresh token was issued for another service")
	errRefreshClient    = errors.New("refresh token was issued to another client_id")
	errRefreshDisabled  = errors.New("refresh tokens are not enabled")
)

func refreshMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func issueRefresh(key []byte, rc refreshClaims, now time.Time, ttl time.Duration) (string, error) {
	if len(key) == 0 {
		return "", errRefreshDisabled
	}
	rc.IssuedAt = now.Unix()
	rc.Expiry = now.Add(ttl).Unix()
	rc.ID = token.RandomID()
	b, err := json.Marshal(rc) //nolint:gosec // G117: "cred" is an HMAC that reveals nothing of the credential
	if err != nil {
		return "", err
	}
	msg := refreshPrefix + base64.RawURLEncoding.EncodeToString(b)
	return msg + "." + base64.RawURLEncoding.EncodeToString(refreshMAC(key, msg)), nil
}

// verifyRefresh checks a refresh token against key, the time, and the
// service and client_id of the request.
func verifyRefresh(key []byte, tok, service, clientID string, now time.Time) (*refreshClaims, error) {
	if len(key) == 0 {
		return nil, errRefreshDisabled
	}
	if len(tok) > maxRefreshLen || !strings.HasPrefix(tok, refreshPrefix) {
		return nil, errRefreshMalformed
	}
	dot := strings.LastIndexByte(tok, '.')
	if dot <= len(refreshPrefix) {
		return nil, errRefreshMalformed
	}
	msg, sig := tok[:dot], tok[dot+1:]
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, errRefreshMalformed
	}
	if !hmac.Equal(mac, refreshMAC(key, msg)) {
		return nil, errRefreshSignature
	}
	payload, err := base64.RawURLEncoding.DecodeString(msg[len(refreshPrefix):])
	if err != nil {
		return nil, errRefreshMalformed
	}
	var rc refreshClaims
	if err := json.Unmarshal(payload, &rc); err != nil {
		return nil, errRefreshMalformed
	}
	if now.Unix() >= rc.Expiry {
		return nil, errRefreshExpired
	}
	if rc.Service != service {
		return nil, errRefreshService
	}
	if rc.ClientID != clientID {
		return nil, errRefreshClient
	}
	return &rc, nil
}

// credentialMAC is the credential binding of a refresh token: HMAC-SHA256
// under the refresh key over a label, the authenticator, the account and
// the credential version, truncated to 128 bits and base64url-encoded.
// The holder learns nothing about the version (a bcrypt hash) from it.
func credentialMAC(key []byte, authenticator, account string, version secret.Secret) string {
	m := hmac.New(sha256.New, key)
	for _, part := range []string{"gatehouse refresh credential v1", authenticator, account, version.Reveal()} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part))) //nolint:gosec // lengths are far below 4 GiB
		m.Write(n[:])
		m.Write([]byte(part))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}
