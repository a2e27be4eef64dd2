package authconfig

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-registry/gatehouse/internal/authn/ldap"
	"github.com/gatehouse-registry/gatehouse/internal/config"
)

// replaceMatchKeyProblems swaps the strict loader's generic "unknown key"
// problem for keys under acl.N.match with one that says what docker_auth
// does with such a rule and how to write what was meant. docker_auth drops
// unknown match keys, so `match: {gidNumber: "6000"}` becomes an empty
// match that applies the rule to every user.
func (v *validator) replaceMatchKeyProblems(ps config.Problems) config.Problems {
	seq := v.doc.Node("acl")
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return ps
	}
	type pos struct{ line, col int }
	replaced := map[pos]bool{}
	var extra config.Problems
	for i, entry := range seq.Content {
		match := mapValue(entry, "match")
		if match == nil || match.Kind != yaml.MappingNode {
			continue
		}
		var unknown, known [][2]*yaml.Node
		for _, kv := range pairsOf(match) {
			if isKnownMatchKey(kv[0].Value) {
				known = append(known, kv)
			} else {
				unknown = append(unknown, kv)
			}
		}
		for _, kv := range unknown {
			p := v.matchKeyProblem(i, entry, kv[0], kv[1], len(known) == 0 && len(unknown) == 1)
			extra = append(extra, p)
			replaced[pos{kv[0].Line, kv[0].Column}] = true
		}
	}
	if len(extra) == 0 {
		return ps
	}
	out := ps[:0:0]
	for _, p := range ps {
		if !replaced[pos{p.Line, p.Column}] || !strings.HasPrefix(p.Msg, "unknown key") {
			out = append(out, p)
		}
	}
	return append(out, extra...)
}

// knownMatchKeys are the fields of acl.Match.
var knownMatchKeys = []string{"account", "type", "name", "service", "ip", "labels"}

func isKnownMatchKey(k string) bool {
	for _, n := range knownMatchKeys {
		if k == n {
			return true
		}
	}
	return false
}

// matchKeyProblem describes unknown key k (value val) in acl.i.match.
func (v *validator) matchKeyProblem(i int, entry, k, val *yaml.Node, alone bool) config.Problem {
	path := "acl." + strconv.Itoa(i) + ".match"
	grants := "applies its actions"
	if acts := mapValue(entry, "actions"); acts != nil && acts.Kind == yaml.SequenceNode {
		var names []string
		for _, a := range acts.Content {
			names = append(names, strconv.Quote(a.Value))
		}
		if len(names) == 0 {
			grants = "denies everything"
		} else {
			grants = "grants actions [" + strings.Join(names, ", ") + "]"
		}
	}
	var msg string
	if alone {
		msg = fmt.Sprintf("%s: unknown key %q: docker_auth ignores it and reads this rule as an empty match, which %s to every user", path, k.Value, grants)
	} else {
		msg = fmt.Sprintf("%s: unknown key %q: docker_auth ignores it, so this rule matches on its other fields alone and %s more widely than written", path, k.Value, grants)
	}
	if near := config.Closest(k.Value, knownMatchKeys); near != "" {
		return config.Problem{File: v.doc.File, Line: k.Line, Column: k.Column, Msg: msg,
			Fix: fmt.Sprintf("did you mean %q? match keys are %s", near, strings.Join(knownMatchKeys, ", "))}
	}
	value := "<value>"
	if val.Kind == yaml.ScalarNode {
		value = val.Value
	}
	label, source := v.labelFor(k.Value, value)
	labels := fmt.Sprintf("labels: {%s: %s}", quoteKey(label), strconv.Quote(value))
	var fix string
	if alone {
		fix = "match: {" + labels + "}"
	} else {
		fix = fmt.Sprintf("write %s in this match instead of %s", labels, k.Value)
	}
	if source != "" {
		fix += " (" + source + ")"
	} else {
		fix += fmt.Sprintf(" and make sure users get a %q label: users.<name>.labels, ldap_auth.labels.<label>.attribute or ldap_auth.group_search", label)
	}
	return config.Problem{File: v.doc.File, Line: k.Line, Column: k.Column, Msg: msg, Fix: fix}
}

// labelFor finds the label that carries attribute or label name key: an
// ldap_auth label reading that attribute, or a static users label of that
// name, or a static users label holding value. It returns the label name and a note on where it comes from; the
// note is empty when nothing provides such a label.
func (v *validator) labelFor(key, value string) (label, source string) {
	if l := v.cfg.LDAPAuth; l != nil {
		names := make([]string, 0, len(l.Labels))
		for n := range l.Labels {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if strings.EqualFold(l.Labels[n].Attribute, key) {
				return n, fmt.Sprintf("ldap_auth.labels.%s reads the %s attribute", quoteKey(n), l.Labels[n].Attribute)
			}
		}
		if _, ok := l.Labels[key]; ok {
			return key, fmt.Sprintf("ldap_auth.labels.%s provides it", quoteKey(key))
		}
		if gs := l.GroupSearch; gs != nil && (gs.Label == key || gs.Label == "" && key == ldap.DefaultGroupLabel) {
			return key, "ldap_auth.group_search provides it"
		}
	}
	for _, u := range v.cfg.Users {
		if _, ok := u.Labels[key]; ok {
			return key, "users' labels provide it"
		}
	}
	// A static user label holding the value the rule wanted is the next
	// best guess (e.g. groups: ["6000"] for gidNumber: "6000").
	names := map[string]bool{}
	for _, u := range v.cfg.Users {
		for n, vals := range u.Labels {
			for _, x := range vals {
				if x == value {
					names[n] = true
				}
			}
		}
	}
	if len(names) > 0 {
		n := sortedKeys(names)[0]
		return n, fmt.Sprintf("users' label %s holds %q", quoteKey(n), value)
	}
	return key, ""
}
