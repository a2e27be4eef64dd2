package authconfig

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The functions below edit the users section of an auth_config.yml as
// text: they change only the lines of the user concerned, so comments,
// order, quoting and indentation elsewhere stay as they were. Each checks
// its result by parsing it again and comparing the users with what was
// asked; the caller still checks the whole file (Parse) before writing.

// ListedUser is a user as ListUsers reports it: never the password.
type ListedUser struct {
	Name   string
	Labels map[string][]string
}

// ListUsers returns the users of the users section in file order.
func ListUsers(data []byte) ([]ListedUser, error) {
	_, users, err := usersNode(data)
	if err != nil {
		return nil, err
	}
	if users == nil || users.Kind != yaml.MappingNode {
		return nil, nil
	}
	var out []ListedUser
	for i := 0; i+1 < len(users.Content); i += 2 {
		var u User
		if err := users.Content[i+1].Decode(&u); err != nil {
			return nil, fmt.Errorf("line %d: users.%s: %w", users.Content[i].Line, quoteKey(users.Content[i].Value), err)
		}
		out = append(out, ListedUser{Name: users.Content[i].Value, Labels: u.Labels})
	}
	return out, nil
}

// AddUser adds a user with the bcrypt hash at the end of the users
// section (which it creates at the end of the file if there is none). A
// user of that name must not exist.
func AddUser(data []byte, name, hash string) ([]byte, error) {
	root, users, err := usersNode(data)
	if err != nil {
		return nil, err
	}
	if users != nil && findUser(users, name) >= 0 {
		return nil, fmt.Errorf("user %s already exists (use passwd to change the password)", quoteKey(name))
	}
	e := newEditor(data)
	var out []byte
	switch {
	case users == nil:
		out = e.appendSection(name, hash)
	case users.Kind == yaml.ScalarNode && users.Tag == "!!null" && users.Value == "":
		key := mapKey(root, "users")
		out = e.insertAfter(key.Line, e.entryLines(2, 2, name, hash))
	case users.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("line %d: users is not a mapping of user names", users.Line)
	case users.Style&yaml.FlowStyle != 0:
		if out, err = e.addFlow(users, name, hash); err != nil {
			return nil, err
		}
	case len(users.Content) == 0:
		return nil, fmt.Errorf("line %d: users is empty in an unusual way; add the first user by hand", users.Line)
	default:
		first := users.Content[0]
		indent := first.Column - 1
		propIndent := 2 // or as the last user written in block style has it
		for j := 0; j+1 < len(users.Content); j += 2 {
			k, v := users.Content[j], users.Content[j+1]
			if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Content[0].Column > k.Column {
				propIndent = v.Content[0].Column - k.Column
			}
		}
		last := users.Content[len(users.Content)-2]
		end := e.extentEnd(last, users.Content[len(users.Content)-1], indent)
		out = e.insertAfter(end, e.entryLines(indent, propIndent, name, hash))
	}
	return out, checkEdit(data, out, name, hash, false)
}

// existingUser finds name in the users section: the section's mapping and
// the index of the user's key in it.
func existingUser(data []byte, name string) (*yaml.Node, int, error) {
	_, users, err := usersNode(data)
	if err != nil {
		return nil, 0, err
	}
	i := -1
	if users != nil {
		i = findUser(users, name)
	}
	if i < 0 {
		return nil, 0, fmt.Errorf("no user %s in the users section", quoteKey(name))
	}
	return users, i, nil
}

// SetPassword replaces the bcrypt hash of an existing user, in the
// quoting style the old one was written in.
func SetPassword(data []byte, name, hash string) ([]byte, error) {
	users, i, err := existingUser(data, name)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New(`the anonymous user "" has no password`)
	}
	pw := mapValue(users.Content[i+1], "password")
	if pw == nil || pw.Kind != yaml.ScalarNode || pw.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || strings.Contains(pw.Value, "\n") {
		return nil, fmt.Errorf("line %d: users.%s has no one-line password to replace; edit it by hand", users.Content[i].Line, quoteKey(name))
	}
	e := newEditor(data)
	out, err := e.replaceScalar(pw, hash, users.Style&yaml.FlowStyle != 0 || users.Content[i+1].Style&yaml.FlowStyle != 0)
	if err != nil {
		return nil, err
	}
	return out, checkEdit(data, out, name, hash, false)
}

// RemoveUser deletes a user's lines, and the comment lines directly above
// it at the same indentation.
func RemoveUser(data []byte, name string) ([]byte, error) {
	users, i, err := existingUser(data, name)
	if err != nil {
		return nil, err
	}
	if users.Style&yaml.FlowStyle != 0 {
		return nil, fmt.Errorf("line %d: users is written in flow style ({...}); remove the user by hand or write users in block style", users.Line)
	}
	e := newEditor(data)
	key, val := users.Content[i], users.Content[i+1]
	indent := key.Column - 1
	start := key.Line
	for start > 1 && e.isComment(start-1) && e.indentOf(start-1) == indent {
		start--
	}
	var end int
	if i+2 < len(users.Content) {
		end = users.Content[i+2].Line - 1
		for end > key.Line && (e.isBlank(end) || e.isComment(end)) {
			end--
		}
	} else {
		end = e.extentEnd(key, val, indent)
	}
	out := e.deleteLines(start, end)
	return out, checkEdit(data, out, name, "", true)
}

// usersNode parses data and returns its top-level mapping and the value
// of its users key (nil when there is none).
func usersNode(data []byte) (root, users *yaml.Node, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, nil, nil
	}
	root = doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, errors.New("the file is not a YAML mapping of sections")
	}
	return root, mapValue(root, "users"), nil
}

// mapKey returns the key node of key in mapping n.
func mapKey(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

// findUser returns the index of name's key in users.Content, or -1.
func findUser(users *yaml.Node, name string) int {
	if users.Kind != yaml.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(users.Content); i += 2 {
		if users.Content[i].Value == name {
			return i
		}
	}
	return -1
}

// checkEdit parses before and after and checks that the users differ
// exactly as asked: name added or given hash, or removed; the rest as before.
func checkEdit(before, after []byte, name, hash string, removed bool) error {
	var b, a struct {
		Users Users `yaml:"users"`
	}
	if err := yaml.Unmarshal(before, &b); err != nil {
		return fmt.Errorf("the file does not parse: %w", err)
	}
	if err := yaml.Unmarshal(after, &a); err != nil {
		return fmt.Errorf("internal error: the edited file does not parse (nothing was written): %w", err)
	}
	want := make(map[string]string, len(b.Users)+1)
	for n, u := range b.Users {
		want[n] = u.Password.Reveal()
	}
	if removed {
		delete(want, name)
	} else {
		want[name] = hash
	}
	got := make(map[string]string, len(a.Users))
	for n, u := range a.Users {
		got[n] = u.Password.Reveal()
	}
	if len(got) != len(want) {
		return errors.New("internal error: the edit changed other users (nothing was written)")
	}
	for n, h := range want {
		if g, ok := got[n]; !ok || g != h {
			return errors.New("internal error: the edit changed other users (nothing was written)")
		}
	}
	return nil
}

// editor works on data as lines.
type editor struct {
	lines []string // each with its line ending, if any
	nl    string   // the file's line ending
}

func newEditor(data []byte) *editor {
	e := &editor{lines: strings.SplitAfter(string(data), "\n"), nl: "\n"}
	if e.lines[len(e.lines)-1] == "" {
		e.lines = e.lines[:len(e.lines)-1]
	}
	if bytes.Contains(data, []byte("\r\n")) {
		e.nl = "\r\n"
	}
	return e
}

// line returns line n (1-based) without its line ending.
func (e *editor) line(n int) string {
	if n < 1 || n > len(e.lines) {
		return ""
	}
	return strings.TrimRight(e.lines[n-1], "\r\n")
}

func (e *editor) isBlank(n int) bool { return strings.TrimSpace(e.line(n)) == "" }

func (e *editor) isComment(n int) bool {
	return strings.HasPrefix(strings.TrimSpace(e.line(n)), "#")
}

func (e *editor) indentOf(n int) int {
	l := e.line(n)
	return len(l) - len(strings.TrimLeft(l, " "))
}

func (e *editor) join(lines []string) []byte {
	return []byte(strings.Join(lines, ""))
}

// extentEnd returns the last line of the entry key: val, whose key is at
// indent: the last line any of its nodes starts on, and the lines after
// it that are indented deeper and are neither blank nor comments
// (continuations, closing brackets).
func (e *editor) extentEnd(key, val *yaml.Node, indent int) int {
	end := max(key.Line, maxLine(val))
	for end < len(e.lines) && !e.isBlank(end+1) && !e.isComment(end+1) && e.indentOf(end+1) > indent {
		end++
	}
	return end
}

func maxLine(n *yaml.Node) int {
	m := n.Line
	for _, c := range n.Content {
		m = max(m, maxLine(c))
	}
	return m
}

// insertAfter inserts text lines after line n.
func (e *editor) insertAfter(n int, text []string) []byte {
	out := make([]string, 0, len(e.lines)+len(text))
	out = append(out, e.lines[:n]...)
	if n > 0 && !strings.HasSuffix(out[n-1], "\n") {
		out[n-1] += e.nl
	}
	out = append(out, text...)
	out = append(out, e.lines[n:]...)
	return e.join(out)
}

// deleteLines removes lines from through to (1-based, inclusive).
func (e *editor) deleteLines(from, to int) []byte {
	out := make([]string, 0, len(e.lines))
	out = append(out, e.lines[:from-1]...)
	out = append(out, e.lines[to:]...)
	return e.join(out)
}

// appendSection adds a users section holding one user at the end.
func (e *editor) appendSection(name, hash string) []byte {
	text := append([]string{"users:" + e.nl}, e.entryLines(2, 2, name, hash)...)
	return e.insertAfter(len(e.lines), text)
}

// entryLines renders a user in block style.
func (e *editor) entryLines(indent, propIndent int, name, hash string) []string {
	pad := strings.Repeat(" ", indent)
	return []string{
		pad + yamlKey(name) + ":" + e.nl,
		pad + strings.Repeat(" ", propIndent) + "password: " + strconv.Quote(hash) + e.nl,
	}
}

// addFlow inserts a user before the closing brace of the flow mapping users.
func (e *editor) addFlow(users *yaml.Node, name, hash string) ([]byte, error) {
	data := strings.Join(e.lines, "")
	start := e.offset(users.Line, users.Column)
	if start < 0 || start >= len(data) || data[start] != '{' {
		return nil, fmt.Errorf("line %d: cannot find the start of users {...}; add the user by hand", users.Line)
	}
	end, err := closingBrace(data, start)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w; add the user by hand", users.Line, err)
	}
	entry := yamlKey(name) + ": {password: " + strconv.Quote(hash) + "}"
	before := strings.TrimRight(data[start+1:end], " \t\r\n")
	sep := ", "
	if before == "" {
		sep = ""
	}
	insertAt := start + 1 + len(before)
	return []byte(data[:insertAt] + sep + entry + data[insertAt:]), nil
}

// closingBrace returns the offset of the brace closing the flow mapping
// that opens at start, skipping quoted strings and comments.
func closingBrace(s string, start int) (int, error) {
	depth := 0
	for i := start; i < len(s); i++ {
		switch c := s[i]; c {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i, nil
			}
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '\'':
			for i++; i < len(s); i++ {
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
		case '#':
			if i > 0 && (s[i-1] == ' ' || s[i-1] == '\t' || s[i-1] == '\n') {
				for i < len(s) && s[i] != '\n' {
					i++
				}
			}
		}
	}
	return 0, errors.New("users {...} is not closed")
}

// offset returns the byte offset in the file of a 1-based line and
// column (yaml counts columns in characters).
func (e *editor) offset(line, col int) int {
	if line < 1 || line > len(e.lines) {
		return -1
	}
	off := 0
	for _, l := range e.lines[:line-1] {
		off += len(l)
	}
	return off + byteColumn(e.lines[line-1], col)
}

// byteColumn converts a 1-based character column of l into a byte index.
func byteColumn(l string, col int) int {
	i := 0
	for n := 1; n < col && i < len(l); n++ {
		_, size := utf8.DecodeRuneInString(l[i:])
		i += size
	}
	return i
}

// replaceScalar replaces the one-line scalar n with value, keeping its
// quoting style. flow tells whether n is inside a flow collection.
func (e *editor) replaceScalar(n *yaml.Node, value string, flow bool) ([]byte, error) {
	l := e.lines[n.Line-1]
	start := byteColumn(l, n.Column)
	end, err := scalarEnd(l, start, flow)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w; edit it by hand", n.Line, err)
	}
	var repl string
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		repl = strconv.Quote(value)
	case n.Style&yaml.SingleQuotedStyle != 0:
		repl = "'" + strings.ReplaceAll(value, "'", "''") + "'"
	default:
		repl = value
	}
	lines := append([]string(nil), e.lines...)
	lines[n.Line-1] = l[:start] + repl + l[end:]
	return e.join(lines), nil
}

// scalarEnd returns the byte index just past the scalar starting at
// start on line l.
func scalarEnd(l string, start int, flow bool) (int, error) {
	if start >= len(l) {
		return 0, errors.New("the value is not where the parser put it")
	}
	switch l[start] {
	case '"':
		for i := start + 1; i < len(l); i++ {
			switch l[i] {
			case '\\':
				i++
			case '"':
				return i + 1, nil
			}
		}
		return 0, errors.New("the quoted value does not end on its line")
	case '\'':
		for i := start + 1; i < len(l); i++ {
			if l[i] == '\'' {
				if i+1 < len(l) && l[i+1] == '\'' {
					i++
					continue
				}
				return i + 1, nil
			}
		}
		return 0, errors.New("the quoted value does not end on its line")
	}
	end := len(strings.TrimRight(l, "\r\n"))
	if i := strings.Index(l[start:], " #"); i >= 0 && start+i < end {
		end = start + i
	}
	if flow {
		if i := strings.IndexAny(l[start:end], ",}]"); i >= 0 {
			end = start + i
		}
	}
	for end > start && (l[end-1] == ' ' || l[end-1] == '\t') {
		end--
	}
	return end, nil
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.@-]*$`)

// yamlKey writes a user name as a YAML key: plain when that reads back
// as the same string, else double-quoted.
func yamlKey(name string) string {
	switch strings.ToLower(name) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null":
		return strconv.Quote(name)
	}
	if plainKey.MatchString(name) {
		return name
	}
	return strconv.Quote(name)
}

// SortedLabelNames returns the label names of u in order.
func (u ListedUser) SortedLabelNames() []string {
	names := make([]string, 0, len(u.Labels))
	for k := range u.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
