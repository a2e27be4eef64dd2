package cli

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashPassword(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantPw   string
		wantCost int
		wantErr  string
	}{
		{name: "echo", stdin: "s3cret pw\n", wantPw: "s3cret pw", wantCost: 10},
		{name: "crlf and second line ignored", stdin: "pw\r\nother\n", wantPw: "pw", wantCost: 10},
		{name: "no newline", stdin: "pw", wantPw: "pw", wantCost: 10},
		{name: "cost", stdin: "pw\n", args: []string{"--cost", "11"}, wantPw: "pw", wantCost: 11},
		{name: "empty", stdin: "\n", wantCode: 1, wantErr: "password is empty"},
		{name: "nothing", stdin: "", wantCode: 1, wantErr: "no password"},
		{name: "too long", stdin: strings.Repeat("x", 73) + "\n", wantCode: 1, wantErr: "72 bytes"},
		{name: "cost too low", stdin: "pw\n", args: []string{"--cost", "4"}, wantCode: 2, wantErr: "between 10 and 14"},
		{name: "cost too high", stdin: "pw\n", args: []string{"--cost", "15"}, wantCode: 2, wantErr: "between 10 and 14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMain(t, tt.stdin, append([]string{"hash-password"}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if tt.wantErr != "" {
				if !strings.Contains(errOut, tt.wantErr) {
					t.Errorf("stderr %q does not contain %q", errOut, tt.wantErr)
				}
				return
			}
			hash := strings.TrimSuffix(out, "\n")
			if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(tt.wantPw)); err != nil {
				t.Errorf("hash %q does not match the password: %v", hash, err)
			}
			if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != tt.wantCost {
				t.Errorf("cost %d (%v), want %d", cost, err, tt.wantCost)
			}
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "$2a$") || errOut != "" {
				t.Errorf("stdout %q, stderr %q; want only the hash", out, errOut)
			}
		})
	}
}
