package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gatehouse-registry/gatehouse/internal/registry/auth"
	"github.com/gatehouse-registry/gatehouse/internal/registry/notify"
)

// recorder keeps the events the handler emits.
type recorder struct {
	mu     sync.Mutex
	events []notify.Event
}

func (r *recorder) Emit(_ context.Context, e notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events so far and forgets them.
func (r *recorder) take() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// allowAll lets every request through as user "alice".
type allowAll struct{}

func (allowAll) CheckAccess(context.Context, *http.Request, []auth.Access) (auth.User, error) {
	return auth.User{Name: "alice"}, nil
}

// TestEvents: each completed push, pull, delete and mount yields exactly
// its event, with distribution's target fields; failed and HEAD requests
// yield none.
func TestEvents(t *testing.T) {
	rec := &recorder{}
	h := newTestHandler(t, func(o *Options) { o.Events = rec; o.Auth = allowAll{}; o.AnonymousMount = true })
	const base = "http://example.com/v2/"
	blob := func(action, repo string, d digest.Digest, size int64) notify.Event {
		return notify.Event{Action: action, Repository: repo, MediaType: notify.BlobMediaType, Digest: d.String(), Size: size,
			URL: base + repo + "/blobs/" + d.String(), Actor: "alice"}
	}
	ignoreRequest := cmpopts.IgnoreFields(notify.Event{}, "Request", "Manifest")

	// Push: two blobs (monolithic), then the manifest by tag.
	md, payload := pushImage(t, h, "team/app", "v1", nil)
	cfgBlob, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("layer-v1")
	want := []notify.Event{
		blob("push", "team/app", digest.FromBytes(cfgBlob), int64(len(cfgBlob))),
		blob("push", "team/app", digest.FromBytes(layer), int64(len(layer))),
		{Action: "push", Repository: "team/app", Tag: "v1", MediaType: ocispec.MediaTypeImageManifest, Digest: md.String(),
			Size: int64(len(payload)), URL: base + "team/app/manifests/" + md.String(), Actor: "alice"},
	}
	got := rec.take()
	if diff := cmp.Diff(want, got, ignoreRequest); diff != "" {
		t.Fatalf("push events (-want +got):\n%s", diff)
	}
	if m := got[2]; string(m.Manifest) != string(payload) || m.Request.Method != "PUT" || m.Request.ID == "" || m.Request.Host != "example.com" || m.Request.Addr == "" {
		t.Errorf("manifest push event: payload %d bytes, request %+v", len(m.Manifest), m.Request)
	}

	// A chunked upload is one push, at the final PUT.
	r := do(t, h, "POST", "/v2/team/app/blobs/uploads/", nil)
	path := strings.TrimPrefix(r.Header.Get("Location"), "http://example.com")
	chunked := []byte("chunked content")
	do(t, h, "PATCH", path, chunked[:5], "Content-Range", "0-4")
	cd := digest.FromBytes(chunked)
	if r = do(t, h, "PUT", path+"?digest="+cd.String(), chunked[5:], "Content-Range", "5-14"); r.Status != 201 {
		t.Fatalf("chunked put: %d %s", r.Status, r.Body)
	}
	if diff := cmp.Diff([]notify.Event{blob("push", "team/app", cd, int64(len(chunked)))}, rec.take(), ignoreRequest); diff != "" {
		t.Errorf("chunked push (-want +got):\n%s", diff)
	}

	// Pulls: the manifest by tag and by digest, a blob; HEADs are not pulls.
	do(t, h, "HEAD", "/v2/team/app/manifests/v1", nil)
	do(t, h, "HEAD", "/v2/team/app/blobs/"+cd.String(), nil)
	do(t, h, "GET", "/v2/team/app/manifests/v1", nil, "User-Agent", "puller/1.0")
	do(t, h, "GET", "/v2/team/app/manifests/"+md.String(), nil)
	do(t, h, "GET", "/v2/team/app/blobs/"+cd.String(), nil)
	do(t, h, "GET", "/v2/team/app/blobs/"+cd.String(), nil, "Range", "bytes=50-60") // 416: nothing pulled
	do(t, h, "GET", "/v2/team/app/manifests/nope", nil)                             // 404
	mpull := func(tag string) notify.Event {
		return notify.Event{Action: "pull", Repository: "team/app", Tag: tag, MediaType: ocispec.MediaTypeImageManifest, Digest: md.String(),
			Size: int64(len(payload)), URL: base + "team/app/manifests/" + md.String(), Actor: "alice"}
	}
	want = []notify.Event{mpull("v1"), mpull(""), blob("pull", "team/app", cd, int64(len(chunked)))}
	got = rec.take()
	if diff := cmp.Diff(want, got, ignoreRequest); diff != "" {
		t.Errorf("pull events (-want +got):\n%s", diff)
	}
	if len(got) > 0 && (got[0].Request.UserAgent != "puller/1.0" || got[0].Request.Method != "GET") {
		t.Errorf("pull request = %+v", got[0].Request)
	}

	// Mount from another repository, then an anonymous one.
	if r = do(t, h, "POST", "/v2/other/blobs/uploads/?mount="+cd.String()+"&from=team/app", nil); r.Status != 201 {
		t.Fatalf("mount: %d", r.Status)
	}
	do(t, h, "POST", "/v2/third/blobs/uploads/?mount="+cd.String(), nil)
	m1 := blob("mount", "other", cd, int64(len(chunked)))
	m1.FromRepository = "team/app"
	want = []notify.Event{m1, blob("mount", "third", cd, int64(len(chunked)))}
	if diff := cmp.Diff(want, rec.take(), ignoreRequest); diff != "" {
		t.Errorf("mount events (-want +got):\n%s", diff)
	}

	// Deletes: a tag, a manifest by digest, a blob; a failed delete is none.
	do(t, h, "DELETE", "/v2/team/app/manifests/v1", nil)
	do(t, h, "DELETE", "/v2/team/app/manifests/"+md.String(), nil)
	do(t, h, "DELETE", "/v2/other/blobs/"+cd.String(), nil)
	do(t, h, "DELETE", "/v2/other/blobs/"+cd.String(), nil) // already gone: 404
	want = []notify.Event{
		{Action: "delete", Repository: "team/app", Tag: "v1", Actor: "alice"},
		{Action: "delete", Repository: "team/app", Digest: md.String(), Actor: "alice"},
		{Action: "delete", Repository: "other", Digest: cd.String(), Actor: "alice"},
	}
	if diff := cmp.Diff(want, rec.take(), ignoreRequest); diff != "" {
		t.Errorf("delete events (-want +got):\n%s", diff)
	}
}

// TestEventsPushByDigestWithTags: a push by digest with ?tag= is one event
// per tag.
func TestEventsPushByDigestWithTags(t *testing.T) {
	rec := &recorder{}
	h := newTestHandler(t, func(o *Options) { o.Events = rec })
	md, payload := pushImage(t, h, "a", "first", nil)
	rec.take()
	if r := do(t, h, "PUT", "/v2/a/manifests/"+md.String()+"?tag=x&tag=y", payload, "Content-Type", ocispec.MediaTypeImageManifest); r.Status != 201 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	var tags []string
	for _, e := range rec.take() {
		tags = append(tags, e.Action+":"+e.Tag)
	}
	if diff := cmp.Diff([]string{"push:x", "push:y"}, tags); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if r := do(t, h, "PUT", "/v2/a/manifests/"+md.String(), payload, "Content-Type", ocispec.MediaTypeImageManifest); r.Status != 201 {
		t.Fatalf("put: %d", r.Status)
	}
	if got := rec.take(); len(got) != 1 || got[0].Tag != "" || got[0].Digest != md.String() {
		t.Errorf("push by digest: %+v", got)
	}
}
