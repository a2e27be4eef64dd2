// Package notify sends webhook notifications of registry events (push,
// pull, delete, mount) in distribution's envelope, so receivers written for
// registry:2 work unchanged. Unlike registry:2, whose queue is in memory,
// every event is written to a queue on disk before Emit returns and stays
// there until its endpoint accepts it: events survive restarts and crashes
// and are delivered at least once.
package notify

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"
)

// MediaType is the Content-Type of an envelope.
const MediaType = "application/vnd.docker.distribution.events.v1+json"

// BlobMediaType is the media type events give blobs, as distribution does.
const BlobMediaType = "application/octet-stream"

// The actions an event can carry.
const (
	ActionPush   = "push"
	ActionPull   = "pull"
	ActionDelete = "delete"
	ActionMount  = "mount"
)

// Event is what the API reports when a push, pull, delete or mount
// completes. The notifier adds the id, the time and the source.
type Event struct {
	Action         string
	Repository     string
	FromRepository string // mount only
	Tag            string
	MediaType      string
	Digest         string
	Size           int64
	URL            string
	// Manifest is the manifest's payload (manifest events only); its
	// references are sent when notifications.events.includereferences is
	// on.
	Manifest []byte
	Request  Request
	Actor    string // the authenticated user, if any
}

// Request describes the HTTP request that caused an event.
type Request struct {
	ID        string
	Addr      string
	Host      string
	Method    string
	UserAgent string
}

// Source names this registry instance in events.
type Source struct {
	Addr       string
	InstanceID string
}

// The wire form, field for field distribution's JSON.
type wireEvent struct {
	ID        string      `json:"id"`
	Timestamp time.Time   `json:"timestamp"`
	Action    string      `json:"action"`
	Target    wireTarget  `json:"target"`
	Request   wireRequest `json:"request"`
	Actor     wireActor   `json:"actor"`
	Source    wireSource  `json:"source"`
}

type wireTarget struct {
	MediaType      string           `json:"mediaType,omitempty"`
	Digest         string           `json:"digest,omitempty"`
	Size           int64            `json:"size,omitempty"`
	Length         int64            `json:"length,omitempty"`
	Repository     string           `json:"repository,omitempty"`
	FromRepository string           `json:"fromRepository,omitempty"`
	URL            string           `json:"url,omitempty"`
	Tag            string           `json:"tag,omitempty"`
	References     []wireDescriptor `json:"references,omitempty"`
}

type wireDescriptor struct {
	MediaType    string `json:"mediaType,omitempty"`
	Digest       string `json:"digest,omitempty"`
	Size         int64  `json:"size,omitempty"`
	ArtifactType string `json:"artifactType,omitempty"`
}

type wireRequest struct {
	ID        string `json:"id"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method"`
	UserAgent string `json:"useragent"`
}

type wireActor struct {
	Name string `json:"name,omitempty"`
}

type wireSource struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

// encode builds the wire form of e.
func encode(e Event, src Source, now time.Time, refs bool) ([]byte, error) {
	w := wireEvent{
		ID:        NewID(),
		Timestamp: now,
		Action:    e.Action,
		Target: wireTarget{
			MediaType: e.MediaType, Digest: e.Digest, Size: e.Size, Length: e.Size,
			Repository: e.Repository, FromRepository: e.FromRepository, URL: e.URL, Tag: e.Tag,
		},
		Request: wireRequest{ID: e.Request.ID, Addr: e.Request.Addr, Host: e.Request.Host, Method: e.Request.Method, UserAgent: e.Request.UserAgent},
		Actor:   wireActor{Name: e.Actor},
		Source:  wireSource(src),
	}
	if refs && len(e.Manifest) > 0 {
		w.Target.References = references(e.Manifest)
	}
	return json.Marshal(w)
}

// references lists what a manifest points to: an image manifest's config
// and layers, an index's manifests. A payload that does not parse has none
// (the registry validated it before storing it).
func references(payload []byte) []wireDescriptor {
	var m struct {
		Config    *wireDescriptor  `json:"config"`
		Layers    []wireDescriptor `json:"layers"`
		Manifests []wireDescriptor `json:"manifests"`
	}
	if json.Unmarshal(payload, &m) != nil {
		return nil
	}
	var out []wireDescriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	return append(out, m.Manifests...)
}

// NewID returns a random UUID (version 4), the form distribution uses for
// event and instance ids.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
