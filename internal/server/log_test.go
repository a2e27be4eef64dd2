package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		json, debug   bool
		bad           bool
	}{
		{"", "", false, false, false},
		{"json", "debug", true, true, false},
		{"logstash", "trace", true, true, false},
		{"TEXT", "warning", false, false, false},
		{"xml", "", false, false, true},
		{"", "loud", false, false, true},
	} {
		t.Run(tc.format+"/"+tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewLogger(&buf, LogOptions{Format: tc.format, Level: tc.level, Fields: map[string]any{"service": "x"}})
			if tc.bad {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			out := buf.String()
			if got := strings.Contains(out, "msg=d") || strings.Contains(out, `"msg":"d"`); got != tc.debug {
				t.Errorf("debug line present = %v, want %v:\n%s", got, tc.debug, out)
			}
			if tc.json {
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil || m["service"] != "x" {
						t.Errorf("not JSON with the field: %q", line)
					}
				}
			} else if !strings.Contains(out, "service=x") {
				t.Errorf("field missing: %s", out)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		keep         bool
	}{
		{"sane", "abc-123", true},
		{"empty", "", false},
		{"space", "a b", false},
		{"long", strings.Repeat("a", 129), false},
		{"control", "a\x01", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set("X-Request-Id", tc.header)
			}
			id := RequestID(r)
			if (id == tc.header) != tc.keep {
				t.Fatalf("RequestID = %q, keep %v", id, tc.keep)
			}
			if id == "" || len(id) > maxRequestID {
				t.Fatalf("bad id %q", id)
			}
		})
	}
}

func TestMethodLabelAndClip(t *testing.T) {
	if MethodLabel("GET") != "GET" || MethodLabel("PATCH") != "PATCH" || MethodLabel(strings.Repeat("X", 900000)) != "OTHER" || MethodLabel("get") != "OTHER" {
		t.Fatal("MethodLabel")
	}
	long := strings.Repeat("é", 1000)
	c := Clip(long, 101)
	if len(c) > 130 || !strings.HasSuffix(c, "...(2000 bytes)") || !strings.HasPrefix(c, "éé") {
		t.Fatalf("Clip = %q", c)
	}
	if strings.ContainsRune(c, '\uFFFD') {
		t.Fatal("Clip cut a rune")
	}
	if Clip("short", 0) != "short" {
		t.Fatal("Clip changed a short string")
	}
}

func TestLogAccessClipsClientStrings(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	LogAccess(t.Context(), log, slog.LevelInfo, Access{
		ID: "id", Method: strings.Repeat("M", 100000), Path: "/" + strings.Repeat("p", 100000), Status: 405,
		Duration: time.Millisecond, Agent: strings.Repeat("a", 100000), Account: "alice",
		Attrs: []slog.Attr{slog.String("route", "base")},
	})
	if buf.Len() > 4096 {
		t.Fatalf("access line is %d bytes", buf.Len())
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"request_id", "method", "path", "status", "bytes", "duration", "remote", "user_agent", "account", "route"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}
	if m["msg"] != "request" {
		t.Errorf("msg = %v", m["msg"])
	}
}
