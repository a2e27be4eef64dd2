package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

// pageSize reads ?n=. Absent: max. Larger than max (however large): max.
// Not a non-negative integer: PAGINATION_NUMBER_INVALID.
func pageSize(q url.Values, limit int) (int, *Error) {
	vs, ok := q["n"]
	if !ok {
		return limit, nil
	}
	s := firstValue(vs)
	if s == "" {
		return limit, nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, apiErr(CodePaginationInvalid, "n must be a non-negative integer", map[string]string{"n": truncate(s, 40)})
		}
	}
	// Only digits are left, so the one possible error is overflow: a number
	// that large is clamped like any other above the cap.
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) || n > int64(limit) || n > math.MaxInt32 {
		return limit, nil
	}
	return int(n), nil
}

// nextLink builds the RFC 5988 Link header for the following page.
func (h *Handler) nextLink(path, last string, n int) string {
	q := url.Values{}
	q.Set("last", last)
	q.Set("n", strconv.Itoa(n))
	return "<" + h.opts.Prefix + path + "?" + q.Encode() + `>; rel="next"`
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// tags answers GET /v2/<name>/tags/list[?n=&last=].
func (h *Handler) tags(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	n, e := pageSize(q, h.opts.MaxTags)
	if e != nil {
		return e
	}
	name := info(r.Context()).rt.Name
	repo, err := h.repo(r)
	if err != nil {
		return err
	}
	tags := []string{}
	more := false
	if n > 0 {
		got, m, err := repo.Tags(r.Context(), q.Get("last"), n)
		if err != nil {
			return err
		}
		if got != nil {
			tags = got
		}
		more = m
	}
	if more && len(tags) > 0 {
		w.Header().Set("Link", h.nextLink("/v2/"+name+"/tags/list", tags[len(tags)-1], n))
	}
	return writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, tags})
}

// catalog answers GET /v2/_catalog[?n=&last=].
func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	n, e := pageSize(q, h.opts.MaxEntries)
	if e != nil {
		return e
	}
	repos := []string{}
	more := false
	if n > 0 {
		got, m, err := h.opts.Registry.Catalog(r.Context(), q.Get("last"), n)
		if err != nil {
			return err
		}
		if got != nil {
			repos = got
		}
		more = m
	}
	if more && len(repos) > 0 {
		w.Header().Set("Link", h.nextLink("/v2/_catalog", repos[len(repos)-1], n))
	}
	return writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// referrers answers GET /v2/<name>/referrers/<digest>[?artifactType=]. No
// referrers (or an unknown subject) is an empty index, never a 404.
func (h *Handler) referrers(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	subject, e := parseDigest(info(ctx).rt.Ref)
	if e != nil {
		return e
	}
	artifactType := r.URL.Query().Get("artifactType")
	repo, err := h.repo(r)
	if err != nil {
		return err
	}
	descs, err := repo.Referrers(ctx, subject, artifactType)
	if err != nil && !errors.Is(err, storage.ErrNameUnknown) && !errors.Is(err, storage.ErrManifestUnknown) {
		return err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: make([]ocispec.Descriptor, 0, len(descs))}
	idx.SchemaVersion = 2
	for _, d := range descs {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: d.ArtifactType, Annotations: d.Annotations,
		})
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, r, ocispec.MediaTypeImageIndex, idx)
}
