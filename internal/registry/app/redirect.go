package app

import (
	"fmt"
	"net/http"
	"net/url"
	"path"

	"github.com/gatehouse-registry/gatehouse/internal/config/regconfig"
	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// baseURLRedirect is distribution's redirect storage middleware: a blob is
// fetched from the base URL plus its path in storage, so whatever serves
// the base URL (a CDN, a web server over the same files) must mirror the
// storage layout.
type baseURLRedirect struct{ base *url.URL }

// RedirectURL implements driver.Redirector.
func (b baseURLRedirect) RedirectURL(_ *http.Request, p string) (string, error) {
	u := *b.base
	u.Path = path.Join("/", b.base.Path, p)
	u.RawPath = ""
	return u.String(), nil
}

// redirector returns the redirect middleware of cfg, or nil without one.
func redirector(cfg *regconfig.Config) (driver.Redirector, error) {
	base := cfg.RedirectBaseURL()
	if base == "" {
		return nil, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("middleware.storage redirect baseurl: %w", err)
	}
	return baseURLRedirect{base: u}, nil
}

var _ driver.Redirector = baseURLRedirect{}
