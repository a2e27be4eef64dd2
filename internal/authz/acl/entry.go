// Package acl is docker_auth's static ACL engine: an ordered list of entries,
// the first whose match fits the request decides, and no match denies.
package acl

import (
	"sort"
	"strconv"
	"strings"
)

// Rules is an ACL: docker_auth's rule language, an ordered list of entries.
// It is the engine's configuration, and the file format decodes the acl
// section straight into it (hence the yaml tags), since the file's rules
// and the engine's are one and the same language.
type Rules []Entry

// Validate reports every problem with the rules, as the CompileErrors
// Compile would return.
func (r Rules) Validate() error {
	_, err := Compile(r)
	return err
}

// Entry is one ACL rule as written in auth_config.yml.
// Match and Actions are pointers so that a missing key can be told apart
// from an empty one (a missing key is a config error; `match: {}` matches
// everything and `actions: []` denies).
type Entry struct {
	Match   *Match    `yaml:"match"`
	Actions *[]string `yaml:"actions"`
	Comment string    `yaml:"comment"`
}

// Match holds the patterns of an entry; every field that is set must match.
// Patterns are globs (path.Match; `*` does not cross `/`) or /regexps/.
type Match struct {
	Account *string           `yaml:"account"`
	Type    *string           `yaml:"type"`
	Name    *string           `yaml:"name"`
	Service *string           `yaml:"service"`
	IP      *string           `yaml:"ip"` // an address or a CIDR
	Labels  map[string]string `yaml:"labels"`
}

// String renders the entry on one line as a YAML flow mapping, with keys in
// the order docker_auth documents them.
func (e Entry) String() string {
	var b strings.Builder
	b.WriteString("{match: ")
	if e.Match == nil {
		b.WriteString("null")
	} else {
		b.WriteString(e.Match.String())
	}
	b.WriteString(", actions: ")
	if e.Actions == nil {
		b.WriteString("null")
	} else {
		b.WriteString("[")
		for i, a := range *e.Actions {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(a))
		}
		b.WriteString("]")
	}
	if e.Comment != "" {
		b.WriteString(", comment: ")
		b.WriteString(strconv.Quote(e.Comment))
	}
	b.WriteString("}")
	return b.String()
}

// String renders the match on one line as a YAML flow mapping.
func (m Match) String() string {
	var parts []string
	for _, kv := range []struct {
		k string
		v *string
	}{{"account", m.Account}, {"type", m.Type}, {"name", m.Name}, {"service", m.Service}, {"ip", m.IP}} {
		if kv.v != nil {
			parts = append(parts, kv.k+": "+strconv.Quote(*kv.v))
		}
	}
	if len(m.Labels) > 0 {
		keys := make([]string, 0, len(m.Labels))
		for k := range m.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ls := make([]string, len(keys))
		for i, k := range keys {
			ls[i] = strconv.Quote(k) + ": " + strconv.Quote(m.Labels[k])
		}
		parts = append(parts, "labels: {"+strings.Join(ls, ", ")+"}")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
