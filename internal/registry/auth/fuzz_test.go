package auth

import (
	"strings"
	"testing"
)

// FuzzParseHtpasswd: any file content is either refused with an error or
// loaded; it never panics, and a loaded file never accepts an empty password.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n"))
	f.Add([]byte("# comment\n\nbob:$2a$10$abcdefghijklmnopqrstuuAbCdEfGhIjKlMnOpQrStUvWxYz01234\n"))
	f.Add([]byte("carol:$apr1$xyz$abc\n"))
	f.Add([]byte("nocolon\n"))
	f.Add([]byte(":$2y$05$x\n"))
	f.Add([]byte("dup:$2y$05$a\ndup:$2y$05$b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHtpasswd("test", data)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			user, _, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok && user != "" && basic(h, "192.0.2.1:1", user, "") == nil {
				t.Fatalf("user %q accepted an empty password", user)
			}
		}
	})
}

// FuzzBearerToken: the Authorization header parser never panics and only
// returns a non-empty token for the Bearer scheme.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer  x ", "Basic YWxpY2U6cHc=", "Bearer", "Bearer ", "", " Bearer\ttok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken(h)
		if ok && (tok == "" || !strings.EqualFold(strings.Fields(h)[0], "bearer")) {
			t.Fatalf("bearerToken(%q) = %q, true", h, tok)
		}
		if !ok && tok != "" {
			t.Fatalf("bearerToken(%q) returned %q with ok=false", h, tok)
		}
	})
}
