package acl

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/authn"
	"github.com/gatehouse-registry/gatehouse/internal/authz"
)

func sp(s string) *string { return &s }

func acts(a ...string) *[]string {
	if a == nil {
		a = []string{}
	}
	return &a
}

// matchOne compiles a single entry that grants "pull" and reports whether
// it matches req.
func matchOne(t *testing.T, m Match, req authz.Request) bool {
	t.Helper()
	a, err := Compile([]Entry{{Match: &m, Actions: acts("pull")}})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	req.Actions = []string{"pull"}
	d := a.Explain(&req)
	return d.Index == 0
}

func TestMatching(t *testing.T) {
	base := authz.Request{Account: "carol", Type: "repository", Name: "web/frontend", Service: "registry.example"}
	withLabels := func(r authz.Request, l authn.Labels) authz.Request { r.Labels = l; return r }
	withIP := func(r authz.Request, ip string) authz.Request { r.IP = net.ParseIP(ip); return r }
	withName := func(r authz.Request, n string) authz.Request { r.Name = n; return r }
	withAccount := func(r authz.Request, a string) authz.Request { r.Account = a; return r }
	teams := authn.Labels{"team": {"web", "ops"}, "env": {"staging", "prod"}}

	cases := []struct {
		name string
		m    Match
		req  authz.Request
		want bool
	}{
		{"empty match fits all", Match{}, base, true},
		{"empty match fits anonymous", Match{}, withAccount(base, ""), true},
		{"account literal", Match{Account: sp("carol")}, base, true},
		{"account literal other", Match{Account: sp("dave")}, base, false},
		{"empty account pattern is anonymous only", Match{Account: sp("")}, withAccount(base, ""), true},
		{"empty account pattern not carol", Match{Account: sp("")}, base, false},
		{"fields are ANDed", Match{Account: sp("carol"), Type: sp("registry")}, base, false},
		{"all fields fit", Match{Account: sp("carol"), Type: sp("repository"), Name: sp("web/*"), Service: sp("registry.*")}, base, true},
		{"glob question mark", Match{Account: sp("car?l")}, base, true},
		{"glob class", Match{Account: sp("[a-c]arol")}, base, true},
		{"glob star does not cross slash", Match{Name: sp("*")}, base, false},
		{"glob star within segment", Match{Name: sp("web/*")}, base, true},
		{"glob star not two segments", Match{Name: sp("web/*")}, withName(base, "web/a/b"), false},
		{"glob escape", Match{Name: sp(`web\/frontend`)}, base, true},
		{"regexp is unanchored", Match{Name: sp("/front/")}, base, true},
		{"regexp anchored miss", Match{Name: sp("/^front/")}, base, false},
		{"regexp crosses slash", Match{Name: sp("/^web/.*$/")}, withName(base, "web/a/b"), true},
		{"two slashes is a glob", Match{Name: sp("//")}, withName(base, "//"), true},
		{"service glob", Match{Service: sp("*.example")}, base, true},
		{"service mismatch", Match{Service: sp("other")}, base, false},
		{"type regexp", Match{Type: sp("/^(repository|registry)$/")}, base, true},

		{"account placeholder", Match{Name: sp("${account}/*")}, withName(base, "carol/app"), true},
		{"account placeholder other user", Match{Name: sp("${account}/*")}, withName(base, "dave/app"), false},
		{"account placeholder in regexp", Match{Name: sp("/^${account}-[a-z]+$/")}, withName(base, "carol-tools"), true},
		{"account is quoted in regexp", Match{Name: sp("/^${account}$/")}, withName(withAccount(base, "c.rol"), "carol"), false},
		{"account is quoted in glob", Match{Name: sp("${account}/x")}, withName(withAccount(base, "*"), "carol/x"), false},
		{"quoted account still matches itself", Match{Name: sp("${account}/x")}, withName(withAccount(base, "c.rol+1"), "c.rol+1/x"), true},
		{"slashes in account cannot make a regexp", Match{Name: sp("${account}")}, withName(withAccount(base, "/web/"), "web/frontend"), false},
		{"type placeholder", Match{Name: sp("${type}s/*")}, withName(base, "repositorys/x"), true},
		{"service placeholder", Match{Name: sp("/^${service}\\//")}, withName(base, "registry.example/x"), true},
		{"name placeholder in account", Match{Account: sp("${name}")}, withAccount(withName(base, "solo"), "solo"), true},

		{"capture group", Match{Account: sp(`/^(.+)@corp\.example$/`), Name: sp("${account:1}/*")},
			withName(withAccount(base, "ann.lee@corp.example"), "ann.lee/tool"), true},
		{"capture group other prefix", Match{Account: sp(`/^(.+)@corp\.example$/`), Name: sp("${account:1}/*")},
			withName(withAccount(base, "ann.lee@corp.example"), "bob/tool"), false},
		{"capture group two groups", Match{Account: sp(`/^([a-z.]+)@([a-z]+)\.corp$/`), Name: sp("${account:2}/${account:1}")},
			withName(withAccount(base, "ann@dev.corp"), "dev/ann"), true},
		{"capture group is quoted", Match{Account: sp(`/^(.+)@corp$/`), Name: sp("${account:1}/*")},
			withName(withAccount(base, "*@corp"), "anything/tool"), false},
		{"capture source mismatch", Match{Account: sp(`/^(.+)@corp$/`), Name: sp("${account:1}/*")},
			withName(withAccount(base, "ann@other"), "ann/tool"), false},
		{"optional group that did not take part", Match{Account: sp(`/^(x)?ann$/`), Name: sp("${account:1}tool")},
			withName(withAccount(base, "ann"), "tool"), true},
		{"capture from name into label pattern", Match{Name: sp(`/^team-([a-z]+)\//`), Labels: map[string]string{"team": "${name:1}"}},
			withLabels(withName(base, "team-ops/x"), teams), true},

		{"ip exact v4", Match{IP: sp("10.1.2.3")}, withIP(base, "10.1.2.3"), true},
		{"ip exact v4 other", Match{IP: sp("10.1.2.3")}, withIP(base, "10.1.2.4"), false},
		{"ip unknown", Match{IP: sp("10.1.2.3")}, base, false},
		{"ip cidr v4", Match{IP: sp("10.0.0.0/8")}, withIP(base, "10.200.1.1"), true},
		{"ip cidr v4 outside", Match{IP: sp("10.0.0.0/8")}, withIP(base, "11.0.0.1"), false},
		{"ip v4-mapped request", Match{IP: sp("192.168.0.0/16")}, withIP(base, "::ffff:192.168.4.4"), true},
		{"ip v4 rule, v6 request", Match{IP: sp("192.168.0.0/16")}, withIP(base, "2001:db8::1"), false},
		{"ip exact v6", Match{IP: sp("2001:db8::7")}, withIP(base, "2001:db8::7"), true},
		{"ip exact v6 other", Match{IP: sp("2001:db8::7")}, withIP(base, "2001:db8::8"), false},
		{"ip cidr v6", Match{IP: sp("2001:db8::/32")}, withIP(base, "2001:db8:ffff::1"), true},
		{"ip cidr v6 unknown", Match{IP: sp("2001:db8::/32")}, base, false},

		{"label present", Match{Labels: map[string]string{"team": "ops"}}, withLabels(base, teams), true},
		{"label any value", Match{Labels: map[string]string{"team": "web"}}, withLabels(base, teams), true},
		{"label no user labels", Match{Labels: map[string]string{"team": "ops"}}, base, false},
		{"label absent key", Match{Labels: map[string]string{"dept": "ops"}}, withLabels(base, teams), false},
		{"labels ANDed", Match{Labels: map[string]string{"team": "ops", "env": "dev"}}, withLabels(base, teams), false},
		{"labels ANDed fit", Match{Labels: map[string]string{"team": "ops", "env": "prod"}}, withLabels(base, teams), true},
		{"label glob", Match{Labels: map[string]string{"env": "stag*"}}, withLabels(base, teams), true},
		{"label regexp", Match{Labels: map[string]string{"env": "/^(qa|prod)$/"}}, withLabels(base, teams), true},
		{"label with account placeholder", Match{Labels: map[string]string{"owner": "${account}"}},
			withLabels(base, authn.Labels{"owner": {"carol"}}), true},
		{"seed rule: groups 6000", Match{Labels: map[string]string{"groups": "6000"}},
			withLabels(base, authn.Labels{"groups": {"5000", "6000"}}), true},
		{"seed rule: other group", Match{Labels: map[string]string{"groups": "6000"}},
			withLabels(base, authn.Labels{"groups": {"7000"}}), false},

		{"label placeholder", Match{Name: sp("${labels:team}/*")}, withLabels(base, teams), true},
		{"label placeholder second value", Match{Name: sp("${labels:team}/*")}, withLabels(withName(base, "ops/db"), teams), true},
		{"label placeholder no labels", Match{Name: sp("${labels:team}/*")}, base, false},
		{"label placeholder missing label", Match{Name: sp("${labels:dept}/*")}, withLabels(base, teams), false},
		{"label placeholder empty list", Match{Name: sp("${labels:team}/*")}, withLabels(base, authn.Labels{"team": {}}), false},
		{"two label placeholders", Match{Name: sp("${labels:team}/${labels:env}")}, withLabels(withName(base, "ops/staging"), teams), true},
		{"two label placeholders wrong value", Match{Name: sp("${labels:team}/${labels:env}")}, withLabels(withName(base, "ops/dev"), teams), false},
		{"two label placeholders one missing", Match{Name: sp("${labels:team}/${labels:dept}")}, withLabels(withName(base, "ops/x"), teams), false},
		{"label value unquoted is a pattern", Match{Name: sp("${labels:ns}")}, withLabels(base, authn.Labels{"ns": {"web/*"}}), true},
		{"label value makes a regexp", Match{Name: sp("${labels:ns}")}, withLabels(base, authn.Labels{"ns": {"/^web\\//"}}), true},
		{"label placeholder left in place first", Match{Name: sp("${labels:team}/*")}, withName(base, "${labels:team}/x"), true},
		{"broken label value never matches", Match{Name: sp("${labels:ns}/*")}, withLabels(withName(base, "web/x"), authn.Labels{"ns": {"[web"}}), false},
		{"label and account placeholders", Match{Name: sp("${labels:team}/${account}")}, withLabels(withName(base, "web/carol"), teams), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := matchOne(t, c.m, c.req); got != c.want {
				t.Errorf("match %s against %+v: got %v, want %v", c.m, c.req, got, c.want)
			}
		})
	}
}

func TestFirstMatchDecides(t *testing.T) {
	entries := []Entry{
		{Match: &Match{Account: sp("admin")}, Actions: acts("*"), Comment: "admin can do anything"},
		{Match: &Match{Name: sp("secret/*")}, Actions: acts(), Comment: "nobody else sees secrets"},
		{Match: &Match{Labels: map[string]string{"groups": "devops"}}, Actions: acts("pull", "push"), Comment: "DevOps"},
		{Match: &Match{Account: sp("/.+/")}, Actions: acts("pull"), Comment: "users can pull"},
	}
	a, err := Compile(entries)
	if err != nil {
		t.Fatal(err)
	}
	devops := authn.Labels{"groups": {"devops"}}
	cases := []struct {
		name    string
		req     authz.Request
		granted []string
		index   int
		err     error
	}{
		{"admin everything asked", authz.Request{Account: "admin", Name: "secret/x", Actions: []string{"push", "pull", "delete"}}, []string{"delete", "pull", "push"}, 0, nil},
		{"admin star only when asked", authz.Request{Account: "admin", Type: "registry", Name: "catalog", Actions: []string{"*"}}, []string{"*"}, 0, nil},
		{"deny rule before grant", authz.Request{Account: "dave", Name: "secret/x", Labels: devops, Actions: []string{"pull"}}, []string{}, 1, nil},
		{"devops intersection", authz.Request{Account: "dave", Name: "app", Labels: devops, Actions: []string{"push", "delete", "pull"}}, []string{"pull", "push"}, 2, nil},
		{"user pull only", authz.Request{Account: "erin", Name: "app", Actions: []string{"pull", "push"}}, []string{"pull"}, 3, nil},
		{"catalog star not granted by pull", authz.Request{Account: "erin", Type: "registry", Name: "catalog", Actions: []string{"*"}}, []string{}, 3, nil},
		{"anonymous no match", authz.Request{Account: "", Name: "app", Actions: []string{"pull"}}, nil, -1, authz.ErrNoMatch},
		{"duplicates requested", authz.Request{Account: "admin", Name: "app", Actions: []string{"pull", "pull", ""}}, []string{"pull"}, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := a.Authorize(context.Background(), &c.req)
			if !errors.Is(err, c.err) {
				t.Fatalf("Authorize error = %v, want %v", err, c.err)
			}
			if diff := cmp.Diff(c.granted, got); diff != "" {
				t.Errorf("granted (-want +got):\n%s", diff)
			}
			d := a.Explain(&c.req)
			if d.Index != c.index {
				t.Errorf("Explain index = %d, want %d", d.Index, c.index)
			}
			if c.index >= 0 && d.Comment != entries[c.index].Comment {
				t.Errorf("Explain comment = %q, want %q", d.Comment, entries[c.index].Comment)
			}
			if d.Granted == nil {
				t.Errorf("Explain granted is nil")
			}
		})
	}
}

func TestGrantListingStar(t *testing.T) {
	a, err := Compile([]Entry{{Match: &Match{}, Actions: acts("pull", "*")}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Authorize(context.Background(), &authz.Request{Type: "registry", Name: "catalog", Actions: []string{"*", "push"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"*"}, got); diff != "" {
		t.Errorf("granted (-want +got):\n%s", diff)
	}
}

func TestEmptyACLDeniesByNoMatch(t *testing.T) {
	a, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authorize(context.Background(), &authz.Request{Actions: []string{"pull"}}); !errors.Is(err, authz.ErrNoMatch) {
		t.Fatalf("got %v, want ErrNoMatch", err)
	}
	if d := a.Explain(&authz.Request{}); d.Index != -1 || d.Granted == nil || len(d.Granted) != 0 {
		t.Fatalf("Explain = %+v", d)
	}
}

func TestAuthorizeCancelled(t *testing.T) {
	a, err := Compile([]Entry{{Match: &Match{}, Actions: acts("*")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Authorize(ctx, &authz.Request{Actions: []string{"pull"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestEntryString(t *testing.T) {
	e := Entry{
		Match:   &Match{Account: sp("alice"), Name: sp("${account}/*"), Labels: map[string]string{"groups": "6000", "a": "b"}},
		Actions: acts("pull", "push"),
		Comment: "Alice's own",
	}
	want := `{match: {account: "alice", name: "${account}/*", labels: {"a": "b", "groups": "6000"}}, actions: ["pull", "push"], comment: "Alice's own"}`
	if got := e.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
