package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/token"
	"github.com/google/go-cmp/cmp"
)

// fakeTokenServer answers like docker_auth for alice/s3cret and records
// the last query.
func fakeTokenServer(t *testing.T) (*httptest.Server, *string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(key, nil, token.SignerOptions{KeyID: token.KeyIDThumbprint})
	if err != nil {
		t.Fatal(err)
	}
	var lastQuery string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastQuery = r.URL.RawQuery
		user, pw, ok := r.BasicAuth()
		if ok && (user != "alice" || pw != "s3cret") {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "Auth failed.", http.StatusUnauthorized)
			return
		}
		scopes, err := token.ParseScopes(r.URL.Query()["scope"])
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var access []token.ResourceActions
		for _, s := range scopes {
			access = append(access, token.ResourceActions{Type: s.Type, Name: s.Name, Actions: s.Actions})
		}
		tok, err := signer.Sign(token.NewClaims("test", user, r.URL.Query().Get("service"), time.Now(), time.Minute, access))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok, "access_token": tok})
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, &lastQuery, caFile
}

func TestTokenCommand(t *testing.T) {
	srv, lastQuery, caFile := fakeTokenServer(t)
	realm := srv.URL + "/auth"
	base := []string{"token", "--realm", realm, "--service", "registry.test"}

	t.Run("decode", func(t *testing.T) {
		code, out, errOut := runMain(t, "s3cret\n", append(base, "--ca-file", caFile, "-u", "alice", "--password-stdin",
			"--scope", "repository:alpine:push,pull", "--scope", "registry:catalog:*", "--decode")...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var got struct {
			Header map[string]any
			Claims token.Claims
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("output is not the decoded token: %v\n%s", err, out)
		}
		if got.Header["alg"] != "ES256" || got.Claims.Subject != "alice" || got.Claims.Audience != "registry.test" {
			t.Errorf("header %v, claims %+v", got.Header, got.Claims)
		}
		want := []token.ResourceActions{
			{Type: "repository", Name: "alpine", Actions: []string{"pull", "push"}},
			{Type: "registry", Name: "catalog", Actions: []string{"*"}},
		}
		if diff := cmp.Diff(want, got.Claims.Access); diff != "" {
			t.Errorf("access mismatch (-want +got):\n%s", diff)
		}
		if strings.Contains(out+errOut, "s3cret") {
			t.Errorf("the password is printed")
		}
		if !strings.Contains(*lastQuery, "account=alice") || strings.Contains(*lastQuery, "offline_token") {
			t.Errorf("query %q", *lastQuery)
		}
	})

	t.Run("env password, raw JSON, refresh", func(t *testing.T) {
		t.Setenv(passwordEnv, "s3cret")
		code, out, errOut := runMain(t, "", append(base, "--ca-file", caFile, "-u", "alice", "--refresh")...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var answer map[string]string
		if err := json.Unmarshal([]byte(out), &answer); err != nil || answer["token"] == "" || answer["token"] != answer["access_token"] {
			t.Fatalf("output %q is not the token JSON (%v)", out, err)
		}
		if !strings.Contains(*lastQuery, "offline_token=true") || !strings.Contains(*lastQuery, "client_id=") {
			t.Errorf("--refresh did not ask for an offline token: %q", *lastQuery)
		}
	})

	t.Run("anonymous insecure", func(t *testing.T) {
		code, out, errOut := runMain(t, "", append(base, "--insecure", "--decode")...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(errOut, "not checked") || !strings.Contains(out, `"sub": ""`) {
			t.Errorf("stdout %q stderr %q", out, errOut)
		}
	})

	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"untrusted certificate", "s3cret\n", []string{"-u", "alice", "--password-stdin"}, 1, "certificate"},
		{"wrong password", "nope\n", []string{"--ca-file", caFile, "-u", "alice", "--password-stdin"}, 1, "401"},
		{"no password", "", []string{"--ca-file", caFile, "-u", "alice"}, 2, "GATEHOUSE_PASSWORD"},
		{"empty stdin", "", []string{"--ca-file", caFile, "-u", "alice", "--password-stdin"}, 2, "no password"},
		{"stdin without user", "x\n", []string{"--password-stdin"}, 2, "needs -u"},
		{"bad scope", "", []string{"--scope", "Repository:a:pull"}, 2, "invalid scope"},
		{"bad ca file", "", []string{"--ca-file", filepath.Join(t.TempDir(), "none")}, 2, "--ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runMain(t, tt.stdin, append(base, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			if strings.Contains(errOut, "nope") || strings.Contains(errOut, "s3cret") {
				t.Errorf("stderr shows the password: %q", errOut)
			}
		})
	}

	for _, tt := range []struct {
		name, want string
		args       []string
	}{
		{"no realm", "--realm URL is required", []string{"token", "--service", "s"}},
		{"bad realm", "http or https URL", []string{"token", "--realm", "ftp://x", "--service", "s"}},
		{"no service", "--service is required", []string{"token", "--realm", realm}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runMain(t, "", tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.want)
			}
		})
	}
}

func TestDecodeJWT(t *testing.T) {
	for _, bad := range []string{"", "a.b", "!!.e30.x", "e30.bm90anNvbg.x"} {
		if _, err := decodeJWT(bad); err == nil {
			t.Errorf("decodeJWT(%q) succeeded", bad)
		}
	}
	got, err := decodeJWT("e30.eyJhIjoxfQ.sig")
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"header\": {},\n  \"claims\": {\n    \"a\": 1\n  }\n}\n"; string(got) != want {
		t.Errorf("decodeJWT = %q, want %q", got, want)
	}
}

// TestTokenTrustsTheServeCA: next to gatehouse serve's data directory, or
// with GATEHOUSE_DATA_DIR naming one, its trust CA is used without
// --ca-file; elsewhere the system CAs alone are.
func TestTokenTrustsTheServeCA(t *testing.T) {
	srv, _, caFile := fakeTokenServer(t)
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"token", "--realm", srv.URL + "/auth", "--service", "registry.test", "-u", "alice", "--password-stdin"}
	t.Setenv(dataDirEnv, "")

	dir := t.TempDir()
	t.Chdir(dir)
	if code, _, errOut := runMain(t, "s3cret\n", args...); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("without a data directory: exit %d, stderr %q; want a certificate error", code, errOut)
	}
	trust := filepath.Join(dir, "gatehouse-data", "trust")
	if err := os.MkdirAll(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(trust, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, "s3cret\n", args...)
	if code != 0 || !strings.Contains(out, `"token"`) || !strings.Contains(errOut, filepath.Join("gatehouse-data", "trust", "ca.crt")) {
		t.Fatalf("next to gatehouse-data: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	t.Chdir(t.TempDir())
	t.Setenv(dataDirEnv, filepath.Join(dir, "gatehouse-data"))
	if code, _, errOut := runMain(t, "s3cret\n", args...); code != 0 {
		t.Fatalf("with %s: exit %d, stderr %q", dataDirEnv, code, errOut)
	}
}
