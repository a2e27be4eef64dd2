package api

import (
	"errors"
	"strconv"
	"strings"
)

var errBadRange = errors.New("malformed range")

// parseContentRange parses the Content-Range of an upload chunk. The spec
// writes it as "start-end" (inclusive); clients also send "bytes start-end"
// and "bytes=start-end", optionally with "/total". It returns the first and
// last byte offsets.
func parseContentRange(s string) (start, end int64, err error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "bytes"); ok {
		s = strings.TrimLeft(rest, " =")
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		total := s[i+1:]
		if total != "*" {
			if _, err := parseOffset(total); err != nil {
				return 0, 0, errBadRange
			}
		}
		s = s[:i]
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errBadRange
	}
	if start, err = parseOffset(a); err != nil {
		return 0, 0, errBadRange
	}
	if end, err = parseOffset(b); err != nil {
		return 0, 0, errBadRange
	}
	if end < start {
		return 0, 0, errBadRange
	}
	return start, end, nil
}

// parseOffset parses a non-negative decimal byte offset.
func parseOffset(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, errBadRange
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errBadRange
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// rangeWellFormed reports whether a Range header is a syntactically valid
// bytes range set ("bytes=0-9", "bytes=500-", "bytes=-100", comma lists).
// Anything else (another unit, garbage) is ignored as RFC 9110 allows, and
// the whole blob is served; a well-formed but unsatisfiable range still
// gets 416 from http.ServeContent.
func rangeWellFormed(h string) bool {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || spec == "" {
		return false
	}
	for _, part := range strings.Split(spec, ",") {
		a, b, cut := strings.Cut(strings.TrimSpace(part), "-")
		if !cut || (a == "" && b == "") {
			return false
		}
		if a != "" {
			if _, err := parseOffset(a); err != nil {
				return false
			}
		}
		if b != "" {
			if _, err := parseOffset(b); err != nil {
				return false
			}
		}
	}
	return true
}

// rangeStart returns the offset a single-range GET starts reading at, so
// the stream can be opened before the status is sent. ok is false for a
// multi-range or unsatisfiable request, which http.ServeContent answers
// on its own (multipart, or 416).
func rangeStart(h string, size int64) (start int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, false
	}
	a, b, _ := strings.Cut(strings.TrimSpace(spec), "-")
	if a == "" { // the last b bytes
		n, err := parseOffset(b)
		if err != nil || n == 0 {
			return 0, false
		}
		return max(size-n, 0), size > 0
	}
	start, err := parseOffset(a)
	if err != nil || start >= size {
		return 0, false
	}
	return start, true
}
