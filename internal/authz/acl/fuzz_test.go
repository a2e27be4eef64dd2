package acl

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
)

// checkSubset fails unless granted is a sorted set drawn from requested.
func checkSubset(t *testing.T, requested, granted []string) {
	t.Helper()
	for i, g := range granted {
		if !contains(requested, g) {
			t.Fatalf("granted %q, which was not requested (requested %q, granted %q)", g, requested, granted)
		}
		if i > 0 && granted[i-1] >= g {
			t.Fatalf("granted %q is not a sorted set", granted)
		}
	}
}

// FuzzACL compiles an entry from fuzzed patterns and answers a fuzzed
// request with it. Compile must not panic, and what is granted must always
// be a subset of what was asked.
func FuzzACL(f *testing.F) {
	f.Add("alice", "${account}/*", "/^(.+)$/", "dev*", "10.0.0.0/8", "pull,push", "alice", "alice/app", "devops", "10.1.1.1", "pull,*")
	f.Add("/^(.+)@x$/", "${account:1}/*", "", "${account}", "::1", "*", "a@x", "a/b", "a@x", "::1", "push")
	f.Add("", "${labels:team}/${labels:env}", "${service}", "/(a|b)/", "", "", "", "web/prod", "b", "", "pull")
	f.Add("${", "[", "/(/", "\\", "x", "pull", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, account, name, service, label, ip, actions, reqAccount, reqName, reqLabel, reqIP, reqActions string) {
		m := &Match{Name: &name, Labels: map[string]string{"team": label}}
		if account != "" {
			m.Account = &account
		}
		if service != "" {
			m.Service = &service
		}
		if ip != "" {
			m.IP = &ip
		}
		var acts []string
		if actions != "" {
			acts = strings.Split(actions, ",")
		}
		a, err := Compile([]Entry{{Match: m, Actions: &acts}})
		if err != nil {
			var ces CompileErrors
			if !errors.As(err, &ces) || len(ces) == 0 {
				t.Fatalf("Compile error is not a non-empty CompileErrors: %v", err)
			}
			return
		}
		req := &authz.Request{
			Account: reqAccount, Type: "repository", Name: reqName, Service: "svc",
			IP:      net.ParseIP(reqIP),
			Labels:  authn.Labels{"team": {reqLabel, reqName}, "env": {reqLabel}},
			Actions: strings.Split(reqActions, ","),
		}
		granted, err := a.Authorize(context.Background(), req)
		if err != nil && !errors.Is(err, authz.ErrNoMatch) {
			t.Fatalf("Authorize: %v", err)
		}
		checkSubset(t, req.Actions, granted)
		if err == nil && granted == nil {
			t.Fatal("a matching entry granted nil, want a non-nil slice")
		}
	})
}

// TestGrantedSubsetOfRequested is the property test: over many random
// rule lists and requests, nothing outside the request is ever granted,
// and actions: ["*"] grants exactly the (non-empty, distinct) requested.
func TestGrantedSubsetOfRequested(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := []string{"pull", "push", "delete", "*", "", "read"}
	pick := func() []string {
		n := rng.IntN(4)
		out := make([]string, n)
		for i := range out {
			out[i] = vocab[rng.IntN(len(vocab))]
		}
		return out
	}
	pats := []string{"*", "a*", "/a/", "${account}", "${labels:g}", "b?", "/^$/"}
	for iter := 0; iter < 3000; iter++ {
		var entries []Entry
		for range rng.IntN(5) {
			var m Match
			if rng.IntN(2) == 0 {
				m.Account = sp(pats[rng.IntN(len(pats))])
			}
			if rng.IntN(2) == 0 {
				m.Name = sp(pats[rng.IntN(len(pats))])
			}
			acts := sortedSet(pick())
			acts = deleteEmpty(acts)
			entries = append(entries, Entry{Match: &m, Actions: &acts})
		}
		a, err := Compile(entries)
		if err != nil {
			t.Fatalf("Compile(%v): %v", entries, err)
		}
		req := &authz.Request{Account: []string{"a", "ab", "b1", ""}[rng.IntN(4)], Name: []string{"a", "abc", "ba"}[rng.IntN(3)],
			Labels: authn.Labels{"g": {"a", "b*"}}, Actions: pick()}
		d := a.Explain(req)
		checkSubset(t, req.Actions, d.Granted)
		if d.Index >= 0 {
			e := entries[d.Index]
			if len(*e.Actions) == 1 && (*e.Actions)[0] == "*" {
				want := deleteEmpty(sortedSet(req.Actions))
				if strings.Join(want, ",") != strings.Join(d.Granted, ",") {
					t.Fatalf(`["*"] granted %q for requested %q`, d.Granted, req.Actions)
				}
			}
		}
	}
}

func deleteEmpty(s []string) []string {
	out := s[:0]
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}
