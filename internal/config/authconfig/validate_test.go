package authconfig

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	baseServer = `server:
  addr: ":5001"
  certificate: /certs/server.pem
  key: /certs/server-key.pem
`
	baseToken = `token:
  issuer: test
  expiration: 900
`
	baseUsers = `users:
  "": {}
  alice:
    password: "` + aliceHash + `"
    labels: {group: [admins]}
`
	baseACL = `acl:
  - match: {account: alice}
    actions: ["*"]
`
)

// doc builds a config from sections; an empty section is the base one and
// "-" leaves it out.
type doc struct{ server, token, users, acl, extra string }

func (d doc) String() string {
	pick := func(s, def string) string {
		switch s {
		case "":
			return def
		case "-":
			return ""
		}
		return s
	}
	return pick(d.server, baseServer) + pick(d.token, baseToken) + pick(d.users, baseUsers) + pick(d.acl, baseACL) + d.extra
}

func TestValidate(t *testing.T) {
	edCert, edKey := edKeyPEMs(t)
	otherCert, _ := keyPEMs(t, ecKey(t), time.Now().Add(time.Hour))
	files := testFiles{
		"/certs/ed.pem": edCert, "/certs/ed-key.pem": edKey,
		"/certs/other.pem": otherCert,
		"/etc/ldap-pass":   []byte("pw\n"), "/etc/empty-pass": []byte(" \n"),
		"/certs/ca.pem": otherCert, "/certs/not-pem": []byte("hello"),
	}
	const ldapOK = `ldap_auth:
  addr: ldap.example.com:636
  tls: always
  base: "dc=example,dc=com"
  filter: "(uid=${account})"
`
	tests := []struct {
		name string
		doc  doc
		raw  string // used instead of doc when set
		want []string
	}{
		{name: "valid", doc: doc{}},
		{name: "empty file", raw: "\n", want: []string{
			"server.addr is missing", "token.issuer is missing", "token.expiration is missing",
			"no token signing key", "no authentication section", "no authorization section"}},
		{name: "top-level typo", doc: doc{extra: "acls: []\n"}, want: []string{`unknown key "acls" (fix: did you mean "acl"?)`}},
		{name: "refused oauth section", doc: doc{extra: "github_auth:\n  organization: x\n"}, want: []string{`"github_auth" is not supported by Gatehouse`}},
		{name: "refused letsencrypt", doc: doc{server: baseServer + "  letsencrypt: {email: a@b.c}\n"}, want: []string{`"server.letsencrypt" is not supported`}},
		{name: "refused casbin", doc: doc{extra: "casbin_authz: {model_path: m}\n"}, want: []string{`"casbin_authz" is not supported`}},
		{name: "duplicate key", doc: doc{token: baseToken + "  issuer: again\n"}, want: []string{`duplicate key "token.issuer"`}},
		{name: "empty users and acl count", doc: doc{users: "users: {}\n", acl: "acl: []\n"}},
		{name: "no authn no authz", doc: doc{users: "-", acl: "-"}, want: []string{"no authentication section", "no authorization section"}},
		{name: "ext_authz counts as authz", doc: doc{acl: "-", extra: "ext_authz: {command: authz-prog}\n"}},

		{name: "user without password", doc: doc{users: "users:\n  bob: {labels: {a: [b]}}\n"},
			want: []string{"users.bob has no password: docker_auth would accept any password for it; Gatehouse refuses (fix: run `gatehouse hash-password`"}},
		{name: "user with a dotted name", doc: doc{users: "users:\n  john.doe:\n    password: hunter2\n"},
			want: []string{`10:15: users."john.doe".password is not a bcrypt hash`}},
		{name: "plain password never shown", doc: doc{users: "users:\n  bob:\n    password: hunter2\n"},
			want: []string{"users.bob.password is not a bcrypt hash (it must start with $2a$, $2b$ or $2y$)"}},
		{name: "malformed bcrypt", doc: doc{users: "users:\n  bob:\n    password: $2a$10$short\n"}, want: []string{"users.bob.password is a malformed bcrypt hash"}},
		{name: "anonymous with password", doc: doc{users: "users:\n  \"\":\n    password: \"" + aliceHash + "\"\n"}, want: []string{`users."": the anonymous user has no password`}},
		{name: "labels must be lists", doc: doc{users: "users:\n  \"\":\n    labels: {group: admins}\n"}, want: []string{"expected a list here"}},

		{name: "acl without match", doc: doc{acl: "acl:\n  - actions: [pull]\n"}, want: []string{"acl.0.match: the entry has no match (docker_auth crashes on this) (fix: add match: {}"}},
		{name: "acl with null match", doc: doc{acl: "acl:\n  - match:\n    actions: [pull]\n"}, want: []string{"acl.0.match: the entry has no match"}},
		{name: "acl without actions", doc: doc{acl: "acl:\n  - match: {}\n    comment: x\n"}, want: []string{`14:5: acl.0.actions: the entry has no actions (fix: list what the entry grants`}},
		{name: "acl engine errors", doc: doc{acl: `acl:
  - match: {account: "/[a-/", ip: 10.0.0.0/33}
    actions: [pull]
  - match: {name: "${account:1}/*", labels: {team: "/(/"}}
    actions: ["pull, push"]
`}, want: []string{"14:13: acl.0.match.account: invalid regexp /[a-/", "14:31: acl.0.match.ip: \"10.0.0.0/33\" is not an IP address or a CIDR",
			"16:13: acl.1.match.name: ${account:1} refers to match.account, which is not set", "16:46: acl.1.match.labels.team: invalid regexp",
			"17:5: acl.1.actions: action \"pull, push\" contains a space or a comma"}},
		{name: "acl match typo", doc: doc{acl: "acl:\n  - match: {acount: alice}\n    actions: [pull]\n"},
			want: []string{`acl.0.match: unknown key "acount": docker_auth ignores it and reads this rule as an empty match, which grants actions ["pull"] to every user (fix: did you mean "account"?`}},
		{name: "acl unknown key beside known ones", doc: doc{acl: "acl:\n  - match: {account: alice, team: ops}\n    actions: []\n"},
			want: []string{`unknown key "team": docker_auth ignores it, so this rule matches on its other fields alone and denies everything more widely than written (fix: write labels: {team: "ops"} in this match instead of team and make sure users get a "team" label`}},
		{name: "acl unknown key found in ldap labels by name", doc: doc{acl: "acl:\n  - match: {department: ops}\n    actions: [pull]\n",
			extra: ldapOK + "  labels:\n    department: {attribute: ou}\n"},
			want: []string{`(fix: match: {labels: {department: "ops"}} (ldap_auth.labels.department provides it))`}},
		{name: "acl entry fields", doc: doc{acl: "acl:\n  - match: {account: a}\n    action: [pull]\n"},
			want: []string{`acl.0.actions: the entry has no actions`, `unknown key "acl.0.action" (fix: did you mean "actions"?)`}},

		{name: "cert without key", doc: doc{server: "server:\n  addr: \":5001\"\n  certificate: /certs/server.pem\n",
			token: baseToken + "  certificate: /certs/server.pem\n  key: /certs/server-key.pem\n"},
			want: []string{"server.certificate and server.key go together"}},
		{name: "token key falls back to server", doc: doc{}},
		{name: "no token key without server tls", doc: doc{server: "server:\n  addr: \":5001\"\n"}, want: []string{"no token signing key: set token.certificate and token.key, or server.certificate and server.key (fix: run `gatehouse certs init"}},
		{name: "ed25519 token key", doc: doc{token: baseToken + "  certificate: /certs/ed.pem\n  key: /certs/ed-key.pem\n"}, want: []string{"token.key: tokens are signed with RSA or ECDSA keys"}},
		{name: "mismatched pair", doc: doc{token: baseToken + "  certificate: /certs/other.pem\n  key: /certs/server-key.pem\n"},
			want: []string{"token.certificate and token.key are not a usable pair: private key does not match public key"}},
		{name: "missing token files", doc: doc{token: baseToken + "  certificate: /nope/c.pem\n  key: /nope/k.pem\n"},
			want: []string{`token.certificate: cannot read "/nope/c.pem": file does not exist`, `token.key: cannot read "/nope/k.pem"`}},
		{name: "expiration zero", doc: doc{token: "token:\n  issuer: x\n  expiration: 0\n"}, want: []string{"token.expiration must be a number of seconds > 0, not 0"}},
		{name: "expiration as duration", doc: doc{token: "token:\n  issuer: x\n  expiration: 15m\n"}, want: []string{`expected a whole number here, found a string "15m"`}},
		{name: "negative refresh", doc: doc{token: baseToken + "  refresh_token_expiration: -1\n"}, want: []string{"token.refresh_token_expiration must not be negative"}},
		{name: "jwks path clash", doc: doc{token: baseToken + "  jwks_path: /auth\n"}, want: []string{"token.jwks_path \"/auth\" is a route the auth server already serves"}},

		{name: "bad net", doc: doc{server: baseServer + "  net: udp\n"}, want: []string{`server.net "udp" is not tcp or unix`}},
		{name: "unix socket", doc: doc{server: "server:\n  net: unix\n  addr: /run/auth.sock\n", token: baseToken + "  certificate: /certs/server.pem\n  key: /certs/server-key.pem\n"}},
		{name: "bad addr", doc: doc{server: strings.Replace(baseServer, `":5001"`, `"localhost"`, 1)}, want: []string{`server.addr "localhost": not host:port`}},
		{name: "bad port", doc: doc{server: strings.Replace(baseServer, `":5001"`, `":http"`, 1)}, want: []string{`port "http" is not a number`}},
		{name: "path prefix", doc: doc{server: baseServer + "  path_prefix: auth\n"}, want: []string{`server.path_prefix "auth" does not start with / (fix: path_prefix: /auth)`}},
		{name: "ssl30", doc: doc{server: baseServer + "  tls_min_version: SSL30\n"}, want: []string{"SSL 3.0 is broken"}},
		{name: "unknown tls version", doc: doc{server: baseServer + "  tls_min_version: TLS1.2\n"}, want: []string{`"TLS1.2" is not a TLS version (fix: use one of TLS10, TLS11, TLS12, TLS13)`}},
		{name: "tls13 with suites", doc: doc{server: baseServer + "  tls_min_version: TLS13\n  tls_cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"}, want: []string{"cannot be set with tls_min_version TLS13"}},
		{name: "insecure suite", doc: doc{server: baseServer + "  tls_cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"}, want: []string{"cipher suite TLS_RSA_WITH_RC4_128_SHA is insecure and refused"}},
		{name: "insecure suite by number", doc: doc{server: baseServer + "  tls_cipher_suites: [5]\n"}, want: []string{"cipher suite TLS_RSA_WITH_RC4_128_SHA is insecure"}},
		{name: "unknown suite", doc: doc{server: baseServer + "  tls_cipher_suites: [TLS_FAST]\n"}, want: []string{`cipher suite "TLS_FAST" is not one Go knows`}},
		{name: "bad curve", doc: doc{server: baseServer + "  tls_curve_preferences: [P256, P192]\n"}, want: []string{`curve "P192" is not P256, P384, P521 or X25519`}},
		{name: "real ip pos range", doc: doc{server: baseServer + "  real_ip_header: X-Forwarded-For\n  real_ip_pos: 99\n"}, want: []string{"server.real_ip_pos 99 is out of range"}},
		{name: "bad header", doc: doc{server: baseServer + "  real_ip_header: \"X Forwarded\"\n  real_ip_pos: -1\n"}, want: []string{"is not a valid HTTP header name"}},
		{name: "extensions", doc: doc{server: baseServer + "  log_format: yaml\n  log_level: loud\n  credential_cache_ttl: -1s\n  rate_limit: {failed_logins_per_ip: -1, window: 0s}\n  metrics: {addr: nowhere, path: metrics}\n"},
			want: []string{`server.log_format "yaml" is not text or json`, `server.log_level "loud"`, "credential_cache_ttl must not be negative",
				"failed_logins_per_ip must not be negative", "window must be a positive duration", `server.metrics.addr "nowhere"`, `server.metrics.path "metrics" does not start with /`}},
		{name: "duration type error", doc: doc{server: baseServer + "  credential_cache_ttl: 300\n"}, want: []string{"expected a duration here"}},
		{name: "token cache", doc: doc{server: baseServer + "  token_cache: {ttl: -1s, max_entries: 0}\n"},
			want: []string{"server.token_cache.ttl must not be negative (fix: ttl: 0s turns the token cache off)", "server.token_cache.max_entries must be positive, not 0"}},
		{name: "token cache unknown key", doc: doc{server: baseServer + "  token_cache: {ttl: 1m, size: 10}\n"}, want: []string{"size"}},

		{name: "ldap ok", doc: doc{users: "-", extra: ldapOK}},
		{name: "ldap unknown tls is an error", doc: doc{users: "-", extra: strings.Replace(ldapOK, "tls: always", "tls: ssl", 1)},
			want: []string{`ldap_auth.tls "ssl" is not always, starttls or none`}},
		{name: "ldap url", doc: doc{users: "-", extra: strings.Replace(strings.Replace(ldapOK, "ldap.example.com:636", "ldaps://ldap.example.com", 1), "tls: always", "tls: \"\"", 1)}},
		{name: "ldap url conflicts with tls", doc: doc{users: "-", extra: strings.Replace(ldapOK, "ldap.example.com:636", "ldap://ldap.example.com", 1)},
			want: []string{"ldap_auth.tls always conflicts with the ldap:// addr"}},
		{name: "ldap bad addr", doc: doc{users: "-", extra: strings.Replace(ldapOK, "ldap.example.com:636", "http://x", 1)}, want: []string{`scheme "http" is not ldap:// or ldaps://`}},
		{name: "ldap required keys", doc: doc{users: "-", extra: "ldap_auth:\n  addr: ldap.example.com:636\n  labels:\n    groups: {parse_cn: true}\n"},
			want: []string{"ldap_auth.base is missing", "ldap_auth.filter is missing", "ldap_auth.labels.groups has no attribute"}},
		{name: "ldap filter without account", doc: doc{users: "-", extra: strings.Replace(ldapOK, "(uid=${account})", "(uid=bob)", 1)}, want: []string{"does not contain ${account}"}},
		{name: "ldap filter syntax", doc: doc{users: "-", extra: strings.Replace(ldapOK, "(uid=${account})", "(uid=${account}", 1)}, want: []string{"not a valid LDAP filter"}},
		{name: "ldap plain warns only", doc: doc{users: "-", extra: strings.Replace(ldapOK, "tls: always", "tls: none", 1)}},
		{name: "ldap bind without password", doc: doc{users: "-", extra: ldapOK + "  bind_dn: cn=reader,dc=example,dc=com\n"}, want: []string{"ldap_auth.bind_dn is set without a password"}},
		{name: "ldap both password sources", doc: doc{users: "-", extra: ldapOK + "  bind_dn: cn=r\n  bind_password_file: /etc/ldap-pass\n  bind_password_env: LDAP_PW\n"},
			want: []string{"bind_password_file and bind_password_env are both set"}},
		{name: "ldap empty password file", doc: doc{users: "-", extra: ldapOK + "  bind_dn: cn=r\n  bind_password_file: /etc/empty-pass\n"}, want: []string{`bind_password_file "/etc/empty-pass" is empty`}},
		{name: "ldap password env unset", doc: doc{users: "-", extra: ldapOK + "  bind_dn: cn=r\n  bind_password_env: UNSET_PW\n"}, want: []string{"environment variable UNSET_PW is not set or empty"}},
		{name: "ldap initial bind", doc: doc{users: "-", extra: ldapOK + "  initial_bind_as_user: true\n  bind_dn: cn=r\n  bind_password_env: LDAP_PW\n"},
			want: []string{"the bind password is not used", "bind_dn must contain ${account}"}},
		{name: "ldap ca files", doc: doc{users: "-", extra: ldapOK + "  ca_certificate: /certs/not-pem\n"}, want: []string{`ldap_auth.ca_certificate "/certs/not-pem" holds no PEM certificate`}},
		{name: "ldap group search", doc: doc{users: "-", extra: ldapOK + "  group_search: {filter: \"(member=${dn}\"}\n  dial_timeout: -1s\n  pool_size: 1000\n"},
			want: []string{"group_search.base is missing", "group_search.filter", "dial_timeout must not be negative", "pool_size 1000 is out of range"}},

		{name: "redis ok", doc: doc{server: baseServer + "  rate_limit:\n    redis: {addr: \"redis:6379\", password_env: LDAP_PW, db: 2, tls: {ca: /certs/ca.pem}, timeout: 150ms}\n"}},
		{name: "redis without addr", doc: doc{server: baseServer + "  rate_limit:\n    redis: {db: -1}\n"},
			want: []string{"server.rate_limit.redis.addr is missing", "server.rate_limit.redis.db must not be negative"}},
		{name: "redis bad values", doc: doc{server: baseServer + "  rate_limit:\n    redis:\n      addr: redis\n      password_file: /etc/ldap-pass\n      password_env: LDAP_PW\n      timeout: -1s\n      tls: {certificate: /certs/other.pem}\n"},
			want: []string{`server.rate_limit.redis.addr "redis"`, "password_file and password_env are both set", "server.rate_limit.redis.timeout must not be negative", "tls.certificate and key go together"}},
		{name: "redis secrets", doc: doc{server: baseServer + "  rate_limit:\n    redis:\n      addr: redis:6379\n      password_file: /etc/empty-pass\n      tls: {ca: /certs/not-pem}\n"},
			want: []string{`server.rate_limit.redis.password_file "/etc/empty-pass" is empty`, `server.rate_limit.redis.tls.ca "/certs/not-pem" holds no PEM certificate`}},
		{name: "redis password env unset", doc: doc{server: baseServer + "  rate_limit:\n    redis: {addr: \"redis:6379\", password_env: UNSET_PW}\n"},
			want: []string{"environment variable UNSET_PW is not set or empty"}},
		{name: "redis unknown key", doc: doc{server: baseServer + "  rate_limit:\n    redis: {addr: \"redis:6379\", password: pw}\n"},
			want: []string{"password"}},

		{name: "ext_auth command missing", doc: doc{users: "-", extra: "ext_auth:\n  command: no-such-prog\n  args: [--x]\n"},
			want: []string{`ext_auth.command "no-such-prog" cannot be run: executable file not found`}},
		{name: "ext_auth without command", doc: doc{users: "-", extra: "ext_auth:\n  args: [--x]\n  timeout: -1s\n"}, want: []string{"ext_auth.command is missing", "ext_auth.timeout must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.raw
			if src == "" {
				src = tt.doc.String()
			}
			env := fakeEnv(t, files, []string{"authz-prog"}, map[string]string{"LDAP_PW": "pw"})
			_, err := ParseEnv("a.yml", []byte(src), env)
			got := problemsOf(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:%s\n--- config:\n%s", len(got), len(tt.want), lines(got), src)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i].String(), w)
				}
			}
		})
	}
}

func TestDefaultsAndResolution(t *testing.T) {
	src := doc{server: baseServer + `  tls_min_version: TLS12
  tls_cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "0xc030"]
  tls_curve_preferences: [X25519, p256, 24]
`, extra: "ext_authz: {command: authz-prog}\n"}.String()
	cfg, err := ParseEnv("a.yml", []byte(src), fakeEnv(t, nil, []string{"authz-prog"}, nil))
	if err != nil {
		t.Fatalf("problems:%s", lines(problemsOf(t, err)))
	}
	s := cfg.Server
	got := []any{s.Net, s.MinVersion, s.CipherSuites, s.CurvePreferences, s.CredentialCacheTTL, s.TokenCache, s.LogFormat, s.LogLevel,
		s.RateLimit, s.Metrics.Path, cfg.Token.Certificate, cfg.Token.Key, cfg.Token.X5C, cfg.Token.RefreshTokenExpiration, cfg.ExtAuthz.Timeout}
	want := []any{"tcp", uint16(tls.VersionTLS12),
		[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		[]tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}, 5 * time.Minute, TokenCache{TTL: time.Minute, MaxEntries: 4096}, "text", "info",
		RateLimit{FailedLoginsPerAccount: 10, FailedLoginsPerIP: 50, Window: 5 * time.Minute}, "/metrics",
		"/certs/server.pem", "/certs/server-key.pem", true, int64(30 * 24 * 3600), 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolved values (-want +got):\n%s", diff)
	}
	if cfg.Token.Lifetime() != 15*time.Minute {
		t.Errorf("Lifetime = %v", cfg.Token.Lifetime())
	}

	// Explicit zeros and false are kept.
	src = doc{server: baseServer + "  credential_cache_ttl: 0s\n  token_cache: {ttl: 0s}\n  rate_limit: {failed_logins_per_account: 0}\n",
		token: baseToken + "  x5c: false\n  refresh_token_expiration: 0\n"}.String()
	cfg, err = ParseEnv("a.yml", []byte(src), fakeEnv(t, nil, nil, nil))
	if err != nil {
		t.Fatalf("problems:%s", lines(problemsOf(t, err)))
	}
	got = []any{cfg.Server.CredentialCacheTTL, cfg.Server.TokenCache, cfg.Server.RateLimit.FailedLoginsPerAccount, cfg.Server.RateLimit.FailedLoginsPerIP, cfg.Token.X5C, cfg.Token.RefreshTokenExpiration}
	want = []any{time.Duration(0), TokenCache{MaxEntries: 4096}, 0, 50, false, int64(0)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("explicit zeros (-want +got):\n%s", diff)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		doc  doc
		want []string
	}{
		{name: "none", doc: doc{}},
		{name: "plain http", doc: doc{server: "server:\n  addr: \":5001\"\n  hsts: true\n", token: baseToken + "  certificate: /certs/server.pem\n  key: /certs/server-key.pem\n"},
			want: []string{"will serve plain HTTP", "server.hsts has no effect"}},
		{name: "old tls", doc: doc{server: baseServer + "  tls_min_version: TLS10\n"}, want: []string{"deprecated (RFC 8996)"}},
		{name: "token cache ttl past the floor", doc: doc{server: baseServer + "  token_cache: {ttl: 5m}\n"},
			want: []string{"server.token_cache.ttl 5m0s is more than a tenth of token.expiration (15m0s)"}},
		{name: "token cache ttl within the floor", doc: doc{server: baseServer + "  token_cache: {ttl: 90s}\n"}},
		{name: "forgeable client ip", doc: doc{server: baseServer + "  real_ip_header: X-Forwarded-For\n"}, want: []string{"which the client can forge"}},
		{name: "low bcrypt cost", doc: doc{users: "users:\n  bob: {password: \"$2a$04$abcdefghijklmnopqrstuu5Bcxm5/FZ7Ffxdk5JXlaZ4z2Vq/5a2C\"}\n"}, want: []string{"bcrypt cost 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseEnv("a.yml", []byte(tt.doc.String()), fakeEnv(t, nil, nil, nil))
			if err != nil {
				t.Fatalf("problems:%s", lines(problemsOf(t, err)))
			}
			if len(cfg.Warnings) != len(tt.want) {
				t.Fatalf("got %d warnings, want %d:%s", len(cfg.Warnings), len(tt.want), lines(cfg.Warnings))
			}
			for i, w := range tt.want {
				if !strings.Contains(cfg.Warnings[i].Msg, w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, cfg.Warnings[i].Msg, w)
				}
			}
		})
	}
}

// The bind password comes from the environment and never shows in output.
func TestBindPasswordFromEnv(t *testing.T) {
	src := doc{users: "-", extra: "ldap_auth:\n  addr: ldap.example.com:636\n  base: dc=x\n  filter: (uid=${account})\n  bind_dn: cn=r,dc=x\n  bind_password_env: LDAP_PW\n"}.String()
	cfg, err := ParseEnv("a.yml", []byte(src), fakeEnv(t, nil, nil, map[string]string{"LDAP_PW": "topsecret"}))
	if err != nil {
		t.Fatalf("problems:%s", lines(problemsOf(t, err)))
	}
	if got := cfg.LDAPAuth.BindPassword.Reveal(); got != "topsecret" {
		t.Errorf("BindPassword = %q", got)
	}
	if s := cfg.LDAPAuth.BindPassword.String(); strings.Contains(s, "topsecret") {
		t.Errorf("BindPassword prints %q", s)
	}
}

func TestRedisPassword(t *testing.T) {
	for _, tt := range []struct{ name, key string }{
		{"env", "password_env: REDIS_PW"},
		{"file", "password_file: /etc/redis-pass"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := doc{server: baseServer + "  rate_limit:\n    redis:\n      addr: redis:6379\n      " + tt.key + "\n"}.String()
			env := fakeEnv(t, testFiles{"/etc/redis-pass": []byte("topsecret\n")}, nil, map[string]string{"REDIS_PW": "topsecret"})
			cfg, err := ParseEnv("a.yml", []byte(src), env)
			if err != nil {
				t.Fatalf("problems:%s", lines(problemsOf(t, err)))
			}
			r := cfg.Server.RateLimit.Redis
			if got := r.Password.Reveal(); got != "topsecret" {
				t.Errorf("Password = %q", got)
			}
			if r.Addr != "redis:6379" || r.TLS.On() {
				t.Errorf("Redis = %+v", r)
			}
		})
	}
}

// Env{} checks the file alone: no file, command or variable is consulted.
func TestParseWithoutEnv(t *testing.T) {
	src := doc{token: baseToken + "  certificate: /nope/c.pem\n  key: /nope/k.pem\n", extra: "ext_authz: {command: nothing-here}\n"}.String()
	if _, err := ParseEnv("a.yml", []byte(src), Env{}); err != nil {
		t.Fatalf("problems:%s", lines(problemsOf(t, err)))
	}
}
