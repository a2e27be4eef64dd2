package api

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRoute(t *testing.T) {
	const d = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	tests := []struct {
		path string
		want route
		code string // expected error code, "" for success
	}{
		{"", route{Kind: routeBase}, ""},
		{"/", route{Kind: routeBase}, ""},
		{"/_catalog", route{Kind: routeCatalog}, ""},
		{"/a/tags/list", route{Kind: routeTags, Name: "a"}, ""},
		{"/a/b/c/tags/list", route{Kind: routeTags, Name: "a/b/c"}, ""},
		{"/a/manifests/latest", route{Kind: routeManifest, Name: "a", Ref: "latest"}, ""},
		{"/a/manifests/" + d, route{Kind: routeManifest, Name: "a", Ref: d}, ""},
		{"/a/blobs/" + d, route{Kind: routeBlob, Name: "a", Ref: d}, ""},
		{"/a/blobs/uploads/", route{Kind: routeUploadStart, Name: "a"}, ""},
		{"/a/blobs/uploads", route{Kind: routeUploadStart, Name: "a"}, ""},
		{"/a/blobs/uploads/abc-123", route{Kind: routeUpload, Name: "a", UploadID: "abc-123"}, ""},
		{"/a/blobs/uploads/6ba7b810-9dad-11d1-80b4-00c04fd430c8", route{Kind: routeUpload, Name: "a", UploadID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}, ""},
		{"/a/referrers/" + d, route{Kind: routeReferrers, Name: "a", Ref: d}, ""},
		// names that contain the markers' words
		{"/blobs/manifests/x", route{Kind: routeManifest, Name: "blobs", Ref: "x"}, ""},
		{"/a/blobs/b/manifests/latest", route{Kind: routeManifest, Name: "a/blobs/b", Ref: "latest"}, ""},
		{"/a/manifests/b/blobs/" + d, route{Kind: routeBlob, Name: "a/manifests/b", Ref: d}, ""},
		{"/a/tags/list/tags/list", route{Kind: routeTags, Name: "a/tags/list"}, ""},
		{"/a/blobs/uploads/blobs/" + d, route{Kind: routeBlob, Name: "a/blobs/uploads", Ref: d}, ""},
		{"/uploads/blobs/uploads/", route{Kind: routeUploadStart, Name: "uploads"}, ""},
		// bad names
		{"/../etc/manifests/x", route{}, "NAME_INVALID"},
		{"/a/../b/manifests/x", route{}, "NAME_INVALID"},
		{"/A/manifests/x", route{}, "NAME_INVALID"},
		{"//a/manifests/x", route{}, "NAME_INVALID"},
		{"/a//b/manifests/x", route{}, "NAME_INVALID"},
		{"/a./manifests/x", route{}, "NAME_INVALID"},
		{"/" + strings.Repeat("a", 256) + "/tags/list", route{}, "NAME_INVALID"},
		// not a route
		{"/a", route{}, "NOT_FOUND"},
		{"/a/manifests/", route{}, "NOT_FOUND"},
		{"/a/manifests/x/y", route{}, "NOT_FOUND"},
		{"x", route{}, "NOT_FOUND"},
		{"/manifests/x", route{}, "NOT_FOUND"},
		{"/a/blobs/uploads/a/b", route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/a/blobs/uploads/../x", route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/a/blobs/uploads/..", route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/a/blobs/uploads/=x", route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/a/blobs/uploads/-x", route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/a/blobs/uploads/_x", route{}, "BLOB_UPLOAD_UNKNOWN"},
		{"/a/blobs/uploads/" + strings.Repeat("u", 129), route{}, "BLOB_UPLOAD_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := parseRoute(tt.path)
			if tt.code != "" {
				if err == nil || err.Code.Name != tt.code {
					t.Fatalf("parseRoute(%q) = %+v, %v; want %s", tt.path, got, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRoute(%q): %v", tt.path, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseRoute(%q) (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		ref, tag, code string
	}{
		{"latest", "latest", ""},
		{"_x.Y-1", "_x.Y-1", ""},
		{strings.Repeat("a", 128), strings.Repeat("a", 128), ""},
		{strings.Repeat("a", 129), "", "TAG_INVALID"},
		{".hidden", "", "TAG_INVALID"},
		{"-x", "", "TAG_INVALID"},
		{"sha256:abc", "", "DIGEST_INVALID"},
		{"sha256:" + strings.Repeat("0", 64), "", ""},
		{"sha512:" + strings.Repeat("0", 128), "", ""},
		{"sha384:" + strings.Repeat("0", 96), "", "DIGEST_INVALID"},
		{"md5:" + strings.Repeat("0", 32), "", "DIGEST_INVALID"},
		{"sha256:" + strings.Repeat("G", 64), "", "DIGEST_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			tag, _, err := parseReference(tt.ref)
			code := ""
			if err != nil {
				code = err.Code.Name
			}
			if code != tt.code || tag != tt.tag {
				t.Errorf("parseReference(%q) = %q, %s; want %q, %s", tt.ref, tag, code, tt.tag, tt.code)
			}
		})
	}
}

func TestPageSize(t *testing.T) {
	tests := []struct {
		query string
		want  int
		code  string
	}{
		{"", 100, ""},
		{"n=", 100, ""},
		{"n=5", 5, ""},
		{"n=0", 0, ""},
		{"n=100", 100, ""},
		{"n=101", 100, ""},
		{"n=99999999999999999999999999", 100, ""},
		{"n=-1", 0, "PAGINATION_NUMBER_INVALID"},
		{"n=abc", 0, "PAGINATION_NUMBER_INVALID"},
		{"n=1e3", 0, "PAGINATION_NUMBER_INVALID"},
		{"n=%20", 0, "PAGINATION_NUMBER_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			got, err := pageSize(q, 100)
			code := ""
			if err != nil {
				code = err.Code.Name
			}
			if code != tt.code || (code == "" && got != tt.want) {
				t.Errorf("pageSize(%q) = %d, %s; want %d, %s", tt.query, got, code, tt.want, tt.code)
			}
		})
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"", "/", "/_catalog", "/a/b/tags/list", "/a/manifests/latest", "/a/blobs/uploads/x",
		"/a/blobs/b/manifests/c", "/../x/blobs/sha256:00", "/a/referrers/sha512:ff", "/a/blobs/uploads"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt, err := parseRoute(path)
		if err != nil {
			return
		}
		switch rt.Kind {
		case routeBase, routeCatalog:
			return
		}
		if checkName(rt.Name) != nil {
			t.Fatalf("parseRoute(%q) accepted invalid name %q", path, rt.Name)
		}
		if strings.Contains(rt.Name, "..") || strings.Contains(rt.Ref, "/") || strings.Contains(rt.UploadID, "/") {
			t.Fatalf("parseRoute(%q) = %+v: traversal or slash in a component", path, rt)
		}
		if _, _, e := parseReference(rt.Ref); e == nil && strings.ContainsAny(rt.Ref, "/\\%") {
			t.Fatalf("reference %q accepted", rt.Ref)
		}
	})
}
