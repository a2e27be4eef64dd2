package acl

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// rule is a compiled Entry.
type rule struct {
	index   int
	comment string
	text    string // the entry as written, for Explain

	fields [numFields]*pattern // nil: any value
	ip     *net.IPNet          // nil: any address
	labels []labelMatch        // sorted by label name

	// captures lists the fields whose capture groups some pattern uses.
	captures []field

	all     bool     // actions: ["*"]
	actions []string // sorted set
}

type labelMatch struct {
	label string
	pat   *pattern
}

// Compile checks every entry and compiles the list. It reports every
// problem at once as CompileErrors.
func Compile(entries Rules) (*ACL, error) {
	a := &ACL{rules: make([]rule, 0, len(entries))}
	var errs CompileErrors
	for i := range entries {
		r, es := compileEntry(i, &entries[i])
		errs = append(errs, es...)
		a.rules = append(a.rules, r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return a, nil
}

func compileEntry(i int, e *Entry) (rule, CompileErrors) {
	r := rule{index: i, comment: e.Comment, text: e.String()}
	var errs CompileErrors
	add := func(fieldPath, msg, fix string) {
		errs = append(errs, CompileError{Index: i, Field: fieldPath, Msg: msg, Fix: fix})
	}

	if e.Actions == nil {
		add("actions", "the entry has no actions",
			`list what the entry grants, e.g. actions: ["pull"]; actions: [] denies, actions: ["*"] grants whatever is asked`)
	} else {
		acts := *e.Actions
		seen := make(map[string]bool, len(acts))
		for _, act := range acts {
			switch {
			case act == "":
				add("actions", "an action is empty", `remove it, or name an action such as "pull", "push", "delete" or "*"`)
			case strings.TrimSpace(act) != act || strings.ContainsAny(act, ", \t"):
				add("actions", fmt.Sprintf("action %q contains a space or a comma", act), `write each action as its own list item: ["pull", "push"]`)
			case seen[act]:
				add("actions", fmt.Sprintf("action %q is listed twice", act), "remove the duplicate")
			}
			seen[act] = true
		}
		if len(acts) == 1 && acts[0] == "*" {
			r.all = true
		}
		r.actions = sortedSet(acts)
	}

	if e.Match == nil {
		add("match", "the entry has no match (docker_auth crashes on this)",
			"add match: {} to match every request, or the conditions the entry is for")
		return r, errs
	}
	m := e.Match

	srcs := [numFields]*string{m.Account, m.Type, m.Name, m.Service}
	var needCapture [numFields]int // highest group number used per field
	checkSegs := func(fieldPath string, p *pattern, inLabels bool) {
		for _, s := range p.segs {
			switch s.kind {
			case segCapture:
				needCapture[s.field] = max(needCapture[s.field], 1)
				ref := srcs[s.field]
				switch {
				case ref == nil:
					add(fieldPath, fmt.Sprintf("%s refers to match.%s, which is not set", s.text, fieldNames[s.field]),
						fmt.Sprintf("set match.%s to a /regexp/ with capture groups", fieldNames[s.field]))
				case !isRegexp(*ref):
					add(fieldPath, fmt.Sprintf("%s refers to match.%s, which is not a /regexp/", s.text, fieldNames[s.field]),
						fmt.Sprintf(`write match.%s as a /regexp/ with a capture group, e.g. "/^(.+)@example\\.com$/"`, fieldNames[s.field]))
				case strings.Contains(*ref, "${"):
					add(fieldPath, fmt.Sprintf("%s refers to match.%s, which has placeholders of its own", s.text, fieldNames[s.field]),
						"capture groups come only from a regexp without placeholders")
				default:
					ngroups := groupCount(*ref)
					if ngroups >= 0 && s.group > ngroups {
						add(fieldPath, fmt.Sprintf("%s asks for capture group %d, but match.%s has %d", s.text, s.group, fieldNames[s.field], ngroups),
							fmt.Sprintf("use a group number from 1 to %d, or add a group with (...)", ngroups))
					}
				}
			case segLabel:
				if inLabels {
					add(fieldPath, fmt.Sprintf("%s is not substituted in label patterns", s.text),
						"use ${labels:...} in account, type, name or service")
				}
			}
		}
	}

	for f := range numFields {
		src := srcs[f]
		if src == nil {
			continue
		}
		fieldPath := "match." + fieldNames[f]
		p, err := compilePattern(*src)
		if err != nil {
			add(fieldPath, err.Error(), patternFix(*src))
			continue
		}
		r.fields[f] = p
		checkSegs(fieldPath, p, false)
	}

	if m.IP != nil {
		ipnet, err := parseIPPattern(*m.IP)
		if err != nil {
			add("match.ip", fmt.Sprintf("%q is not an IP address or a CIDR", *m.IP),
				`write one address ("10.0.0.7", "2001:db8::1") or one network ("10.0.0.0/8", "2001:db8::/48")`)
		} else {
			r.ip = ipnet
		}
	}

	keys := make([]string, 0, len(m.Labels))
	for k := range m.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fieldPath := "match.labels." + k
		if k == "" {
			add("match.labels", "a label name is empty", "name the label, e.g. labels: {groups: admins}")
			continue
		}
		p, err := compilePattern(m.Labels[k])
		if err != nil {
			add(fieldPath, err.Error(), patternFix(m.Labels[k]))
			continue
		}
		r.labels = append(r.labels, labelMatch{label: k, pat: p})
		checkSegs(fieldPath, p, true)
	}

	for f := range numFields {
		if needCapture[f] > 0 {
			r.captures = append(r.captures, field(f))
		}
	}
	return r, errs
}

// groupCount returns the number of capture groups of a /regexp/, or -1 if
// it does not compile (that is reported elsewhere).
func groupCount(src string) int {
	p, err := compilePattern(src)
	if err != nil || p.re == nil {
		return -1
	}
	return p.re.NumSubexp()
}

func patternFix(src string) string {
	if isRegexp(src) {
		return "fix the regular expression (Go RE2 syntax); a pattern enclosed in slashes is a regexp"
	}
	if strings.Contains(src, "${") {
		return "placeholders are ${account}, ${type}, ${name}, ${service}, ${labels:<label>} and ${<field>:<group>}"
	}
	return `a glob may use *, ?, [...] and \ escapes; enclose the pattern in slashes for a regexp, e.g. "/^team-.*$/"`
}

// parseIPPattern reads a single address (as a /32 or /128) or a CIDR.
func parseIPPattern(s string) (*net.IPNet, error) {
	if ip := net.ParseIP(s); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}, nil
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}, nil
	}
	_, ipnet, err := net.ParseCIDR(s)
	if err != nil {
		return nil, err
	}
	return ipnet, nil
}

// sortedSet returns the distinct strings of list, sorted.
func sortedSet(list []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
