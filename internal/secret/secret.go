// Package secret provides a string type that never prints its value.
package secret

import "log/slog"

// Secret holds a password, key or token. Its String, GoString and LogValue
// methods print "***", so a Secret that ends up in a log line or an error
// message does not leak.
type Secret string

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return "***" }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return "***" }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue("***") }

// MarshalText keeps secrets out of JSON and YAML output.
func (s Secret) MarshalText() ([]byte, error) { return []byte("***"), nil }

// IsEmpty reports whether no secret was set.
func (s Secret) IsEmpty() bool { return s == "" }
