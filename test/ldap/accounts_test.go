//go:build integration

package ldap_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-registry/gatehouse/internal/authn/ldap"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
	"github.com/gatehouse-registry/gatehouse/internal/testenv"
)

// caseACL has a rule for a spelling of usera other than the directory's,
// which must serve no one, before usera's own pull-only rule and the Ops
// rule that would otherwise give usera everything.
const caseACL = `  - match: {account: "UserA"}
    actions: ["*"]
    comment: "a rule for another spelling of usera"
  - match: {account: "usera"}
    actions: ["pull"]
    comment: "usera may only pull"
  - match: {labels: {groups: "6000"}}
    actions: ["*"]
    comment: "Ops"
`

// getToken asks for a token with Basic credentials and returns the
// status, the token's sub and the access it grants.
func getToken(t *testing.T, client *http.Client, addr, user, password, scope string) (int, string, []access) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/auth?service=registry.test&scope="+scope, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, "", nil
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatalf("token response: %v", err)
	}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub    string   `json:"sub"`
		Access []access `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, claims.Sub, claims.Access
}

// The directory matches uid case-insensitively: every spelling of usera
// is usera for the token's sub and the ACL, and all spellings share one
// failed-login budget.
func TestAuthServerAccountNameCase(t *testing.T) {
	bin := testenv.Gatehouse(t)
	l := testenv.StartSlapd(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	limits := "  rate_limit:\n    failed_logins_per_account: 3\n    failed_logins_per_ip: 1000\n"
	cfgFile, client := authServerFiles(t, l, addr, caseACL, limits)
	p := testenv.Start(t, nil, bin, "auth-server", cfgFile)
	p.WaitHTTP(t, "https://"+addr+"/")

	const scope = "repository:team/app:push,pull"
	for _, user := range []string{"usera", "UserA", "USERA"} {
		t.Run(user, func(t *testing.T) {
			status, sub, acc := getToken(t, client, addr, user, l.UserPassword, scope)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if sub != testenv.LDAPUserOps {
				t.Errorf("sub %q, want %q", sub, testenv.LDAPUserOps)
			}
			want := []access{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}
			if diff := cmp.Diff(want, acc); diff != "" {
				t.Errorf("access (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("surrounding white space refused", func(t *testing.T) {
		if status, _, _ := getToken(t, client, addr, " usera", l.UserPassword, scope); status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", status)
		}
	})

	t.Run("one failure budget for every spelling", func(t *testing.T) {
		for _, user := range []string{"usera", "UserA", "USERA"} {
			if status, _, _ := getToken(t, client, addr, user, "wrong", scope); status != http.StatusUnauthorized {
				t.Fatalf("%s with a wrong password: status %d, want 401", user, status)
			}
		}
		if status, _, _ := getToken(t, client, addr, "uSeRa", "wrong", scope); status != http.StatusTooManyRequests {
			t.Errorf("a fourth spelling after three failures: status %d, want 429", status)
		}
	})
}

// The authenticator returns the directory's spelling of the name, and the
// group search (memberUid is compared case-sensitively) uses it.
func TestAccountNameFromDirectory(t *testing.T) {
	l := testenv.StartSlapd(t)
	cfg := seedConfig(l)
	cfg.GroupSearch = &ldap.GroupSearch{Base: l.PosixGroupsBase, Filter: "(&(objectClass=posixGroup)(memberUid=${account}))"}
	a, _ := newAuth(t, cfg)
	for _, typed := range []string{"usera", "UserA", "USERA"} {
		labels, err := authenticate(a, typed, l.UserPassword)
		if err != nil {
			t.Fatalf("%s: %v", typed, err)
		}
		if !slices.Contains(labels["groups"], "ops") {
			t.Errorf("%s: groups %q, want the posixGroup ops found by memberUid=usera", typed, labels["groups"])
		}
		name, _, err := a.AuthenticateAccount(t.Context(), typed, secret.Secret(l.UserPassword))
		if err != nil || name != testenv.LDAPUserOps {
			t.Errorf("%s: account %q, %v; want %q", typed, name, err, testenv.LDAPUserOps)
		}
		name, _, err = a.LookupAccount(t.Context(), typed)
		if err != nil || name != testenv.LDAPUserOps {
			t.Errorf("lookup %s: account %q, %v; want %q", typed, name, err, testenv.LDAPUserOps)
		}
	}
	name, _, err := a.AuthenticateAccount(t.Context(), "JÜRGEN", secret.Secret(l.UserPassword))
	if err != nil || name != testenv.LDAPUserUnicode {
		t.Errorf("JÜRGEN: account %q, %v; want %q", name, err, testenv.LDAPUserUnicode)
	}

	// An account attribute the entries lack fails the login loudly rather
	// than falling back to the name as typed.
	cfg.AccountAttribute = "employeeNumber"
	b, logs := newAuth(t, cfg)
	if _, err := authenticate(b, "UserA", l.UserPassword); err == nil {
		t.Error("login accepted without the account attribute")
	}
	if !strings.Contains(logs.String(), "employeeNumber") {
		t.Errorf("the log does not name the attribute:\n%s", logs)
	}
}
