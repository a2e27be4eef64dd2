package api

import (
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
