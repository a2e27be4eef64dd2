package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Doc is a parsed YAML file kept for position lookups during validation.
type Doc struct {
	File string
	Root *yaml.Node // the document's top-level mapping; nil for an empty file
}

// Load parses data as YAML into out strictly: syntax errors, duplicate keys,
// keys that out's type does not have, and values of the wrong type are all
// reported, each with its line, in one list. Keys named in refused are
// reported with the reason given there (sections Gatehouse does not support).
//
// out must be a pointer to a struct whose fields carry yaml tags.
func Load(file string, data []byte, out any, refused map[string]string) (*Doc, Problems) {
	doc := &Doc{File: file}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p := syntaxProblem(file, err)
		if p.Fix == "" && p.Line > 0 && leadingTab(data, p.Line) {
			p.Msg += " (a tab in the indentation)"
			p.Fix = "indent with spaces only, two per level"
		}
		return doc, Problems{p}
	}
	if len(root.Content) == 0 {
		return doc, nil // empty file: every field keeps its zero value
	}
	top := root.Content[0]
	doc.Root = top
	var ps Problems
	if top.Kind != yaml.MappingNode {
		return doc, Problems{{File: file, Line: top.Line, Column: top.Column, Msg: "the file must be a YAML mapping of sections (key: value)"}}
	}
	checkKeys(file, top, reflect.TypeOf(out).Elem(), "", refused, &ps)
	if err := top.Decode(out); err != nil {
		ps = append(ps, decodeProblems(file, err)...)
	}
	return doc, ps
}

var lineRe = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: (.*)`)

func syntaxProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: file, Msg: "invalid YAML: " + msg}
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Column, _ = strconv.Atoi(m[2])
		p.Msg = "invalid YAML: " + m[3]
		if strings.Contains(m[3], "tab") || strings.Contains(m[3], "indentation") {
			p.Fix = "indent with spaces only, two per level"
		}
	}
	return p
}

// leadingTab reports whether line n (1-based) of data is indented with a tab.
func leadingTab(data []byte, n int) bool {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return false
	}
	indent := lines[n-1][:len(lines[n-1])-len(strings.TrimLeft(lines[n-1], " \t"))]
	return strings.Contains(indent, "\t")
}

func decodeProblems(file string, err error) Problems {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problems{{File: file, Msg: err.Error()}}
	}
	var ps Problems
	for _, e := range te.Errors {
		p := Problem{File: file, Msg: e}
		if m := lineRe.FindStringSubmatch(e); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = humanizeTypeError(m[3])
		}
		ps = append(ps, p)
	}
	return ps
}

var unmarshalRe = regexp.MustCompile("cannot unmarshal !!(\\w+) `(.*)` into (.*)")

func humanizeTypeError(s string) string {
	m := unmarshalRe.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	want := m[3]
	switch {
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map["):
		want = "a mapping"
	case want == "bool":
		want = "true or false"
	case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "uint"):
		want = "a whole number"
	case want == "string":
		want = "a string"
	default:
		if i := strings.LastIndex(want, "."); i >= 0 {
			want = want[i+1:]
		}
		want = "a " + strings.ToLower(want)
	}
	kind := map[string]string{"str": "a string", "map": "a mapping", "seq": "a list", "int": "a number", "bool": "a boolean", "float": "a number"}[m[1]]
	if kind == "" {
		kind = m[1]
	}
	return fmt.Sprintf("expected %s here, found %s %q", want, kind, m[2])
}

// checkKeys walks n against t and reports unknown and duplicate keys.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string, refused map[string]string, ps *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := reflect.New(t).Interface().(yaml.Unmarshaler); ok {
		return // the type checks its own shape
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := structFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if first, dup := seen[k.Value]; dup {
				*ps = append(*ps, Problem{File: file, Line: k.Line, Column: k.Column,
					Msg: fmt.Sprintf("duplicate key %q (first set at line %d)", join(path, k.Value), first),
					Fix: "keep one of the two; YAML readers disagree on which wins"})
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				full := join(path, k.Value)
				if why, isRefused := refused[full]; isRefused {
					*ps = append(*ps, Problem{File: file, Line: k.Line, Column: k.Column, Msg: fmt.Sprintf("%q is not supported by Gatehouse: %s", full, why)})
					continue
				}
				*ps = append(*ps, Problem{File: file, Line: k.Line, Column: k.Column,
					Msg: fmt.Sprintf("unknown key %q", full), Fix: suggest(k.Value, fields)})
				continue
			}
			checkKeys(file, v, ft, join(path, k.Value), refused, ps)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if first, dup := seen[k.Value]; dup {
				*ps = append(*ps, Problem{File: file, Line: k.Line, Column: k.Column,
					Msg: fmt.Sprintf("duplicate key %q (first set at line %d)", join(path, k.Value), first),
					Fix: "keep one of the two"})
				continue
			}
			seen[k.Value] = k.Line
			checkKeys(file, v, t.Elem(), join(path, k.Value), refused, ps)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkKeys(file, c, t.Elem(), join(path, strconv.Itoa(i)), refused, ps)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps yaml key names to field types, following inline fields.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// suggest names the closest known key, or lists the valid ones.
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	if best := Closest(key, names); best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	if len(names) == 0 {
		return "remove it"
	}
	return "remove it, or use one of: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Node returns the value node at a dotted path ("acl.0.match"), or nil.
func (d *Doc) Node(path string) *yaml.Node {
	if d == nil || d.Root == nil {
		return nil
	}
	n := d.Root
	if path == "" {
		return n
	}
	for _, part := range strings.Split(path, ".") {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					next = n.Content[i+1]
					break
				}
			}
			if next == nil {
				return nil
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
		default:
			return nil
		}
	}
	return n
}

// At builds a Problem located at the node for path, or at the closest
// existing parent when the key itself is missing.
func (d *Doc) At(path, msg, fix string) Problem {
	p := Problem{Msg: msg, Fix: fix}
	if d != nil {
		p.File = d.File
	}
	if path == "" {
		// About the whole file: no line to point at (line 1 would blame
		// whatever section happens to come first).
		return p
	}
	for cur := path; ; {
		if n := d.Node(cur); n != nil {
			// Point at the key rather than the value where we can.
			if k := d.key(cur); k != nil {
				n = k
			}
			p.Line, p.Column = n.Line, n.Column
			return p
		}
		i := strings.LastIndex(cur, ".")
		if i < 0 {
			return p
		}
		cur = cur[:i]
	}
}

// key returns the key node for a mapping path, or nil.
func (d *Doc) key(path string) *yaml.Node {
	i := strings.LastIndex(path, ".")
	parent, last := "", path
	if i >= 0 {
		parent, last = path[:i], path[i+1:]
	}
	n := d.Node(parent)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == last {
			return n.Content[j]
		}
	}
	return nil
}

// Closest returns the name in names nearest to key by edit distance, if it
// is near enough to be a likely typo, else "".
func Closest(key string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := editDistance(strings.ToLower(key), n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" && bestD <= max(2, len(key)/3) {
		return best
	}
	return ""
}
