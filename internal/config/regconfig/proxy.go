package regconfig

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/reference"
)

// validateProxy checks the proxy section: one of the two forms, absolute
// upstream URLs, credentials in pairs, and prefixes that are repository
// names, distinct and not nested.
func (c *Config) validateProxy(doc *config.Doc) config.Problems {
	p := c.Proxy
	if p == nil {
		return nil
	}
	var ps config.Problems
	add := func(path, msg, fix string) { ps = append(ps, doc.At(path, msg, fix)) }
	checkRemote := func(path, remote, user string, pass bool) {
		u, err := url.Parse(remote)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			add(path+".remoteurl", fmt.Sprintf("%s.remoteurl %q is not an absolute http(s) URL", path, remote), "write it as https://registry-1.docker.io")
			return
		case u.User != nil:
			add(path+".remoteurl", path+".remoteurl must not carry credentials", "put them in username and password")
		case u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "":
			add(path+".remoteurl", fmt.Sprintf("%s.remoteurl %q must be the registry's base URL, without a path", path, remote), "write it as "+u.Scheme+"://"+u.Host)
		}
		if (user == "") != !pass {
			add(path, path+" needs both username and password, or neither (anonymous pulls)", "")
		}
		if user != "" && u.Scheme == "http" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s.remoteurl is plain http: the upstream credentials cross the network unencrypted", path))
		}
	}
	if p.TTL != nil && *p.TTL < 0 {
		c.Warnings = append(c.Warnings, "proxy.ttl is negative: cached content never expires (as with ttl: 0)")
	}
	switch {
	case p.RemoteURL == "" && len(p.Upstreams) == 0:
		add("proxy", "proxy needs remoteurl (the upstream registry) or upstreams", "add remoteurl: https://registry-1.docker.io, or remove the proxy section")
	case p.RemoteURL != "" && len(p.Upstreams) > 0:
		add("proxy.upstreams", "proxy has both remoteurl (one upstream for every repository) and upstreams", "move remoteurl into an upstreams entry with a prefix, or remove upstreams")
	case p.RemoteURL != "":
		checkRemote("proxy", p.RemoteURL, p.Username, !p.Password.IsEmpty())
	default:
		if p.Username != "" || !p.Password.IsEmpty() {
			add("proxy", "proxy.username and password belong in each upstreams entry", "move them into the entry of the upstream they are for")
		}
	}
	seen := map[string]int{}
	for i, u := range p.Upstreams {
		path := fmt.Sprintf("proxy.upstreams.%d", i)
		switch {
		case u.Prefix == "":
			add(path, path+".prefix is required (the repositories under it are mirrored)", "add prefix: docker.io")
		case reference.ValidateRepository(u.Prefix) != nil:
			add(path+".prefix", fmt.Sprintf("%s.prefix %q is not a repository name: %s", path, u.Prefix, reference.Reason(reference.ValidateRepository(u.Prefix))), "use lower-case path components such as docker.io or mirror/ghcr")
		default:
			if j, dup := seen[u.Prefix]; dup {
				add(path+".prefix", fmt.Sprintf("%s.prefix %q is also the prefix of proxy.upstreams.%d", path, u.Prefix, j), "give each upstream its own prefix")
			}
			seen[u.Prefix] = i
		}
		if u.RemoteURL == "" {
			add(path, path+".remoteurl is required", "add remoteurl: https://ghcr.io")
		} else {
			checkRemote(path, u.RemoteURL, u.Username, !u.Password.IsEmpty())
		}
		if u.TTL != nil && *u.TTL < 0 {
			c.Warnings = append(c.Warnings, path+".ttl is negative: cached content never expires (as with ttl: 0)")
		}
	}
	for i, a := range p.Upstreams {
		for j, b := range p.Upstreams {
			if i != j && a.Prefix != "" && b.Prefix != "" && strings.HasPrefix(a.Prefix, b.Prefix+"/") {
				add(fmt.Sprintf("proxy.upstreams.%d.prefix", i), fmt.Sprintf("prefix %q lies under the prefix %q of proxy.upstreams.%d: a repository would belong to both", a.Prefix, b.Prefix, j), "use prefixes that do not nest")
			}
		}
	}
	return ps
}
