package ldap

import (
	"github.com/gatehouse-registry/gatehouse/internal/config/authconfig"
)

// FromAuthConfig converts the ldap_auth section of auth_config.yml (with
// its bind password already read by the config loader) into a Config.
func FromAuthConfig(c *authconfig.LDAPAuth) Config {
	cfg := Config{
		Addr:               c.Addr,
		TLS:                c.TLS,
		InsecureSkipVerify: c.InsecureTLSSkipVerify,
		CACertFile:         c.CACertificate,
		BindDN:             c.BindDN,
		BindPassword:       c.BindPassword,
		InitialBindAsUser:  c.InitialBindAsUser,
		Base:               c.Base,
		Filter:             c.Filter,
		DialTimeout:        c.DialTimeout,
		RequestTimeout:     c.RequestTimeout,
		PoolSize:           c.PoolSize,
	}
	if len(c.Labels) > 0 {
		cfg.Labels = make(map[string]LabelConfig, len(c.Labels))
		for name, l := range c.Labels {
			cfg.Labels[name] = LabelConfig{Attribute: l.Attribute, ParseCN: l.ParseCN, LowerCase: l.LowerCase}
		}
	}
	if g := c.GroupSearch; g != nil {
		cfg.GroupSearch = &GroupSearch{Base: g.Base, Filter: g.Filter, Label: g.Label}
	}
	return cfg
}
