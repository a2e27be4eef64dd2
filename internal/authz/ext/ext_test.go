package ext

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
	"github.com/gatehouse-registry/gatehouse/internal/extprog"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "authz.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthorize(t *testing.T) {
	// Grants when the request JSON names the account alice, denies bob,
	// fails otherwise.
	a, err := New(Config{Command: script(t, `in=$(cat)
case "$in" in
*'"Account":"alice"'*) exit 0 ;;
*'"Account":"bob"'*) exit 1 ;;
*) echo "unexpected" >&2; exit 3 ;;
esac`)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		account string
		actions []string
		want    []string
		msg     string
	}{
		{"grant all requested", "alice", []string{"push", "pull", "pull"}, []string{"pull", "push"}, ""},
		{"grant star only when asked", "alice", []string{"*"}, []string{"*"}, ""},
		{"deny", "bob", []string{"pull"}, []string{}, ""},
		{"error", "carol", []string{"pull"}, nil, "status 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := a.Authorize(context.Background(), &authz.Request{Account: c.account, Type: "repository", Name: "x", Actions: c.actions})
			if c.msg != "" {
				if err == nil || !strings.Contains(err.Error(), c.msg) || errors.Is(err, authz.ErrNoMatch) {
					t.Fatalf("got %v, want an error containing %q", err, c.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("granted (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "stdin")
	a, err := New(Config{Command: script(t, `cat > "$1"`), Args: []string{out}})
	if err != nil {
		t.Fatal(err)
	}
	req := &authz.Request{
		Account: "alice", Type: "repository", Name: "team/app", Service: "registry.example",
		IP: net.ParseIP("10.1.2.3"), Actions: []string{"pull", "push"}, Labels: authn.Labels{"groups": {"devops"}},
	}
	if _, err := a.Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("stdin %q is not JSON: %v", b, err)
	}
	want := map[string]any{
		"Account": "alice", "Type": "repository", "Name": "team/app", "Service": "registry.example",
		"IP": "10.1.2.3", "Actions": []any{"pull", "push"}, "Labels": map[string]any{"groups": []any{"devops"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request JSON (-want +got):\n%s", diff)
	}
}

func TestTimeout(t *testing.T) {
	a, err := New(Config{Command: script(t, "sleep 30"), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authorize(context.Background(), &authz.Request{Actions: []string{"pull"}})
	if !errors.Is(err, extprog.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
}
