package ext

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// A small user database in the shape docker_auth's ext_auth example uses.
const userDB = `read -r user pass
case "$user" in
alice) [ "$pass" = "wonder land" ] || exit 1
       echo '{"labels": {"groups": ["devops", "6000"]}}' ;;
bob)   [ "$pass" = "builder" ] || exit 1 ;;
anon)  exit 2 ;;
crash) echo "backend down, input was: $user $pass" >&2; exit 7 ;;
junk)  echo 'not json' ;;
*)     exit 2 ;;
esac`

func TestAuthenticate(t *testing.T) {
	a, err := New(Config{Command: script(t, userDB)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		account  string
		password string
		labels   authn.Labels
		err      error
		msg      string
	}{
		{"accept with labels", "alice", "wonder land", authn.Labels{"groups": {"devops", "6000"}}, nil, ""},
		{"accept without labels", "bob", "builder", nil, nil, ""},
		{"wrong password", "alice", "wonder", nil, authn.ErrWrongPass, ""},
		{"no match", "zed", "x", nil, authn.ErrNoMatch, ""},
		{"space in account never reaches the program", "alice wonder", "land", nil, authn.ErrNoMatch, ""},
		{"newline in account", "alice\nbob", "builder", nil, authn.ErrNoMatch, ""},
		{"other status is an error", "crash", "s3cr3t-pw", nil, nil, "status 7"},
		{"bad stdout", "junk", "pw-junk-9", nil, nil, "not {"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			labels, err := a.Authenticate(context.Background(), c.account, secret.Secret(c.password))
			if c.msg != "" {
				if err == nil || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("got %v, want an error containing %q", err, c.msg)
				}
				if strings.Contains(err.Error(), c.password) {
					t.Errorf("the error shows the password: %v", err)
				}
				if errors.Is(err, authn.ErrNoMatch) || errors.Is(err, authn.ErrWrongPass) {
					t.Errorf("a program failure reads as an answer: %v", err)
				}
				return
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("error = %v, want %v", err, c.err)
			}
			if diff := cmp.Diff(c.labels, labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStdinIsUserSpacePassword(t *testing.T) {
	out := filepath.Join(t.TempDir(), "stdin")
	a, err := New(Config{Command: script(t, `cat > "$1"`), Args: []string{out}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), "alice", "p w"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "alice p w" {
		t.Errorf("stdin = %q, want %q", b, "alice p w")
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	a, err := New(Config{Command: script(t, "sleep 30"), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), "alice", "pw")
	if !errors.Is(err, authn.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestNewMissingCommand(t *testing.T) {
	if _, err := New(Config{Command: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Fatal("New accepted a command that does not exist")
	}
}
