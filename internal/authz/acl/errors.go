package acl

import (
	"fmt"
	"strings"
)

// CompileError is one problem with one ACL entry.
type CompileError struct {
	// Index is the entry's position in the list, from 0.
	Index int
	// Field names the offending key relative to the entry, as a dotted path:
	// "match", "match.account", "match.name", "match.ip",
	// "match.labels.<label>" or "actions". The config loader prefixes it with
	// "acl.<Index>." to point at a file and line.
	Field string
	// Msg says what is wrong; Fix says what to write instead (may be empty).
	Msg, Fix string
}

// Error implements error.
func (e CompileError) Error() string {
	s := fmt.Sprintf("acl[%d].%s: %s", e.Index, e.Field, e.Msg)
	if e.Fix != "" {
		s += " (fix: " + e.Fix + ")"
	}
	return s
}

// CompileErrors lists every problem Compile found; it is never empty when
// returned as an error.
type CompileErrors []CompileError

// Error lists the problems, one per line.
func (es CompileErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
