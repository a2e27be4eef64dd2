package api

import (
	"strings"
	"testing"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"0-9", 0, 9, true},
		{"10-19", 10, 19, true},
		{"bytes 0-9", 0, 9, true},
		{"bytes=0-9", 0, 9, true},
		{"bytes 0-9/100", 0, 9, true},
		{"bytes 0-9/*", 0, 9, true},
		{"5-5", 5, 5, true},
		{"9-0", 0, 0, false},
		{"", 0, 0, false},
		{"-", 0, 0, false},
		{"a-b", 0, 0, false},
		{"-5", 0, 0, false},
		{"5-", 0, 0, false},
		{"+1-2", 0, 0, false},
		{"1-2/x", 0, 0, false},
		{"99999999999999999999-1", 0, 0, false},
		{"0-99999999999999999999", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, e, err := parseContentRange(tt.in)
			if (err == nil) != tt.ok || (tt.ok && (s != tt.start || e != tt.end)) {
				t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, ok=%v", tt.in, s, e, err, tt.start, tt.end, tt.ok)
			}
		})
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-9", "bytes 0-9/10", "bytes=1-2", "9-0", "-", "1-2/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseContentRange(s)
		if err == nil && (start < 0 || end < start) {
			t.Fatalf("parseContentRange(%q) = %d, %d", s, start, end)
		}
	})
}

func TestRangeWellFormed(t *testing.T) {
	tests := map[string]bool{
		"bytes=0-9": true, "bytes=500-": true, "bytes=-100": true, "bytes=500-0": true, "bytes=0-1, 4-5": true,
		"bytes=": false, "bytes=-": false, "bytes=a-b": false, "pages=1-2": false, "garbage": false, "bytes=1-2-3": false,
		"bytes=99999999999999999999-": false,
	}
	for h, want := range tests {
		if got := rangeWellFormed(h); got != want {
			t.Errorf("rangeWellFormed(%q) = %v, want %v", h, got, want)
		}
	}
}

func FuzzRangeWellFormed(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=1-,2-3", "pages=1", "bytes=--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if rangeWellFormed(h) && !strings.HasPrefix(h, "bytes=") {
			t.Fatalf("accepted %q", h)
		}
	})
}

func TestRangeStart(t *testing.T) {
	tests := []struct {
		h     string
		size  int64
		start int64
		ok    bool
	}{
		{"bytes=0-9", 100, 0, true},
		{"bytes=10-", 100, 10, true},
		{"bytes=99-200", 100, 99, true},
		{"bytes=100-", 100, 0, false}, // unsatisfiable: ServeContent answers 416
		{"bytes=-10", 100, 90, true},
		{"bytes=-1000", 100, 0, true},
		{"bytes=-0", 100, 0, false},
		{"bytes=-5", 0, 0, false},
		{"bytes=0-1,5-6", 100, 0, false}, // multipart
		{"bytes= 7-8", 100, 7, true},
		{"items=0-1", 100, 0, false},
	}
	for _, tt := range tests {
		start, ok := rangeStart(tt.h, tt.size)
		if start != tt.start || ok != tt.ok {
			t.Errorf("rangeStart(%q, %d) = %d, %v; want %d, %v", tt.h, tt.size, start, ok, tt.start, tt.ok)
		}
	}
}
