//go:build integration

package authserver_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// The issued-token cache of a running auth server with its defaults: an
// identical request gets the same token with what is left of its
// lifetime; a wrong password, another scope, and a changed password
// (through `gatehouse users passwd` and the reload it causes) never get
// it.
func TestTokenCacheEndToEnd(t *testing.T) {
	e := setup(t)
	const pull = "service=registry.test&scope=repository:alice/app:pull"
	tokenFor := func(query, user, pass string) tokenResp {
		t.Helper()
		resp, body := e.get(t, query, user, pass)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %q: status %d: %s", user, query, resp.StatusCode, body)
		}
		_, tr := e.verify(t, body)
		return tr
	}

	first := tokenFor(pull, "alice", "alice-pw")
	time.Sleep(1100 * time.Millisecond)
	again := tokenFor(pull, "alice", "alice-pw")
	if again.Token != first.Token || again.IssuedAt != first.IssuedAt {
		t.Fatalf("identical request: same token %v, issued_at %q then %q", again.Token == first.Token, first.IssuedAt, again.IssuedAt)
	}
	if first.ExpiresIn != 900 || again.ExpiresIn >= 900 || again.ExpiresIn < 890 {
		t.Errorf("expires_in %d then %d, want 900 then what is left", first.ExpiresIn, again.ExpiresIn)
	}

	for _, pw := range []string{"wrong", "alice-pw "} {
		resp, body := e.get(t, pull, "alice", pw)
		if resp.StatusCode != 401 || strings.Contains(string(body), first.Token) {
			t.Errorf("password %q: status %d, cached token in the body %v", pw, resp.StatusCode, strings.Contains(string(body), first.Token))
		}
	}
	if other := tokenFor("service=registry.test&scope=repository:alice/app:pull,push", "alice", "alice-pw"); other.Token == first.Token {
		t.Error("another scope set got the cached token")
	}

	cmd := exec.Command(testenv.Gatehouse(t), "users", "passwd", "--config", e.config, "alice")
	cmd.Stdin = strings.NewReader("new-pw\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gatehouse users passwd: %v\n%s", err, out)
	}
	waitStatus(t, e, "alice", "new-pw", 200)
	if resp, body := e.get(t, pull, "alice", "alice-pw"); resp.StatusCode != 401 || strings.Contains(string(body), first.Token) {
		t.Errorf("old password after the change: status %d", resp.StatusCode)
	}
	if changed := tokenFor(pull, "alice", "new-pw"); changed.Token == first.Token || changed.ExpiresIn != 900 {
		t.Errorf("after the password change: same token %v, expires_in %d", changed.Token == first.Token, changed.ExpiresIn)
	}
}
