package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestManifestPutGet(t *testing.T) {
	forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "team/app")
		desc, payload, _ := pushImage(t, r, "v1", "a")
		for _, ref := range []string{"v1", desc.Digest.String()} {
			mt, got, dg, err := r.GetManifest(ctx, ref)
			if err != nil {
				t.Fatalf("GetManifest(%s): %v", ref, err)
			}
			if mt != v1.MediaTypeImageManifest || dg != desc.Digest || !bytes.Equal(got, payload) {
				t.Errorf("GetManifest(%s) = %s %s (%d bytes)", ref, mt, dg, len(got))
			}
			st, err := r.StatManifest(ctx, ref)
			if err != nil || st.Size != int64(len(payload)) || st.Digest != desc.Digest {
				t.Errorf("StatManifest(%s) = %+v, %v", ref, st, err)
			}
		}
		// registry:2's files.
		d := reg.Driver()
		base := "/docker/registry/v2/repositories/team/app/_manifests"
		for p, want := range map[string]string{
			base + "/revisions/sha256/" + desc.Digest.Encoded() + "/link":     desc.Digest.String(),
			base + "/tags/v1/current/link":                                    desc.Digest.String(),
			base + "/tags/v1/index/sha256/" + desc.Digest.Encoded() + "/link": desc.Digest.String(),
			blobDataPath(desc.Digest):                                         string(payload),
		} {
			got, err := d.GetContent(ctx, p)
			if err != nil || string(got) != want {
				t.Errorf("%s = %q, %v; want %q", p, got, err, want)
			}
		}
		_, _, _, err := r.GetManifest(ctx, "v2")
		wantErr(t, "GetManifest unknown tag", err, ErrManifestUnknown)
		_, _, _, err = r.GetManifest(ctx, digest.FromString("x").String())
		wantErr(t, "GetManifest unknown digest", err, ErrManifestUnknown)
		_, _, _, err = mustRepo(t, reg, "other").GetManifest(ctx, desc.Digest.String())
		wantErr(t, "GetManifest from another repository", err, ErrManifestUnknown)
	})
}

func TestPutManifestValidation(t *testing.T) {
	ctx := context.Background()
	reg := New(drivers(t)["inmemory"](t), Options{})
	r := mustRepo(t, reg, "val/repo")
	cfg := pushBlob(t, r, []byte(`{"os":"linux"}`))
	layer := pushBlob(t, r, []byte("layer"))
	missing := v1.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: digest.FromString("missing"), Size: 7}
	foreign := missing
	foreign.URLs = []string{"https://example.com/layer"}
	good := image(t, cfg, []v1.Descriptor{layer}, nil, "")
	goodDigest := digest.FromBytes(good)
	sha512Digest := digest.SHA512.FromBytes(good)
	wrongSize := layer
	wrongSize.Size++
	noMediaType := strings.Replace(string(good), `"mediaType":"application/vnd.oci.image.manifest.v1+json",`, "", 1)
	if noMediaType == string(good) {
		t.Fatal("test setup: mediaType not removed")
	}
	child := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: goodDigest, Size: int64(len(good))}
	tests := []struct {
		name, ref, ct, payload string
		want                   error
	}{
		{"good by tag", "latest", v1.MediaTypeImageManifest, string(good), nil},
		{"good by digest", goodDigest.String(), v1.MediaTypeImageManifest, string(good), nil},
		{"sha512 digest", sha512Digest.String(), v1.MediaTypeImageManifest, string(good), nil},
		{"content type with parameters", "p", v1.MediaTypeImageManifest + "; charset=utf-8", string(good), nil},
		{"no mediaType uses the Content-Type", "nomt", v1.MediaTypeImageManifest, noMediaType, nil},
		{"index of a known child", "idx", v1.MediaTypeImageIndex, string(index(t, child)), nil},
		{"non-distributable layer not pushed", "foreign", v1.MediaTypeImageManifest, string(image(t, cfg, []v1.Descriptor{foreign}, nil, "")), nil},
		{"artifact with the empty config not pushed", "art", v1.MediaTypeImageManifest, string(image(t, cfg, nil, nil, "application/vnd.example")), nil},
		{"digest mismatch", digest.FromString("x").String(), v1.MediaTypeImageManifest, string(good), ErrDigestInvalid},
		{"bad digest ref", "sha256:zz", v1.MediaTypeImageManifest, string(good), ErrDigestInvalid},
		{"sha384 digest of the payload", digest.SHA384.FromBytes(good).String(), v1.MediaTypeImageManifest, string(good), ErrDigestInvalid},
		{"bad tag", "-bad", v1.MediaTypeImageManifest, string(good), ErrTagInvalid},
		{"long tag", strings.Repeat("t", 129), v1.MediaTypeImageManifest, string(good), ErrTagInvalid},
		{"media type mismatch", "t", v1.MediaTypeImageIndex, string(good), ErrManifestInvalid},
		{"schema1 content type", "t", MediaTypeDockerSchema1JWS, string(good), ErrManifestInvalid},
		{"schema1 payload", "t", "", `{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}`, ErrManifestInvalid},
		{"not json", "t", v1.MediaTypeImageManifest, "{", ErrManifestInvalid},
		{"no schemaVersion", "t", v1.MediaTypeImageManifest, `{"mediaType":"` + v1.MediaTypeImageManifest + `"}`, ErrManifestInvalid},
		{"unsupported type", "t", "application/vnd.oci.artifact.manifest.v1+json", `{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}`, ErrManifestInvalid},
		{"no config", "t", v1.MediaTypeImageManifest, `{"schemaVersion":2,"mediaType":"` + v1.MediaTypeImageManifest + `","layers":[]}`, ErrManifestInvalid},
		{"missing layer", "t", v1.MediaTypeImageManifest, string(image(t, cfg, []v1.Descriptor{missing}, nil, "")), ErrManifestBlobUnknown},
		{"layer size differs", "t", v1.MediaTypeImageManifest, string(image(t, cfg, []v1.Descriptor{wrongSize}, nil, "")), ErrManifestInvalid},
		{"index of an unknown child", "t", v1.MediaTypeImageIndex, string(index(t, missing)), ErrManifestBlobUnknown},
		{"too large", "t", v1.MediaTypeImageManifest, `{"schemaVersion":2,"x":"` + strings.Repeat("a", MaxManifestSize) + `"}`, ErrManifestInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.PutManifest(ctx, tc.ref, tc.ct, []byte(tc.payload))
			if tc.want != nil {
				wantErr(t, "PutManifest", err, tc.want)
				return
			}
			if err != nil {
				t.Fatalf("PutManifest: %v", err)
			}
			mt, got, dg, err := r.GetManifest(ctx, tc.ref)
			if err != nil || dg != res.Digest || string(got) != tc.payload {
				t.Fatalf("GetManifest(%s) = %s, %v", tc.ref, dg, err)
			}
			if strings.HasPrefix(tc.ref, "sha512:") && (dg.Algorithm() != digest.SHA512 || !strings.Contains(blobDataPath(dg), "/blobs/sha512/")) {
				t.Errorf("sha512 manifest stored as %s", dg)
			}
			if want := baseMediaType(tc.ct); mt != want {
				t.Errorf("media type %q, want %q", mt, want)
			}
		})
	}
	t.Run("schema1 message", func(t *testing.T) {
		_, err := r.PutManifest(ctx, "t", MediaTypeDockerSchema1, []byte(`{}`))
		if err == nil || !strings.Contains(err.Error(), "schema1 is not supported, push with a current client") {
			t.Errorf("error %v", err)
		}
	})
}

func TestTagsDeleteAndReadOnly(t *testing.T) {
	forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "tags/repo")
		_, _, err := r.Tags(ctx, "", 0)
		wantErr(t, "Tags of an unknown repository", err, ErrNameUnknown)
		a, _, _ := pushImage(t, r, "b", "1")
		for _, tag := range []string{"a", "c", "B", "d"} {
			if _, err := r.PutManifest(ctx, tag, "", mustManifest(t, reg, r, a.Digest)); err != nil {
				t.Fatal(err)
			}
		}
		pages := []struct {
			last string
			n    int
			want []string
			more bool
		}{
			{"", 0, []string{"B", "a", "b", "c", "d"}, false},
			{"", 2, []string{"B", "a"}, true},
			{"a", 2, []string{"b", "c"}, true},
			{"c", 2, []string{"d"}, false},
			{"bb", 0, []string{"c", "d"}, false},
			{"d", 5, []string{}, false},
		}
		for _, p := range pages {
			got, more, err := r.Tags(ctx, p.last, p.n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p.want, got); diff != "" || more != p.more {
				t.Errorf("Tags(%q, %d) more=%v (-want +got):\n%s", p.last, p.n, more, diff)
			}
		}
		if err := r.DeleteTag(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "DeleteTag twice", r.DeleteTag(ctx, "c"), ErrManifestUnknown)
		if _, _, _, err := r.GetManifest(ctx, a.Digest.String()); err != nil {
			t.Errorf("manifest gone with its tag: %v", err)
		}
		if err := r.DeleteManifest(ctx, a.Digest); err != nil {
			t.Fatal(err)
		}
		got, _, err := r.Tags(ctx, "", 0)
		if err != nil || len(got) != 0 {
			t.Errorf("tags after deleting their manifest: %v, %v", got, err)
		}
		wantErr(t, "DeleteManifest twice", r.DeleteManifest(ctx, a.Digest), ErrManifestUnknown)

		ro := mustRepo(t, New(reg.Driver(), Options{ReadOnly: true, Delete: true}), "tags/repo")
		_, err = ro.NewUpload(ctx)
		wantErr(t, "NewUpload read-only", err, ErrReadOnly)
		_, err = ro.PutManifest(ctx, "x", "", nil)
		wantErr(t, "PutManifest read-only", err, ErrReadOnly)
		wantErr(t, "DeleteTag read-only", ro.DeleteTag(ctx, "a"), ErrReadOnly)
		nodel := mustRepo(t, New(reg.Driver(), Options{}), "tags/repo")
		wantErr(t, "DeleteManifest without delete", nodel.DeleteManifest(ctx, a.Digest), ErrUnsupported)
		wantErr(t, "DeleteBlob without delete", nodel.DeleteBlob(ctx, a.Digest), ErrUnsupported)
	})
}

func mustManifest(t *testing.T, reg *Registry, r *Repository, dg digest.Digest) []byte {
	t.Helper()
	_, b, _, err := r.GetManifest(context.Background(), dg.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReferrers(t *testing.T) {
	forEachDriver(t, Options{Delete: true}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		r := mustRepo(t, reg, "ref/repo")
		subject, _, _ := pushImage(t, r, "v1", "s")
		got, err := r.Referrers(ctx, subject.Digest, "")
		if err != nil || len(got) != 0 || got == nil {
			t.Fatalf("Referrers with none = %#v, %v; want an empty non-nil list", got, err)
		}
		sig := image(t, v1.Descriptor{}, nil, &subject, "application/vnd.example.sig")
		var sigM v1.Manifest
		if err := json.Unmarshal(sig, &sigM); err != nil {
			t.Fatal(err)
		}
		sigM.Annotations = map[string]string{"org.example": "yes"}
		sig, _ = json.Marshal(sigM)
		res, err := r.PutManifest(ctx, digest.FromBytes(sig).String(), v1.MediaTypeImageManifest, sig)
		if err != nil {
			t.Fatal(err)
		}
		if res.Subject == nil || *res.Subject != subject.Digest {
			t.Errorf("PutResult.Subject = %v, want %s", res.Subject, subject.Digest)
		}
		// A referrer whose subject was never pushed, and an index with a subject.
		orphan := image(t, v1.Descriptor{}, nil, &v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 3}, "application/vnd.example.sbom")
		if _, err := r.PutManifest(ctx, "orphan", v1.MediaTypeImageManifest, orphan); err != nil {
			t.Fatalf("referrer of an absent subject: %v", err)
		}
		var idx v1.Index
		_ = json.Unmarshal(index(t, subject), &idx)
		idx.Subject = &subject
		idx.ArtifactType = "application/vnd.example.bundle"
		idxB, _ := json.Marshal(idx)
		idxRes, err := r.PutManifest(ctx, "bundle", v1.MediaTypeImageIndex, idxB)
		if err != nil {
			t.Fatal(err)
		}
		want := []Descriptor{
			{MediaType: v1.MediaTypeImageManifest, Digest: res.Digest, Size: int64(len(sig)), ArtifactType: "application/vnd.example.sig", Annotations: map[string]string{"org.example": "yes"}},
			{MediaType: v1.MediaTypeImageIndex, Digest: idxRes.Digest, Size: int64(len(idxB)), ArtifactType: "application/vnd.example.bundle"},
		}
		if want[0].Digest > want[1].Digest {
			want[0], want[1] = want[1], want[0]
		}
		got, err = r.Referrers(ctx, subject.Digest, "")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Referrers (-want +got):\n%s", diff)
		}
		got, _ = r.Referrers(ctx, subject.Digest, "application/vnd.example.sig")
		if len(got) != 1 || got[0].Digest != res.Digest {
			t.Errorf("filtered Referrers = %+v", got)
		}
		link, err := reg.Driver().GetContent(ctx, "/docker/registry/v2/repositories/ref/repo/_referrers/sha256/"+subject.Digest.Encoded()+"/sha256/"+res.Digest.Encoded()+"/link")
		if err != nil || string(link) != res.Digest.String() {
			t.Errorf("referrers index link = %q, %v", link, err)
		}
		if err := r.DeleteManifest(ctx, res.Digest); err != nil {
			t.Fatal(err)
		}
		got, _ = r.Referrers(ctx, subject.Digest, "application/vnd.example.sig")
		if len(got) != 0 {
			t.Errorf("Referrers after delete = %+v", got)
		}
		if _, err := reg.Driver().Stat(ctx, referrerLinkDir("ref/repo", subject.Digest, res.Digest)); err == nil {
			t.Error("referrers index entry left after delete")
		}
	})
}

func TestMount(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		src := mustRepo(t, reg, "src")
		dst := mustRepo(t, reg, "dst")
		b := pushBlob(t, src, []byte("mount me"))
		if _, err := dst.StatBlob(ctx, b.Digest); err == nil {
			t.Fatal("blob linked before mount")
		}
		_, err := dst.MountBlob(ctx, mustRepo(t, reg, "elsewhere"), b.Digest)
		wantErr(t, "mount from a repository without it", err, ErrBlobUnknown)
		desc, err := dst.MountBlob(ctx, src, b.Digest)
		if err != nil || desc.Size != b.Size {
			t.Fatalf("MountBlob = %+v, %v", desc, err)
		}
		anon := mustRepo(t, reg, "anon")
		if _, err := anon.MountBlob(ctx, nil, b.Digest); err != nil {
			t.Fatalf("anonymous mount: %v", err)
		}
		_, err = anon.MountBlob(ctx, nil, digest.FromString("nothing"))
		wantErr(t, "anonymous mount of an unknown blob", err, ErrBlobUnknown)
		if _, err := anon.StatBlob(ctx, b.Digest); err != nil {
			t.Errorf("StatBlob after anonymous mount: %v", err)
		}
	})
}

func TestCatalog(t *testing.T) {
	forEachDriver(t, Options{}, func(t *testing.T, reg *Registry) {
		ctx := context.Background()
		got, more, err := reg.Catalog(ctx, "", 0)
		if err != nil || len(got) != 0 || more {
			t.Fatalf("empty Catalog = %v %v %v", got, more, err)
		}
		names := []string{"a-b", "a", "a/b", "z", "a/b/c", "m.x"}
		for _, n := range names {
			pushImage(t, mustRepo(t, reg, n), "t", n)
		}
		pushBlob(t, mustRepo(t, reg, "blobs-only"), []byte("x")) // no manifests: not listed
		all := []string{"a", "a/b", "a/b/c", "a-b", "m.x", "z"}
		got, more, err = reg.Catalog(ctx, "", 0)
		if diff := cmp.Diff(all, got); diff != "" || more || err != nil {
			t.Errorf("Catalog (-want +got), more=%v err=%v:\n%s", more, err, diff)
		}
		got, more, _ = reg.Catalog(ctx, "a/b", 2)
		if diff := cmp.Diff([]string{"a/b/c", "a-b"}, got); diff != "" || !more {
			t.Errorf("Catalog page (-want +got) more=%v:\n%s", more, diff)
		}
		got, more, _ = reg.Catalog(ctx, "m.x", 1)
		if diff := cmp.Diff([]string{"z"}, got); diff != "" || more {
			t.Errorf("last page (-want +got) more=%v:\n%s", more, diff)
		}
		// Every last, listed or not, gives exactly the names after it
		// (the walk skips the directories before it).
		for _, last := range append(slices.Clone(all), "0", "a/a", "a/b/b", "a/c", "a-a", "b", "m", "zz") {
			var want []string
			for _, n := range all {
				if comparePaths(n, last) > 0 {
					want = append(want, n)
				}
			}
			got, more, err := reg.Catalog(ctx, last, 0)
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" || more || err != nil {
				t.Errorf("Catalog after %q (-want +got), more=%v err=%v:\n%s", last, more, err, diff)
			}
		}
	})
}

func TestRepositoryNames(t *testing.T) {
	reg := New(drivers(t)["inmemory"](t), Options{})
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"library/alpine", true}, {"a.b_c__d---e/f", true}, {"a0/b1/c2", true},
		{strings.Repeat("a", 255), true}, {strings.Repeat("a", 256), false},
		{"", false}, {"A", false}, {"a/", false}, {"/a", false}, {"a//b", false}, {"a/../b", false},
		{"a_", false}, {"-a", false}, {"a___b", false}, {"a/_layers", false}, {"a b", false}, {"a:b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reg.Repository(tc.name)
			if tc.ok != (err == nil) {
				t.Errorf("Repository(%q) error %v, want ok=%v", tc.name, err, tc.ok)
			}
			if err != nil {
				wantErr(t, "Repository", err, ErrNameInvalid)
			}
		})
	}
}
