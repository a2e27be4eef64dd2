package s3

import (
	"fmt"
	"strconv"
	"strings"
)

// Object keys. A driver path /a/b is the key <root>/a/b (no leading
// slash), as distribution's S3 driver stores it, so a bucket written by
// registry:2 is read as is. Directories are key prefixes.
//
// A file being written (a writer closed but not committed) is kept as
// "segment" objects under <key>~/, each named by the offset of its first
// byte in 20 decimal digits: <key>~/00000000000000000000, ... The "~" can't
// occur in a driver path, so these keys never collide with a file or
// directory; listings show them as the file <key>.
const (
	stateMark = "~"
	stateSep  = stateMark + "/"
)

// keyMap maps driver paths to object keys under a root prefix.
type keyMap struct{ root string }

// key returns the object key of path.
func (m keyMap) key(path string) string {
	if path == "/" {
		return m.root
	}
	if m.root == "" {
		return path[1:]
	}
	return m.root + path
}

// dirPrefix returns the prefix of every key below the directory path.
func (m keyMap) dirPrefix(path string) string {
	k := m.key(path)
	if k == "" {
		return ""
	}
	return k + "/"
}

// stateDir returns the prefix of the segments of the file being written
// at path.
func (m keyMap) stateDir(path string) string { return m.key(path) + stateSep }

// segmentKey names the segment of path starting at offset.
func (m keyMap) segmentKey(path string, offset int64) string {
	return m.stateDir(path) + fmt.Sprintf("%020d", offset)
}

// segmentOffset parses the offset out of a segment key below stateDir.
func segmentOffset(stateDir, key string) (int64, bool) {
	s, ok := strings.CutPrefix(key, stateDir)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// childPath joins a directory path and a name.
func childPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// validName reports whether name can be a path component. Keys that are
// not (written by other tools) are left out of listings.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// entryKind is what a listed key below a directory stands for.
type entryKind int

const (
	entryNone    entryKind = iota // not addressable: skip
	entryFile                     // a committed object
	entryDir                      // a common prefix
	entryWriting                  // the segments of a file being written
)

// classify reads one entry of a delimited listing below a directory
// prefix: rest is the key (or common prefix) without that prefix.
func classify(rest string) (name string, kind entryKind) {
	if dir, ok := strings.CutSuffix(rest, "/"); ok {
		if f, ok := strings.CutSuffix(dir, stateMark); ok {
			if validName(f) {
				return f, entryWriting
			}
			return "", entryNone
		}
		if validName(dir) {
			return dir, entryDir
		}
		return "", entryNone
	}
	if validName(rest) {
		return rest, entryFile
	}
	return "", entryNone
}

// splitWalkKey reads one key of a recursive listing below a directory
// prefix: it returns the path components of the file it belongs to and
// whether it is a segment of a file being written. ok is false for keys
// no driver path names.
func splitWalkKey(rest string) (comps []string, writing, ok bool) {
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		if f, cut := strings.CutSuffix(p, stateMark); cut && i < len(parts)-1 {
			if !validName(f) {
				return nil, false, false
			}
			comps = append(comps, f)
			return comps, true, true
		}
		if !validName(p) {
			return nil, false, false
		}
		comps = append(comps, p)
	}
	return comps, false, true
}
