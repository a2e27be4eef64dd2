package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// LogOptions choose the format and level of a process's logger. The same
// builder serves both halves, so `serve --log-format json` turns every line
// of both into JSON.
type LogOptions struct {
	// Format is "text" (the default) or "json"; distribution's "logstash"
	// is read as JSON.
	Format string
	// Level is debug, info (the default), warn or error; distribution's
	// "trace", "warning", "fatal" and "panic" map to the nearest.
	Level string
	// Fields are added to every line (distribution's log.fields).
	Fields map[string]any
}

// NewLogger builds the logger opts describe, writing to w.
func NewLogger(w io.Writer, opts LogOptions) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(opts.Level) {
	case "", "info":
		lvl = slog.LevelInfo
	case "debug", "trace":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error", "fatal", "panic":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", opts.Level)
	}
	ho := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch strings.ToLower(opts.Format) {
	case "", "text":
		h = slog.NewTextHandler(w, ho)
	case "json", "logstash":
		h = slog.NewJSONHandler(w, ho)
	default:
		return nil, fmt.Errorf("log format %q: want text or json", opts.Format)
	}
	log := slog.New(h)
	for k, v := range opts.Fields {
		log = log.With(k, v)
	}
	return log, nil
}

// maxRequestID bounds a request id taken from the client.
const maxRequestID = 128

// RequestID returns the client's X-Request-Id when it is short and printable
// ASCII (so a proxy's id follows the request through both halves), else a
// new random one.
func RequestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= maxRequestID && printable(id) {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// MethodLabel returns m when it is a method HTTP defines and "OTHER"
// otherwise, so that a client cannot mint metric label values (or log
// volume) with made-up methods.
func MethodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// maxLogString bounds every client-controlled string written to a log.
const maxLogString = 512

// Clip shortens a client-controlled string for a log line: at most n bytes
// (maxLogString when n <= 0), cut on a rune boundary, with the original
// length noted when it was cut.
func Clip(s string, n int) string {
	if n <= 0 {
		n = maxLogString
	}
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:cut], len(s))
}

// Access is one request as the access log reports it. Both halves write
// the same keys; Attrs carries what only one of them knows (the registry's
// route and repository, the auth server's endpoint, outcome and grant).
type Access struct {
	ID       string
	Method   string
	Path     string
	Status   int
	Bytes    int64
	Duration time.Duration
	Remote   string
	Agent    string
	Account  string
	Attrs    []slog.Attr
}

// LogAccess writes a as one "request" line at level. Every string the
// client controls is clipped.
func LogAccess(ctx context.Context, log *slog.Logger, level slog.Level, a Access) {
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 10+len(a.Attrs))
	attrs = append(attrs,
		slog.String("request_id", a.ID),
		slog.String("method", Clip(a.Method, 32)),
		slog.String("path", Clip(a.Path, 2048)),
		slog.Int("status", a.Status),
		slog.Int64("bytes", a.Bytes),
		slog.Duration("duration", a.Duration),
		slog.String("remote", a.Remote),
		slog.String("user_agent", Clip(a.Agent, 0)),
		slog.String("account", Clip(a.Account, 0)),
	)
	attrs = append(attrs, a.Attrs...)
	log.LogAttrs(ctx, level, "request", attrs...)
}
