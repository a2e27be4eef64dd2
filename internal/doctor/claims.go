package doctor

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-registry/gatehouse/internal/token"
)

// tokenHeader is the part of a JOSE header the checks look at.
type tokenHeader struct {
	Alg string          `json:"alg"`
	Typ string          `json:"typ"`
	Kid string          `json:"kid"`
	X5C []string        `json:"x5c"`
	JWK json.RawMessage `json:"jwk"`
}

// audience is a JWT "aud": a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New(`"aud" is neither a string nor an array of strings`)
	}
	*a = many
	return nil
}

// tokenClaims are a registry token's claims. Times are seconds since the
// epoch; nil when absent.
type tokenClaims struct {
	Issuer    string                  `json:"iss"`
	Subject   string                  `json:"sub"`
	Audience  audience                `json:"aud"`
	Expiry    *json.Number            `json:"exp"`
	NotBefore *json.Number            `json:"nbf"`
	IssuedAt  *json.Number            `json:"iat"`
	Access    []token.ResourceActions `json:"access"`
}

// tokenInfo is a decoded (not verified) token.
type tokenInfo struct {
	header tokenHeader
	claims tokenClaims
	chain  []*x509.Certificate // from x5c, leaf first
	raw    string              // the token itself; never printed
}

// decodeToken splits and decodes a compact JWS without verifying it.
func decodeToken(tok string) (*tokenInfo, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("want header.claims.signature, got %d part(s)", len(parts))
	}
	info := &tokenInfo{raw: tok}
	for i, dst := range []any{&info.header, &info.claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("part %d is not base64url", i+1)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			return nil, fmt.Errorf("part %d is not the expected JSON: %w", i+1, err)
		}
	}
	for i, c := range info.header.X5C {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return nil, fmt.Errorf("x5c certificate %d is not base64", i+1)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c certificate %d: %w", i+1, err)
		}
		info.chain = append(info.chain, cert)
	}
	return info, nil
}

// epoch returns a NumericDate claim as a time.
func epoch(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

func (c *tokenClaims) hasAudience(s string) bool {
	for _, a := range c.Audience {
		if a == s {
			return true
		}
	}
	return false
}

// grants reports whether the access claim grants action on typ:name ("*"
// grants everything).
func (info *tokenInfo) grants(typ, name, action string) bool {
	for _, ra := range info.claims.Access {
		if ra.Type != typ || ra.Name != name {
			continue
		}
		for _, a := range ra.Actions {
			if a == "*" || a == action {
				return true
			}
		}
	}
	return false
}

var (
	libtrustKid   = regexp.MustCompile(`^[A-Z2-7]{4}(:[A-Z2-7]{4}){11}$`)
	thumbprintKid = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

// KidForm classifies a kid: "libtrust" (registry 2.x's key IDs,
// XXXX:XXXX:... in 12 groups), "thumbprint" (an RFC 7638 SHA-256 JWK
// thumbprint, 43 base64url characters), "" when empty, or "other".
func KidForm(kid string) string {
	switch {
	case kid == "":
		return ""
	case libtrustKid.MatchString(kid):
		return "libtrust"
	case thumbprintKid.MatchString(kid):
		return "thumbprint"
	}
	return "other"
}

// describeKey says which key signed the token and which registry
// generations can find it.
func (info *tokenInfo) describeKey() string {
	h := info.header
	form := KidForm(h.Kid)
	if len(info.chain) > 0 {
		leaf := info.chain[0]
		s := fmt.Sprintf("x5c chain of %d (signing certificate %s issued by %s)", len(info.chain), name(leaf.Subject.String()), name(leaf.Issuer.String()))
		if form != "" {
			s += ", " + form + " kid" + info.kidMatch()
		}
		return s + ": registry 2.x and 3.x accept it when auth.token.rootcertbundle holds the signing certificate or its CA"
	}
	switch form {
	case "libtrust":
		return "no x5c, libtrust kid " + h.Kid + ": registry 2.x accepts it when rootcertbundle holds the signing certificate itself; registry 3.x refuses it (unless its jwks lists this kid)"
	case "thumbprint":
		return "no x5c, RFC 7638 thumbprint kid " + h.Kid + ": registry 3.x accepts it (signing certificate in rootcertbundle, or jwks); registry 2.x refuses it"
	case "other":
		return fmt.Sprintf("no x5c, kid %q (neither libtrust nor RFC 7638 form): only a registry 3.x jwks with that kid can match it", h.Kid)
	}
	if len(h.JWK) > 0 {
		return "no x5c and no kid, only a jwk header: registries accept it only when that key is in their trust store"
	}
	return "no x5c, no kid, no jwk: no registry can tell which key signed it"
}

// kidMatch says whether the kid is the x5c leaf's key ID.
func (info *tokenInfo) kidMatch() string {
	pub := info.chain[0].PublicKey
	lt, err1 := token.LibtrustKeyID(pub)
	tp, err2 := token.Thumbprint(pub)
	if (err1 == nil && lt == info.header.Kid) || (err2 == nil && tp == info.header.Kid) {
		return " of that certificate's key"
	}
	return " that is NOT that certificate's key (registries look at x5c first, so it is ignored there)"
}

// keyAdvice says what the registry must hold to trust the token's key.
func (info *tokenInfo) keyAdvice() string {
	h := info.header
	if len(info.chain) > 0 {
		leaf, top := info.chain[0], info.chain[len(info.chain)-1]
		ca := top.Issuer.String()
		if isSelfSigned(top) {
			ca = top.Subject.String()
		}
		return fmt.Sprintf("the token carries x5c, so auth.token.rootcertbundle must contain the token signing certificate (%s) or its CA (%s); a bundle with another CA or an old certificate is refused",
			name(leaf.Subject.String()), name(ca))
	}
	switch KidForm(h.Kid) {
	case "libtrust":
		return "the token has no x5c and a libtrust kid, so registry 2.x needs the token signing certificate itself in auth.token.rootcertbundle (its CA is not enough), and registry 3.x refuses it: turn x5c on (token.x5c: true, Gatehouse's default) or set token.disable_legacy_key_id: true for 3.x"
	case "thumbprint":
		return "the token has no x5c and an RFC 7638 kid, so registry 3.x needs the token signing certificate itself in auth.token.rootcertbundle, or the auth server's JWKS in auth.token.jwks, and registry 2.x refuses it: turn x5c on (token.x5c: true) to serve both"
	}
	return "the token names its key in a way registries do not look up: turn x5c on (token.x5c: true)"
}

// checkSignature verifies the token with its x5c leaf key (when it has
// one): a token that does not verify with its own certificate is refused
// by every registry.
func (info *tokenInfo) checkSignature() error {
	if len(info.chain) == 0 {
		return nil
	}
	jws, err := jose.ParseSignedCompact(info.raw, []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
	})
	if err != nil {
		return err
	}
	_, err = jws.Verify(info.chain[0].PublicKey)
	return err
}

// checkClaims looks at the token's audience, issuer, lifetime against the
// three clocks involved, and its header.
func (r *run) checkClaims(_ context.Context) Result {
	if r.info == nil {
		return skip("%s", r.noTokenReason())
	}
	info := r.info
	c := info.claims
	h := info.header

	if !c.hasAudience(r.service) {
		aud := strings.Join(c.Audience, `", "`)
		return failf(fmt.Sprintf("make both sides use one name: the service the auth server issues tokens for (token.service where the auth server has one) and the registry's auth.token.service must be the same value, now %q vs %q", aud, r.service),
			"token audience %q but the registry expects service %q", aud, r.service)
	}
	if c.Issuer == "" {
		return failf("set token.issuer in auth_config.yml, and the same value as auth.token.issuer in the registry's config.yml",
			"the token has no issuer (iss)")
	}
	switch alg := h.Alg; {
	case alg == "" || strings.EqualFold(alg, "none"):
		return failf("the auth server must sign its tokens (RS256 or ES256)", "the token is not signed (alg %q)", alg)
	case strings.HasPrefix(alg, "HS"):
		return failf("sign tokens with an RSA or ECDSA key and certificate", "the token uses %s, a shared-secret algorithm registries do not accept from a certificate bundle", alg)
	}

	exp, hasExp := epoch(c.Expiry)
	if !hasExp {
		return failf("the auth server must set exp (token.expiration in auth_config.yml)", "the token has no expiry (exp)")
	}
	nbf, hasNbf := epoch(c.NotBefore)
	iat, hasIat := epoch(c.IssuedAt)

	now := r.now()
	clocks := r.clockSummary(iat, hasIat)
	regNow := now.Add(r.regOffset) // the registry's clock (this machine's if it sent no Date)
	const clockFix = "synchronise the clocks of the auth server and registry hosts (NTP: chrony or systemd-timesyncd); registries allow only 60 s of leeway on a token's nbf and exp"
	if hasNbf && nbf.After(regNow.Add(registryLeeway)) {
		return failf(clockFix, "the token is not valid yet for the registry: nbf %s is %s ahead of the registry's clock (%s); the auth server's clock runs ahead",
			nbf.UTC().Format(time.RFC3339), roundDur(nbf.Sub(regNow)), clocks)
	}
	if exp.Before(regNow.Add(-registryLeeway)) {
		return failf(clockFix+"; or raise token.expiration if tokens are issued with a lifetime that is too short",
			"the token has expired for the registry: exp %s is %s behind the registry's clock (%s)",
			exp.UTC().Format(time.RFC3339), roundDur(regNow.Sub(exp)), clocks)
	}
	if authOff, ok := r.authClock(iat, hasIat); ok && r.regDated {
		if skew := authOff - r.regOffset; skew > MaxSkew || skew < -MaxSkew {
			dir := "ahead of"
			if skew < 0 {
				dir, skew = "behind", -skew
			}
			return failf(clockFix, "clock skew: the auth server's clock is %s %s the registry's (%s)", roundDur(skew), dir, clocks)
		}
	}

	if len(info.chain) == 0 && h.Kid == "" && len(h.JWK) == 0 {
		return failf("turn x5c on (token.x5c: true) or give the token a kid", "the token names no signing key: no x5c, no kid, no jwk")
	}
	if err := info.checkSignature(); err != nil {
		return failf("the auth server signs with a key that does not belong to the first certificate of its token certificate file; put the matching certificate first",
			"the token's signature does not verify with its own x5c certificate: %v", err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "iss %q, sub %q, aud %q = the registry's service", c.Issuer, c.Subject, r.service)
	left := exp.Sub(regNow)
	fmt.Fprintf(&b, "; valid %s more", roundDur(left))
	if hasIat && exp.Sub(iat) < 5*time.Minute {
		fmt.Fprintf(&b, " (a lifetime of only %s: long pushes may outlive it; raise token.expiration)", exp.Sub(iat))
	}
	fmt.Fprintf(&b, "; %s", clocks)
	if note := r.localClockNote(iat, hasIat); note != "" {
		b.WriteString(note)
	}
	fmt.Fprintf(&b, "; header %s, %s", h.Alg, info.describeKey())
	fmt.Fprintf(&b, "; access %s", accessSummary(c.Access))
	return ok("%s", b.String())
}

// authClock is the auth server's clock minus the local one: from the
// token's iat (the auth server's own time) or else its Date header.
func (r *run) authClock(iat time.Time, hasIat bool) (time.Duration, bool) {
	if hasIat {
		// iat was taken on the auth server a moment before the answer
		// arrived (r.tokAt).
		return iat.Sub(r.tokAt.Truncate(time.Second)), true
	}
	return r.authOffset, r.authDated
}

// signedDur formats a clock offset. Offsets are measured to a second or
// two (Date headers and iat have one-second resolution), so they are shown
// as whole seconds, under 2 s as 0, and from a minute up to 5 s.
func signedDur(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d < 2*time.Second:
		return "+0s"
	case d < time.Minute:
		d = d.Round(time.Second)
	default:
		d = d.Round(5 * time.Second)
	}
	return sign + d.String()
}

// clockSummary describes the registry's and auth server's clocks relative
// to this machine's.
func (r *run) clockSummary(iat time.Time, hasIat bool) string {
	parts := []string{}
	if r.regDated {
		parts = append(parts, "registry "+signedDur(r.regOffset))
	} else {
		parts = append(parts, "registry clock unknown (no Date header)")
	}
	if off, ok := r.authClock(iat, hasIat); ok {
		parts = append(parts, "auth server "+signedDur(off))
	} else {
		parts = append(parts, "auth server clock unknown")
	}
	return "clocks against this machine: " + strings.Join(parts, ", ")
}

// localClockNote reports this machine's own clock when both servers agree
// with each other but not with it (harmless for tokens, but TLS
// certificate dates are checked against it).
func (r *run) localClockNote(iat time.Time, hasIat bool) string {
	authOff, ok := r.authClock(iat, hasIat)
	if !ok || !r.regDated {
		return ""
	}
	if (r.regOffset > MaxSkew || r.regOffset < -MaxSkew) && (authOff > MaxSkew || authOff < -MaxSkew) {
		return " (this machine's clock is off by about " + roundDur(abs(r.regOffset)) + ": set it, TLS date checks use it)"
	}
	return ""
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func accessSummary(access []token.ResourceActions) string {
	if len(access) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(access))
	for _, ra := range access {
		acts := append([]string(nil), ra.Actions...)
		sort.Strings(acts)
		s := ra.Type + ":" + ra.Name + ":" + strings.Join(acts, ",")
		if len(acts) == 0 {
			s = ra.Type + ":" + ra.Name + ": nothing granted"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
