package redis

import (
	"context"
	"crypto/rand"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gatehouse-registry/gatehouse/internal/cache"
	"github.com/opencontainers/go-digest"
)

// Manifest links (cache.LinkCache) are kept in hashes of their own:
//
//	gatehouse::v1::repository::<name>::revisions::<digest>  hash: claim, target
//	gatehouse::v1::repository::<name>::tags::<tag>          hash: claim, target
//
// Repository names, tags and digests hold no ':', so these keys never
// meet the blob keys or each other.
//
// Why a reader can never leave an entry older than storage: a lookup that
// misses creates the key's claim (a random token) if it has none and
// returns it, before the reader reads storage. A fill writes the target
// only while the key still holds that claim. A writer changes storage
// first and deletes the key after, which voids the claim. So a fill that
// succeeds ran before the delete of any write that followed its claim: if
// the reader read storage before such a write, the writer's delete comes
// after the fill and removes it; if after, what it read is the new value.
// A flush or restart of Redis deletes claims too, and a fill against a
// missing claim is refused. A delete that cannot reach Redis is kept as a
// pending invalidation, as for blobs (the writing replica stops reading
// Redis until it is applied). Every entry lives at most Options.LinkTTL
// after its fill, which bounds what nothing invalidates: a replica that
// never reaches Redis again after a delete, or links changed behind the
// registry's back.

// DefaultLinkTTL is how long a manifest link entry lives in Redis.
const DefaultLinkTTL = time.Minute

// claimTTL is how long a key holding only a claim lives: a reader has
// that long to read storage and fill, or its fill is refused. Lookups of
// links that do not exist (a 404) leave such keys; they go quickly.
const claimTTL = 10 * time.Second

func linkKey(l cache.Link) string {
	return KeyPrefix + "repository::" + l.Repo + "::" + string(l.Kind) + "::" + l.Name
}

// lookupScript returns {claim, target}: the key's claim, created (living
// claimTTL) if the key had none, and its target or nil.
var lookupScript = goredis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'claim', 'target')
if v[1] then return v end
redis.call('HSET', KEYS[1], 'claim', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {ARGV[1], false}
`)

// fillScript sets the target if the key still holds the claim ARGV[1].
var fillScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'target', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

func validLink(l cache.Link) bool {
	return l.Repo != "" && l.Name != "" && (l.Kind == cache.RevisionLink || l.Kind == cache.TagLink)
}

// LookupLink implements cache.LinkCache. Any failure is a miss without a
// claim.
func (c *Cache) LookupLink(ctx context.Context, l cache.Link) (digest.Digest, string, bool) {
	if !c.up.Load() || !validLink(l) {
		c.m.miss()
		return "", "", false
	}
	octx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	v, err := lookupScript.Run(octx, c.client, []string{linkKey(l)}, rand.Text(), min(claimTTL, c.linkTTL).Milliseconds()).Slice()
	if err != nil {
		if ctx.Err() == nil {
			c.failed("stat", err)
		}
		c.m.miss()
		return "", "", false
	}
	if len(v) != 2 {
		c.m.miss()
		return "", "", false
	}
	claim, _ := v[0].(string)
	target, _ := v[1].(string)
	if d, err := digest.Parse(target); err == nil && (l.Kind != cache.RevisionLink || d.String() == l.Name) {
		c.m.hit()
		return d, "", true
	}
	c.m.miss()
	return "", claim, false
}

// FillLink implements cache.LinkCache.
func (c *Cache) FillLink(ctx context.Context, l cache.Link, claim string, target digest.Digest) {
	if claim == "" || !c.up.Load() || !validLink(l) || target.Validate() != nil {
		return
	}
	octx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	err := fillScript.Run(octx, c.client, []string{linkKey(l)}, claim, target.String(), c.linkTTL.Milliseconds()).Err()
	if err != nil && ctx.Err() == nil {
		c.failed("set", err)
	}
}

// ClearLink implements cache.LinkCache: it deletes the key, or remembers
// to delete it before Redis is used again.
func (c *Cache) ClearLink(ctx context.Context, l cache.Link) {
	if !validLink(l) {
		return
	}
	c.clearKey(ctx, linkKey(l))
}

var _ cache.LinkCache = (*Cache)(nil)
