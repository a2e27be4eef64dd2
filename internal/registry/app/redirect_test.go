package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"testing"
)

// TestRedirectMiddleware: with middleware.storage redirect, a blob GET
// answers 307 to the base URL plus the blob's path in storage, only for a
// blob linked into the repository asked for.
func TestRedirectMiddleware(t *testing.T) {
	base := start(t, `middleware:
  storage:
    - name: redirect
      options:
        baseurl: https://cdn.example.com/registry/
`, slog.New(slog.DiscardHandler))
	content := []byte("layer served by the cdn")
	sum := sha256.Sum256(content)
	hexd := hex.EncodeToString(sum[:])
	dgst := "sha256:" + hexd
	resp, err := http.Post(base+"/v2/team/app/blobs/uploads/?digest="+dgst, "application/octet-stream", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name, path string
		status     int
		location   string
	}{
		{"linked", "/v2/team/app/blobs/" + dgst, http.StatusTemporaryRedirect,
			"https://cdn.example.com/registry/docker/registry/v2/blobs/sha256/" + hexd[:2] + "/" + hexd + "/data"},
		{"not linked", "/v2/other/blobs/" + dgst, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get("Location") != tt.location {
				t.Errorf("GET: %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tt.status, tt.location)
			}
		})
	}
	// HEAD is answered by the registry itself.
	req, _ := http.NewRequest(http.MethodHead, base+"/v2/team/app/blobs/"+dgst, nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD: %d", resp.StatusCode)
	}
}
