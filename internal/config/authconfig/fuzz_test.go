package authconfig

import (
	"errors"
	"os"
	"testing"

	"github.com/gatehouse-registry/gatehouse/internal/config"
)

// FuzzParse feeds arbitrary bytes to the loader: it must never panic, and
// whatever it rejects it rejects as positioned config.Problems.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/seed_auth_config.yml", "../../../docs/examples/auth_config.yml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(doc{}.String()))
	f.Add([]byte(doc{extra: "ldap_auth: {addr: \"ldaps://h\", tls: ssl, base: dc=x, filter: \"(uid=${account})\", labels: {g: {}}}\n"}.String()))
	f.Add([]byte("acl:\n  - match: {gidNumber: 6000, account: [1]}\n  - match:\n  - 7\nusers: {a: {password: x}, a: {}}\n"))
	f.Add([]byte("server: {tls_cipher_suites: [\"0x0005\", 49199], tls_curve_preferences: [29], tls_min_version: \"0x0303\", real_ip_pos: -99999999999}\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("- 1\n"))
	f.Add([]byte(""))
	env := fakeEnv(f, nil, []string{"prog"}, map[string]string{"PW": "x"})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, e := range []Env{{}, env} {
			cfg, err := ParseEnv("f.yml", data, e)
			if cfg == nil {
				t.Fatal("ParseEnv returned a nil Config")
			}
			if err == nil {
				continue
			}
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty config.Problems: %v", err)
			}
			for _, p := range ps {
				if p.File != "f.yml" || p.Msg == "" {
					t.Fatalf("problem without file or message: %#v", p)
				}
			}
		}
	})
}
