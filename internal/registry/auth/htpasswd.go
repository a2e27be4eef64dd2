package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Htpasswd checks HTTP Basic credentials against an htpasswd file whose
// hashes are all bcrypt. A successful check is remembered for a short while
// (as an HMAC of the credentials under a key made at start, never the
// password) so that a client pushing many layers does not pay for a bcrypt
// comparison on every request.
type Htpasswd struct {
	realm string
	users map[string][]byte // user -> bcrypt hash
	dummy []byte            // compared against for unknown users, at the file's highest cost

	cacheKey [32]byte
	mu       sync.Mutex
	cache    map[string]cacheEntry // user -> credential MAC
	ttl      time.Duration
	now      func() time.Time
}

type cacheEntry struct {
	mac     [32]byte
	expires time.Time
}

// credentialCacheTTL is how long a verified Basic credential is trusted
// without a new bcrypt comparison.
const credentialCacheTTL = 5 * time.Minute

// maxCachedUsers bounds the credential cache.
const maxCachedUsers = 10000

// LoadHtpasswd reads an htpasswd file. Lines are "user:hash"; blank lines
// and lines starting with # are skipped. A hash that is not bcrypt (MD5
// "$apr1$", SHA1 "{SHA}", crypt, plain) is refused with the line number.
func LoadHtpasswd(realm, path string) (*Htpasswd, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	h, err := ParseHtpasswd(realm, data)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	return h, nil
}

// ParseHtpasswd parses htpasswd content (see LoadHtpasswd).
func ParseHtpasswd(realm string, data []byte) (*Htpasswd, error) {
	h := &Htpasswd{realm: realm, users: map[string][]byte{}, cache: map[string]cacheEntry{}, ttl: credentialCacheTTL, now: time.Now}
	if _, err := rand.Read(h.cacheKey[:]); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line, maxCost := 0, bcrypt.MinCost
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want user:bcrypt-hash", line)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("line %d: the hash for user %q is not bcrypt; only bcrypt hashes are accepted (htpasswd -B, or gatehouse hash-password)", line, user)
		}
		if _, dup := h.users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q appears twice", line, user)
		}
		h.users[user] = []byte(hash)
		maxCost = max(maxCost, cost)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// An unknown user must cost as much as a wrong password, so that
	// timing does not tell which users exist.
	dummy, err := bcrypt.GenerateFromPassword([]byte("gatehouse-no-such-user"), maxCost)
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Authorize checks the request's Basic credentials. Any valid user may do
// anything: htpasswd has no per-repository rules (as in distribution).
func (h *Htpasswd) Authorize(_ context.Context, r *http.Request, _ []Access) (User, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return User{}, &Challenge{Header: BasicChallenge(h.realm), Message: "authentication required"}
	}
	if !h.check(user, pass) {
		return User{}, &Challenge{Header: BasicChallenge(h.realm), Reason: "invalid_credentials", Message: "invalid username or password"}
	}
	return User{Name: user}, nil
}

func (h *Htpasswd) check(user, pass string) bool {
	mac := hmac.New(sha256.New, h.cacheKey[:])
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(pass))
	var sum [32]byte
	copy(sum[:], mac.Sum(nil))

	now := h.now()
	h.mu.Lock()
	e, hit := h.cache[user]
	h.mu.Unlock()
	if hit && now.Before(e.expires) && subtle.ConstantTimeCompare(e.mac[:], sum[:]) == 1 {
		return true
	}

	hash, known := h.users[user]
	if !known {
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(pass))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	h.mu.Lock()
	if len(h.cache) >= maxCachedUsers {
		for k, v := range h.cache {
			if !now.Before(v.expires) || len(h.cache) >= maxCachedUsers {
				delete(h.cache, k)
			}
		}
	}
	h.cache[user] = cacheEntry{mac: sum, expires: now.Add(h.ttl)}
	h.mu.Unlock()
	return true
}

var _ Controller = (*Htpasswd)(nil)
