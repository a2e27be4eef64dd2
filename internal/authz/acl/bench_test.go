package acl

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
)

func benchAuthorize(b *testing.B, entries []Entry, req *authz.Request, wantIndex int) {
	b.Helper()
	a, err := Compile(entries)
	if err != nil {
		b.Fatal(err)
	}
	if d := a.Explain(req); d.Index != wantIndex {
		b.Fatalf("decided by %d, want %d", d.Index, wantIndex)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Authorize(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorize1000Rules: 1,000 rules of mixed kinds; the request is
// decided by the 998th.
func BenchmarkAuthorize1000Rules(b *testing.B) {
	var entries []Entry
	for i := range 1000 {
		var m Match
		switch i % 4 {
		case 0:
			m.Account = sp(fmt.Sprintf("user%d", i))
		case 1:
			m.Name = sp(fmt.Sprintf("team%d/*", i))
		case 2:
			m.Labels = map[string]string{"groups": fmt.Sprintf("group%d", i)}
		case 3:
			m.Account = sp(fmt.Sprintf("/^svc-%d-.*$/", i))
		}
		entries = append(entries, Entry{Match: &m, Actions: acts("pull")})
	}
	entries[997] = Entry{Match: &Match{Account: sp("alice"), Name: sp("team/*")}, Actions: acts("pull", "push")}
	req := &authz.Request{Account: "alice", Type: "repository", Name: "team/app", Service: "registry",
		IP: net.ParseIP("10.0.0.1"), Actions: []string{"pull", "push"}, Labels: authn.Labels{"groups": {"a", "b", "c"}}}
	benchAuthorize(b, entries, req, 997)
}

// BenchmarkAuthorizeSeed is the seed's rule list, corrected.
func BenchmarkAuthorizeSeed(b *testing.B) {
	entries := []Entry{
		{Match: &Match{Account: sp("admin")}, Actions: acts("*")},
		{Match: &Match{Labels: map[string]string{"groups": "6000"}}, Actions: acts("*")},
		{Match: &Match{Account: sp("/.+/")}, Actions: acts("pull")},
	}
	req := &authz.Request{Account: "usera", Type: "repository", Name: "library/alpine",
		Actions: []string{"pull", "push"}, Labels: authn.Labels{"groups": {"6000"}}}
	benchAuthorize(b, entries, req, 1)
}

// BenchmarkAuthorizePlaceholders exercises rendering and the regexp cache.
func BenchmarkAuthorizePlaceholders(b *testing.B) {
	entries := []Entry{
		{Match: &Match{Account: sp(`/^(.+)@corp\.example$/`), Name: sp("/^${account:1}-.+$/")}, Actions: acts("*")},
		{Match: &Match{Name: sp("${account}/*")}, Actions: acts("*")},
	}
	req := &authz.Request{Account: "ann@corp.example", Type: "repository", Name: "ann-tools",
		Actions: []string{"pull", "push"}}
	benchAuthorize(b, entries, req, 0)
}

// BenchmarkAuthorizeLabelProduct: two label placeholders over 20×20 values,
// matched by the last combination.
func BenchmarkAuthorizeLabelProduct(b *testing.B) {
	var g, p []string
	for i := range 20 {
		g = append(g, fmt.Sprintf("g%d", i))
		p = append(p, fmt.Sprintf("p%d", i))
	}
	entries := []Entry{{Match: &Match{Name: sp("${labels:group}/${labels:project}")}, Actions: acts("pull")}}
	req := &authz.Request{Account: "x", Name: "g19/p19", Actions: []string{"pull"},
		Labels: authn.Labels{"group": g, "project": p}}
	benchAuthorize(b, entries, req, 0)
}
