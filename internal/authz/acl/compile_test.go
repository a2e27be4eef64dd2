package acl

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompileValid(t *testing.T) {
	cases := []struct {
		name string
		m    Match
	}{
		{"empty", Match{}},
		{"account glob", Match{Account: sp("dev-*")}},
		{"account class glob", Match{Account: sp("[!x]?y")}},
		{"account regexp", Match{Account: sp("/^dev-[0-9]+$/")}},
		{"type glob", Match{Type: sp("repo*")}},
		{"type regexp", Match{Type: sp("/^registry$/")}},
		{"name glob", Match{Name: sp("library/*")}},
		{"name regexp", Match{Name: sp("/^library/.+/")}},
		{"service glob", Match{Service: sp("registry.*")}},
		{"service regexp", Match{Service: sp("/registry/")}},
		{"empty pattern", Match{Account: sp("")}},
		{"ipv4", Match{IP: sp("172.16.1.1")}},
		{"ipv4 cidr", Match{IP: sp("172.16.0.0/12")}},
		{"ipv6", Match{IP: sp("fd00::1")}},
		{"ipv6 cidr", Match{IP: sp("fd00::/8")}},
		{"label glob", Match{Labels: map[string]string{"groups": "dev*"}}},
		{"label regexp", Match{Labels: map[string]string{"groups": "/^(a|b)$/"}}},
		{"placeholders", Match{Name: sp("${account}/${type}-${service}-${name}")}},
		{"label placeholder", Match{Name: sp("${labels:project}/*")}},
		{"label placeholder with colon", Match{Name: sp("${labels:ns:team}/*")}},
		{"capture group", Match{Account: sp(`/^(.+)@x$/`), Name: sp("${account:1}/*")}},
		{"capture group into label pattern", Match{Account: sp(`/^(.+)@x$/`), Labels: map[string]string{"owner": "${account:1}"}}},
		{"placeholder in regexp", Match{Name: sp("/^${account}/")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.m
			if _, err := Compile([]Entry{{Match: &m, Actions: acts("pull")}}); err != nil {
				t.Errorf("Compile(%s): %v", m, err)
			}
		})
	}
}

func TestCompileInvalid(t *testing.T) {
	cases := []struct {
		name  string
		e     Entry
		field string
		msg   string // a part of the message
	}{
		{"no match", Entry{Actions: acts("pull")}, "match", "no match"},
		{"no actions", Entry{Match: &Match{}}, "actions", "no actions"},
		{"empty action", Entry{Match: &Match{}, Actions: acts("pull", "")}, "actions", "empty"},
		{"comma in action", Entry{Match: &Match{}, Actions: acts("pull,push")}, "actions", "comma"},
		{"duplicate action", Entry{Match: &Match{}, Actions: acts("pull", "pull")}, "actions", "twice"},
		{"account bad regexp", Entry{Match: &Match{Account: sp("/a(/")}, Actions: acts()}, "match.account", "invalid regexp"},
		{"type bad regexp", Entry{Match: &Match{Type: sp("/+x/")}, Actions: acts()}, "match.type", "invalid regexp"},
		{"name bad regexp", Entry{Match: &Match{Name: sp("/x{2,1}/")}, Actions: acts()}, "match.name", "invalid regexp"},
		{"service bad regexp", Entry{Match: &Match{Service: sp("/[z-a]/")}, Actions: acts()}, "match.service", "invalid regexp"},
		{"account bad glob", Entry{Match: &Match{Account: sp("dev[")}, Actions: acts()}, "match.account", "invalid glob"},
		{"name bad glob trailing escape", Entry{Match: &Match{Name: sp(`lib\`)}, Actions: acts()}, "match.name", "invalid glob"},
		{"name bad glob after placeholder", Entry{Match: &Match{Name: sp("${account}/[")}, Actions: acts()}, "match.name", "invalid glob"},
		{"bad regexp with placeholder", Entry{Match: &Match{Name: sp("/${account}(/")}, Actions: acts()}, "match.name", "invalid regexp"},
		{"ip wildcard", Entry{Match: &Match{IP: sp("10.0.0.*")}, Actions: acts()}, "match.ip", "not an IP"},
		{"ip bad mask", Entry{Match: &Match{IP: sp("10.0.0.0/33")}, Actions: acts()}, "match.ip", "not an IP"},
		{"ipv6 bad mask", Entry{Match: &Match{IP: sp("fd00::/129")}, Actions: acts()}, "match.ip", "not an IP"},
		{"ip name", Entry{Match: &Match{IP: sp("localhost")}, Actions: acts()}, "match.ip", "not an IP"},
		{"label bad regexp", Entry{Match: &Match{Labels: map[string]string{"groups": "/(/"}}, Actions: acts()}, "match.labels.groups", "invalid regexp"},
		{"label bad glob", Entry{Match: &Match{Labels: map[string]string{"groups": "["}}, Actions: acts()}, "match.labels.groups", "invalid glob"},
		{"label empty name", Entry{Match: &Match{Labels: map[string]string{"": "x"}}, Actions: acts()}, "match.labels", "empty"},
		{"label placeholder in label pattern", Entry{Match: &Match{Labels: map[string]string{"a": "${labels:b}"}}, Actions: acts()}, "match.labels.a", "not substituted"},
		{"unknown placeholder", Entry{Match: &Match{Name: sp("${user}/*")}, Actions: acts()}, "match.name", "unknown placeholder"},
		{"unknown capture field", Entry{Match: &Match{Name: sp("${ip:1}/*")}, Actions: acts()}, "match.name", "unknown placeholder"},
		{"unterminated placeholder", Entry{Match: &Match{Name: sp("${account/*")}, Actions: acts()}, "match.name", "unterminated"},
		{"empty label placeholder", Entry{Match: &Match{Name: sp("${labels:}")}, Actions: acts()}, "match.name", "names no label"},
		{"capture zero", Entry{Match: &Match{Account: sp("/(a)/"), Name: sp("${account:0}")}, Actions: acts()}, "match.name", "number from 1"},
		{"capture not a number", Entry{Match: &Match{Account: sp("/(a)/"), Name: sp("${account:x}")}, Actions: acts()}, "match.name", "number from 1"},
		{"capture out of range", Entry{Match: &Match{Account: sp(`/^(.+)@x$/`), Name: sp("${account:2}/*")}, Actions: acts()}, "match.name", "has 1"},
		{"capture from glob", Entry{Match: &Match{Account: sp("*@x"), Name: sp("${account:1}/*")}, Actions: acts()}, "match.name", "not a /regexp/"},
		{"capture from unset field", Entry{Match: &Match{Name: sp("${account:1}/*")}, Actions: acts()}, "match.name", "not set"},
		{"capture from dynamic regexp", Entry{Match: &Match{Account: sp("/^(${service})-(.*)$/"), Name: sp("${account:2}")}, Actions: acts()}, "match.name", "placeholders of its own"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile([]Entry{{Match: &Match{}, Actions: acts("*")}, c.e})
			var ces CompileErrors
			if !errors.As(err, &ces) {
				t.Fatalf("Compile: got %v, want CompileErrors", err)
			}
			if len(ces) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(ces), err)
			}
			ce := ces[0]
			if ce.Index != 1 || ce.Field != c.field || !strings.Contains(ce.Msg, c.msg) {
				t.Errorf("got {Index:%d Field:%q Msg:%q}, want {Index:1 Field:%q Msg:~%q}", ce.Index, ce.Field, ce.Msg, c.field, c.msg)
			}
			if ce.Fix == "" {
				t.Errorf("no fix suggested for %q", ce.Msg)
			}
		})
	}
}

func TestCompileReportsEveryError(t *testing.T) {
	_, err := Compile([]Entry{
		{Match: &Match{Account: sp("/(/"), IP: sp("nope")}},
		{Match: &Match{}, Actions: acts("pull")},
		{Actions: acts()},
	})
	var ces CompileErrors
	if !errors.As(err, &ces) {
		t.Fatalf("got %v", err)
	}
	type pos struct {
		Index int
		Field string
	}
	var got []pos
	for _, ce := range ces {
		got = append(got, pos{ce.Index, ce.Field})
	}
	want := []pos{{0, "actions"}, {0, "match.account"}, {0, "match.ip"}, {2, "match"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "acl[2].match: ") {
		t.Errorf("message %q does not name acl[2].match", err.Error())
	}
}

func TestRulesValidate(t *testing.T) {
	if err := (Rules{{Match: &Match{}, Actions: acts("pull")}}).Validate(); err != nil {
		t.Fatalf("valid rules: %v", err)
	}
	if err := (Rules{}).Validate(); err != nil {
		t.Fatalf("no rules: %v", err)
	}
	bad := Rules{{Match: &Match{Account: sp("/(/")}, Actions: acts("pull")}, {Actions: acts()}}
	_, cerr := Compile(bad)
	var ces CompileErrors
	if err := bad.Validate(); !errors.As(err, &ces) || len(ces) != 2 || err.Error() != cerr.Error() {
		t.Fatalf("got %v, want Compile's CompileErrors %v", err, cerr)
	}
}
