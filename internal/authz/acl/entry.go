// Package acl is docker_auth's static ACL engine: an ordered list of entries,
// the first whose match fits the request decides, and no match denies.
package acl

// Entry is one ACL rule as written in auth_config.yml.
// Match and Actions are pointers so that a missing key can be told apart
// from an empty one (a missing key is a config error; `match: {}` matches
// everything and `actions: []` denies).
type Entry struct {
	Match   *Match    `yaml:"match"`
	Actions *[]string `yaml:"actions"`
	Comment string    `yaml:"comment"`
}

// Match holds the patterns of an entry; every field that is set must match.
// Patterns are globs (path.Match; `*` does not cross `/`) or /regexps/.
type Match struct {
	Account *string           `yaml:"account"`
	Type    *string           `yaml:"type"`
	Name    *string           `yaml:"name"`
	Service *string           `yaml:"service"`
	IP      *string           `yaml:"ip"` // an address or a CIDR
	Labels  map[string]string `yaml:"labels"`
}
