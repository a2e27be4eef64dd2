package driver

import "strings"

// MaxPathLength bounds a path's length; object stores cap keys at 1024.
const MaxPathLength = 1024

// ValidatePath checks path against the rules every driver enforces: it
// starts with "/", has no empty, "." or ".." components, no trailing "/"
// (except the root "/" itself), and only the characters A-Z a-z 0-9 . _ - /.
// A path that fails is an error, never a traversal. driverName only labels
// the error.
func ValidatePath(driverName, path string) error {
	bad := func(reason string) error {
		return &InvalidPathError{Path: path, Driver: driverName, Reason: reason}
	}
	if path == "/" {
		return nil
	}
	if len(path) > MaxPathLength {
		return bad("too long")
	}
	if !strings.HasPrefix(path, "/") {
		return bad("not absolute")
	}
	for _, c := range path {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-', c == '/':
		default:
			return bad("character not allowed")
		}
	}
	for _, comp := range strings.Split(path[1:], "/") {
		switch comp {
		case "":
			return bad("empty component")
		case ".", "..":
			return bad("relative component")
		}
	}
	return nil
}
