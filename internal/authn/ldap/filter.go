package ldap

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// buildFilter replaces ${account} and ${dn} in template with the values
// escaped for an LDAP filter (RFC 4515: parentheses, '*', '\', NUL and every
// byte outside ASCII become \xx). The replacement is done in one pass, so a
// value that itself contains "${dn}" is not substituted again.
func buildFilter(template, account, dn string) string {
	return strings.NewReplacer(
		"${account}", goldap.EscapeFilter(account),
		"${dn}", goldap.EscapeFilter(dn),
	).Replace(template)
}

// buildBindDN replaces ${account} in a bind DN template with the account
// escaped for a DN (RFC 4514).
func buildBindDN(template, account string) string {
	return strings.ReplaceAll(template, "${account}", goldap.EscapeDN(account))
}

// checkFilter reports whether template compiles as an LDAP filter once its
// placeholders are filled in.
func checkFilter(template string) error {
	f := buildFilter(template, "account", "cn=user,dc=example,dc=com")
	if !strings.HasPrefix(f, "(") {
		return fmt.Errorf("%q must be enclosed in parentheses", template)
	}
	if _, err := goldap.CompileFilter(f); err != nil {
		return fmt.Errorf("%q is not a valid LDAP filter: %w", template, unwrapLDAP(err))
	}
	return nil
}

// checkDN reports whether dn parses as a distinguished name.
func checkDN(dn string) error {
	if _, err := goldap.ParseDN(dn); err != nil {
		return fmt.Errorf("%q is not a valid DN: %w", dn, unwrapLDAP(err))
	}
	return nil
}

// errNoCN is returned by firstCN for a DN without a CN attribute.
var errNoCN = errors.New("the DN has no CN")

// firstCN returns the value of the first CN attribute in dn, reading from
// the left (the most specific RDN), as docker_auth's parse_cn does:
// "CN=Ops,OU=Groups,DC=example,DC=com" gives "Ops". A DN that does not
// parse or has no CN is an error; it never panics.
func firstCN(dn string) (string, error) {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return "", fmt.Errorf("malformed DN: %w", unwrapLDAP(err))
	}
	for _, rdn := range parsed.RDNs {
		for _, atv := range rdn.Attributes {
			if strings.EqualFold(atv.Type, "cn") || atv.Type == "2.5.4.3" {
				return atv.Value, nil
			}
		}
	}
	return "", errNoCN
}

// unwrapLDAP returns the message of an *ldap.Error without its
// "LDAP Result Code ..." prefix, for shorter config errors.
func unwrapLDAP(err error) error {
	var le *goldap.Error
	if errors.As(err, &le) && le.Err != nil {
		return le.Err
	}
	return err
}

// attributeRe is an attribute description: a name or an OID, with options.
const attributeRe = `(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*`

var (
	attributeName = regexp.MustCompile(`^` + attributeRe + `$`)
	// accountAssertion is an equality assertion whose whole value is
	// ${account}: "(uid=${account})".
	accountAssertion = regexp.MustCompile(`\((` + attributeRe + `)=\$\{account\}\)`)
)

// validAttribute reports whether s is an attribute description.
func validAttribute(s string) bool { return attributeName.MatchString(s) }

// accountAttributes returns the attributes the filter template compares
// with ${account} by equality, in the order they appear, without
// duplicates (compared case-insensitively).
func accountAttributes(template string) []string {
	var out []string
	for _, m := range accountAssertion.FindAllStringSubmatch(template, -1) {
		dup := false
		for _, o := range out {
			if strings.EqualFold(o, m[1]) {
				dup = true
			}
		}
		if !dup {
			out = append(out, m[1])
		}
	}
	return out
}
