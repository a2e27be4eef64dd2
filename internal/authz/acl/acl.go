package acl

import (
	"context"
	"errors"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/authz"
)

// maxLabelCombinations bounds how many label-value combinations one
// pattern tries for one request (the cartesian product of the values of
// every ${labels:x} in it), so that an account with very many labels
// cannot make a request arbitrarily expensive.
const maxLabelCombinations = 1 << 16

// ACL is a compiled, immutable access control list. It is safe for
// concurrent use.
type ACL struct {
	rules []rule
	cache regexpCache
}

// Decision explains how the ACL answered one request.
type Decision struct {
	// Granted is the granted subset of the requested actions (never nil).
	Granted []string
	// Index is the position of the deciding entry, from 0; -1 when no
	// entry matched (the request is then denied unless another authorizer
	// grants it).
	Index int
	// Comment is the deciding entry's comment.
	Comment string
	// Entry is the deciding entry as a one-line YAML flow mapping.
	Entry string
}

// Len returns the number of entries.
func (a *ACL) Len() int { return len(a.rules) }

// Name implements authz.Authorizer.
func (a *ACL) Name() string { return "acl" }

// Close implements authz.Authorizer; there is nothing to release.
func (a *ACL) Close() error { return nil }

// Authorize implements authz.Authorizer: the first entry whose match fits
// the request decides; when none does, it returns authz.ErrNoMatch.
func (a *ACL) Authorize(ctx context.Context, req *authz.Request) ([]string, error) {
	if req == nil {
		return nil, errors.New("acl: nil request")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	granted, i := a.decide(req)
	if i < 0 {
		return nil, authz.ErrNoMatch
	}
	return granted, nil
}

// Explain answers req like Authorize and says which entry decided.
func (a *ACL) Explain(req *authz.Request) Decision {
	granted, i := a.decide(req)
	if i < 0 {
		return Decision{Granted: []string{}, Index: -1}
	}
	r := &a.rules[i]
	return Decision{Granted: granted, Index: i, Comment: r.comment, Entry: r.text}
}

func (a *ACL) decide(req *authz.Request) ([]string, int) {
	ev := evaluation{req: req, cache: &a.cache}
	for i := range a.rules {
		r := &a.rules[i]
		if ev.matches(r) {
			return grant(r, req.Actions), i
		}
	}
	return nil, -1
}

// grant returns what rule r grants of the requested actions: all of them
// for actions: ["*"], else the intersection. The result is sorted, has no
// duplicates, is never nil and is always a subset of requested.
func grant(r *rule, requested []string) []string {
	out := make([]string, 0, len(requested))
	for _, act := range requested {
		if act == "" || contains(out, act) {
			continue
		}
		if r.all || containsSorted(r.actions, act) {
			out = append(out, act)
		}
	}
	sortStrings(out)
	return out
}

func containsSorted(list []string, s string) bool {
	lo, hi := 0, len(list)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if list[m] < s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(list) && list[lo] == s
}

// sortStrings is an insertion sort: action lists are a handful long.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// evaluation holds per-request state shared by all rules.
type evaluation struct {
	req     *authz.Request
	cache   *regexpCache
	escaped [numFields]string
	haveEsc bool
	buf     strings.Builder
}

func (ev *evaluation) value(f field) string {
	switch f {
	case fAccount:
		return ev.req.Account
	case fType:
		return ev.req.Type
	case fName:
		return ev.req.Name
	default:
		return ev.req.Service
	}
}

func (ev *evaluation) escapedValue(f field) string {
	if !ev.haveEsc {
		for g := range numFields {
			ev.escaped[g] = escape(ev.value(g))
		}
		ev.haveEsc = true
	}
	return ev.escaped[f]
}

// matches reports whether every condition of r holds for the request.
func (ev *evaluation) matches(r *rule) bool {
	if r.ip != nil && (ev.req.IP == nil || !r.ip.Contains(ev.req.IP)) {
		return false
	}
	// Static patterns first: they are cheap.
	for f, p := range r.fields {
		if p != nil && !p.dynamic() && !p.matchStatic(ev.value(field(f))) {
			return false
		}
	}
	var groups [numFields][]string
	for _, f := range r.captures {
		// The referenced field is a static regexp of this rule (Compile
		// checks that), so a request it does not match fails the rule anyway.
		groups[f] = r.fields[f].re.FindStringSubmatch(ev.value(f))
		if groups[f] == nil {
			return false
		}
	}
	for f, p := range r.fields {
		if p != nil && p.dynamic() && !ev.matchDynamic(p, ev.value(field(f)), &groups) {
			return false
		}
	}
	for _, lm := range r.labels {
		if !ev.matchLabel(lm, &groups) {
			return false
		}
	}
	return true
}

// matchLabel holds when any of the user's values of the label matches.
func (ev *evaluation) matchLabel(lm labelMatch, groups *[numFields][]string) bool {
	var rendered string
	if lm.pat.dynamic() {
		rendered = ev.render(lm.pat, groups, nil, nil)
	}
	for _, v := range ev.req.Labels[lm.label] {
		if lm.pat.dynamic() {
			if ev.cache.matchRendered(rendered, v) {
				return true
			}
		} else if lm.pat.matchStatic(v) {
			return true
		}
	}
	return false
}

// matchDynamic matches a pattern with placeholders as docker_auth does:
// first with every ${labels:x} left as written, then with each combination
// of the user's values for the labels the pattern names and the user has.
// A label the user lacks stays as written, which in practice never matches.
func (ev *evaluation) matchDynamic(p *pattern, s string, groups *[numFields][]string) bool {
	if ev.cache.matchRendered(ev.render(p, groups, nil, nil), s) {
		return true
	}
	if len(p.labels) == 0 {
		return false
	}
	var names []string
	var values [][]string
	combos := 1
	for _, l := range p.labels {
		vals, ok := ev.req.Labels[l]
		if !ok {
			continue
		}
		if len(vals) == 0 {
			return false
		}
		names = append(names, l)
		values = append(values, vals)
		combos *= len(vals)
		if combos > maxLabelCombinations {
			return false
		}
	}
	if len(names) == 0 {
		return false
	}
	idx := make([]int, len(names))
	for {
		if ev.cache.matchRendered(ev.render(p, groups, names, pick(values, idx)), s) {
			return true
		}
		// Advance the odometer.
		k := len(idx) - 1
		for k >= 0 {
			idx[k]++
			if idx[k] < len(values[k]) {
				break
			}
			idx[k] = 0
			k--
		}
		if k < 0 {
			return false
		}
	}
}

func pick(values [][]string, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = values[i][j]
	}
	return out
}

// render fills in p's placeholders. Label placeholders whose label is in
// names get the matching entry of vals; the others stay as written.
func (ev *evaluation) render(p *pattern, groups *[numFields][]string, names, vals []string) string {
	b := &ev.buf
	b.Reset()
	for _, s := range p.segs {
		switch s.kind {
		case segLiteral:
			b.WriteString(s.text)
		case segField:
			b.WriteString(ev.escapedValue(s.field))
		case segCapture:
			// Compile guarantees the group exists and matches() computed it.
			b.WriteString(escape(groups[s.field][s.group]))
		case segLabel:
			written := false
			for i, n := range names {
				if n == s.label {
					b.WriteString(vals[i])
					written = true
					break
				}
			}
			if !written {
				b.WriteString(s.text)
			}
		}
	}
	return b.String()
}

var _ authz.Authorizer = (*ACL)(nil)
