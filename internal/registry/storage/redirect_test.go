package storage

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver/inmemory"
)

// redirectingDriver hands out a URL for any path, as a presigning
// object-store driver would.
type redirectingDriver struct{ driver.Driver }

func (redirectingDriver) RedirectURL(_ *http.Request, path string) (string, error) {
	return "https://objects.example" + path, nil
}

var _ driver.Redirector = redirectingDriver{}

// TestBlobRedirectURLNeedsLink: a redirect URL reads the global blob data,
// so it is handed out only for a blob linked into the repository asked
// about; otherwise pull access to one repository would read every blob.
func TestBlobRedirectURLNeedsLink(t *testing.T) {
	reg := New(redirectingDriver{inmemory.New()}, Options{})
	private := mustRepo(t, reg, "team/private")
	public := mustRepo(t, reg, "team/public")
	desc := pushBlob(t, private, []byte("secret layer"))
	req := httptest.NewRequest(http.MethodGet, "/v2/team/public/blobs/"+desc.Digest.String(), nil)

	tests := []struct {
		name    string
		repo    *Repository
		wantURL bool
	}{
		{"linked", private, true},
		{"not linked", public, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.repo.BlobRedirectURL(req, desc.Digest)
			if tt.wantURL {
				if err != nil || u == "" {
					t.Fatalf("BlobRedirectURL = %q, %v; want a URL", u, err)
				}
				return
			}
			if u != "" || !errors.Is(err, ErrBlobUnknown) {
				t.Fatalf("BlobRedirectURL = %q, %v; want no URL and ErrBlobUnknown", u, err)
			}
		})
	}
}
