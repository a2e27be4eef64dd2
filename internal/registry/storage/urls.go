package storage

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// URLPolicy restricts the urls of non-distributable layers (layer
// descriptors that carry urls and are fetched from there rather than
// pushed) in manifests pushed with PutManifest. It is the storage side of
// the registry configuration's validation.manifests.urls rules.
//
// Unless Disabled, every such URL must parse, use http or https, name a
// host, have no fragment, match at least one Allow expression when Allow
// is not empty, and match no Deny expression. The expressions are matched
// against the URL as re-serialised after parsing (so a scheme is always
// lower case). Unlike distribution, an empty Allow accepts every URL that
// passes the other rules.
//
// The zero value applies the structural rules with no allow or deny list.
type URLPolicy struct {
	// Disabled turns every check off (validation.disabled).
	Disabled bool
	// Allow, when not empty, lists expressions of which a URL must match one.
	Allow []*regexp.Regexp
	// Deny lists expressions no URL may match.
	Deny []*regexp.Regexp
}

// CompileURLPolicy builds a URLPolicy from the configuration's regular
// expressions. It fails on the first expression that does not compile.
func CompileURLPolicy(disabled bool, allow, deny []string) (URLPolicy, error) {
	p := URLPolicy{Disabled: disabled}
	var err error
	if p.Allow, err = compileAll("validation.manifests.urls.allow", allow); err != nil {
		return URLPolicy{}, err
	}
	if p.Deny, err = compileAll("validation.manifests.urls.deny", deny); err != nil {
		return URLPolicy{}, err
	}
	return p, nil
}

func compileAll(key string, exprs []string) ([]*regexp.Regexp, error) {
	var res []*regexp.Regexp
	for i, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("%s.%d: %w", key, i, err)
		}
		res = append(res, re)
	}
	return res, nil
}

// checkURL applies p to one URL. field names it in the error, which wraps
// ErrManifestInvalid and names the rule that failed. A password in the URL
// is never repeated in the error.
func (p *URLPolicy) checkURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errorf(ErrManifestInvalid, map[string]any{"field": field}, "%s is not a valid URL", field)
	}
	shown := u.Redacted()
	fail := func(rule string, args ...any) error {
		return errorf(ErrManifestInvalid, map[string]any{"field": field, "url": shown},
			"%s %q: %s", field, shown, fmt.Sprintf(rule, args...))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fail("the scheme must be http or https")
	case u.Host == "":
		return fail("the URL must name a host")
	case strings.Contains(raw, "#"): // also an empty fragment, which url.Parse drops
		return fail("the URL must not have a fragment")
	}
	s := u.String()
	if len(p.Allow) > 0 {
		allowed := false
		for _, re := range p.Allow {
			if re.MatchString(s) {
				allowed = true
				break
			}
		}
		if !allowed {
			return fail("it matches no validation.manifests.urls.allow expression")
		}
	}
	for _, re := range p.Deny {
		if re.MatchString(s) {
			return fail("it matches the validation.manifests.urls.deny expression %q", re.String())
		}
	}
	return nil
}

// checkLayerURLs applies p to the urls of every layer of m.
func (p *URLPolicy) checkLayerURLs(m *Manifest) error {
	if p.Disabled {
		return nil
	}
	for i, l := range m.Layers {
		for j, raw := range l.URLs {
			if err := p.checkURL(fmt.Sprintf("layers[%d].urls[%d]", i, j), raw); err != nil {
				return err
			}
		}
	}
	return nil
}
