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

// byteRange is a satisfiable range of a blob: Length bytes from Start.
type byteRange struct {
	Start, Length int64
}

// errRangeNotSatisfiable means the Range header is well formed but does not
// fit the blob (or is "500-0"); the answer is 416.
var errRangeNotSatisfiable = errors.New("range not satisfiable")

// parseRange parses a Range header against a blob of size bytes. Only one
// range is served; a header naming several is answered with the whole blob
// (ok=false), which RFC 9110 allows. A malformed header is ignored the same
// way; an unsatisfiable one is errRangeNotSatisfiable.
func parseRange(h string, size int64) (r byteRange, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return byteRange{}, false, nil
	}
	a, b, cut := strings.Cut(strings.TrimSpace(spec), "-")
	if !cut {
		return byteRange{}, false, nil
	}
	switch {
	case a == "": // suffix: the last b bytes
		n, perr := parseOffset(b)
		if perr != nil {
			return byteRange{}, false, nil
		}
		if n == 0 || size == 0 {
			return byteRange{}, false, errRangeNotSatisfiable
		}
		n = min(n, size)
		return byteRange{Start: size - n, Length: n}, true, nil
	default:
		start, perr := parseOffset(a)
		if perr != nil {
			return byteRange{}, false, nil
		}
		end := size - 1
		if b != "" {
			if end, perr = parseOffset(b); perr != nil {
				return byteRange{}, false, nil
			}
			if end < start {
				return byteRange{}, false, errRangeNotSatisfiable
			}
			end = min(end, size-1)
		}
		if start >= size {
			return byteRange{}, false, errRangeNotSatisfiable
		}
		return byteRange{Start: start, Length: end - start + 1}, true, nil
	}
}
