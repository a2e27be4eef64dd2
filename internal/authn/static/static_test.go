package static

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

func hash(t *testing.T, pw string) secret.Secret {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return secret.Secret(h)
}

// withPrefix rewrites the version prefix of a bcrypt hash.
func withPrefix(h secret.Secret, prefix string) secret.Secret {
	return secret.Secret(prefix + h.Reveal()[4:])
}

func TestAuthenticate(t *testing.T) {
	alice := hash(t, "wonderland")
	a, err := New(map[string]User{
		"":      {Labels: authn.Labels{"kind": {"anonymous"}}},
		"alice": {Password: alice, Labels: authn.Labels{"groups": {"devops", "6000"}}},
		"bob":   {Password: withPrefix(hash(t, "builder"), "$2y$")},
		"carol": {Password: withPrefix(hash(t, "singer"), "$2a$")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		account  string
		password string
		labels   authn.Labels
		err      error
	}{
		{"right password", "alice", "wonderland", authn.Labels{"groups": {"devops", "6000"}}, nil},
		{"wrong password", "alice", "wonderlan", nil, authn.ErrWrongPass},
		{"empty password", "alice", "", nil, authn.ErrWrongPass},
		{"$2y$ hash", "bob", "builder", nil, nil},
		{"$2a$ hash", "carol", "singer", nil, nil},
		{"unknown user", "mallory", "wonderland", nil, authn.ErrNoMatch},
		{"unknown user empty password", "mallory", "", nil, authn.ErrNoMatch},
		{"case matters", "Alice", "wonderland", nil, authn.ErrNoMatch},
		{"anonymous", "", "", authn.Labels{"kind": {"anonymous"}}, nil},
		{"anonymous with a password", "", "x", nil, authn.ErrWrongPass},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			labels, err := a.Authenticate(context.Background(), c.account, secret.Secret(c.password))
			if !errors.Is(err, c.err) {
				t.Fatalf("error = %v, want %v", err, c.err)
			}
			if diff := cmp.Diff(c.labels, labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnonymousNotConfigured(t *testing.T) {
	a, err := New(map[string]User{"alice": {Password: hash(t, "pw")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), "", ""); !errors.Is(err, authn.ErrNoMatch) {
		t.Fatalf("anonymous: got %v, want ErrNoMatch", err)
	}
}

func TestLabelsAreCopies(t *testing.T) {
	a, err := New(map[string]User{"alice": {Password: hash(t, "pw"), Labels: authn.Labels{"groups": {"a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Authenticate(context.Background(), "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	l["groups"][0] = "admins"
	l["extra"] = []string{"x"}
	l2, err := a.Authenticate(context.Background(), "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(authn.Labels{"groups": {"a"}}, l2); diff != "" {
		t.Errorf("labels changed by a caller (-want +got):\n%s", diff)
	}
}

// TestEveryPathRunsBcrypt checks that unknown accounts and empty passwords
// cost one hash comparison, like a wrong password, so the time taken does
// not tell which accounts exist.
func TestEveryPathRunsBcrypt(t *testing.T) {
	a, err := New(map[string]User{"alice": {Password: hash(t, "pw")}, "": {}})
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	var hashes [][]byte
	orig := a.compare
	a.compare = func(h, pw []byte) error {
		calls++
		hashes = append(hashes, h)
		return orig(h, pw)
	}
	cases := []struct {
		account, password string
		calls             int
	}{
		{"alice", "pw", 1},
		{"alice", "wrong", 1},
		{"alice", "", 1},
		{"nobody", "pw", 1},
		{"nobody", "", 1},
		{"", "", 0},
	}
	for _, c := range cases {
		calls, hashes = 0, nil
		_, _ = a.Authenticate(context.Background(), c.account, secret.Secret(c.password))
		if calls != c.calls {
			t.Errorf("%q/%q: %d comparisons, want %d", c.account, c.password, calls, c.calls)
		}
		if c.account == "nobody" && len(hashes) == 1 {
			cost, err := bcrypt.Cost(hashes[0])
			if err != nil || cost != bcrypt.MinCost {
				t.Errorf("dummy hash cost = %d, %v; want %d (the users' cost)", cost, err, bcrypt.MinCost)
			}
		}
	}
}

func TestNewRefuses(t *testing.T) {
	good := hash(t, "pw")
	cases := []struct {
		name  string
		users map[string]User
		msg   string
	}{
		{"no password", map[string]User{"alice": {}}, `"alice" has no password`},
		{"plain text password", map[string]User{"alice": {Password: "hunter2hunter2"}}, "not a bcrypt hash"},
		{"$2x$ prefix", map[string]User{"alice": {Password: withPrefix(good, "$2x$")}}, "not a bcrypt hash"},
		{"truncated hash", map[string]User{"alice": {Password: good[:10]}}, "malformed"},
		{"anonymous with password", map[string]User{"": {Password: good}}, "anonymous"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.users)
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("New: got %v, want an error containing %q", err, c.msg)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), good.Reveal()[7:]) {
				t.Errorf("error leaks the password or hash: %v", err)
			}
		})
	}
}

func TestNewReportsAllUsers(t *testing.T) {
	_, err := New(map[string]User{"a": {}, "b": {Password: "x"}})
	if err == nil || !strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("New: got %v, want errors for a and b", err)
	}
}

func TestCancelledContext(t *testing.T) {
	a, err := New(map[string]User{"alice": {Password: hash(t, "pw")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Authenticate(ctx, "alice", "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestCheckHash(t *testing.T) {
	h := func(cost int) secret.Secret {
		b, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		if err != nil {
			t.Fatal(err)
		}
		return secret.Secret(b)
	}
	min5 := h(bcrypt.MinCost + 1)
	cases := []struct {
		name     string
		hash     string
		wantCost int
		wantErr  string
	}{
		{"$2a$", withPrefix(min5, "$2a$").Reveal(), bcrypt.MinCost + 1, ""},
		{"$2b$", withPrefix(min5, "$2b$").Reveal(), bcrypt.MinCost + 1, ""},
		{"$2y$", withPrefix(min5, "$2y$").Reveal(), bcrypt.MinCost + 1, ""},
		{"$2x$", withPrefix(min5, "$2x$").Reveal(), 0, "not a bcrypt hash"},
		{"md5", "$apr1$abc$defghijklmnopqrstuv", 0, "not a bcrypt hash"},
		{"truncated", min5.Reveal()[:20], 0, "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cost, err := CheckHash(c.hash)
			if c.wantErr == "" {
				if err != nil || cost != c.wantCost {
					t.Fatalf("CheckHash = %d, %v; want %d, nil", cost, err, c.wantCost)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("CheckHash error = %v, want %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), c.hash) {
				t.Errorf("error shows the hash: %v", err)
			}
		})
	}
}
