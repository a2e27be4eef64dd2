package authconfig

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// now is the clock certificate expiry is checked against.
var now = time.Now

// checkEnv checks the files, commands and environment variables the config
// names, and reads the LDAP bind password.
func (v *validator) checkEnv(env Env) {
	c := v.cfg
	if env.ReadFile != nil {
		s := &c.Server
		serverPair := v.keyPair(env, "server", s.Certificate, s.Key)
		t := &c.Token
		switch {
		case t.Certificate != "" && t.Key != "":
			if pair := v.keyPair(env, "token", t.Certificate, t.Key); pair != nil {
				v.signingKey(pair, "token.key")
			}
		case t.Certificate == "" && t.Key == "" && serverPair != nil:
			v.signingKey(serverPair, "server.key")
		}
		if l := c.LDAPAuth; l != nil {
			if l.CACertificate != "" {
				if data, ok := v.read(env, "ldap_auth.ca_certificate", l.CACertificate, ""); ok {
					if !x509.NewCertPool().AppendCertsFromPEM(data) {
						v.errAt("ldap_auth.ca_certificate", fmt.Sprintf("ldap_auth.ca_certificate %q holds no PEM certificate", l.CACertificate), "")
					}
				}
			}
			if l.BindPasswordFile != "" {
				if data, ok := v.read(env, "ldap_auth.bind_password_file", l.BindPasswordFile, "write the service account's password into it"); ok {
					pw := strings.TrimSpace(string(data))
					if pw == "" {
						v.errAt("ldap_auth.bind_password_file", fmt.Sprintf("ldap_auth.bind_password_file %q is empty: an empty password is an unauthenticated bind", l.BindPasswordFile), "write the service account's password into it")
					}
					l.BindPassword = secret.Secret(pw)
				}
			}
		}
	}
	if l := c.LDAPAuth; l != nil && l.BindPasswordEnv != "" && env.LookupEnv != nil && envNameRe.MatchString(l.BindPasswordEnv) {
		pw, ok := env.LookupEnv(l.BindPasswordEnv)
		if pw = strings.TrimSpace(pw); !ok || pw == "" {
			v.errAt("ldap_auth.bind_password_env", fmt.Sprintf("ldap_auth.bind_password_env: environment variable %s is not set or empty", l.BindPasswordEnv),
				fmt.Sprintf("export %s=... before starting Gatehouse", l.BindPasswordEnv))
		}
		l.BindPassword = secret.Secret(pw)
	}
	v.redisSecrets(env)
	if env.LookPath != nil {
		for _, e := range []struct {
			section string
			cmd     *ExtCommand
		}{{"ext_auth", c.ExtAuth}, {"ext_authz", c.ExtAuthz}} {
			if e.cmd == nil || e.cmd.Command == "" {
				continue
			}
			if _, err := env.LookPath(e.cmd.Command); err != nil {
				v.errAt(e.section+".command", fmt.Sprintf("%s.command %q cannot be run: %v", e.section, e.cmd.Command, reason(err)),
					"give the full path of an executable file")
			}
		}
	}
}

// redisSecrets checks the files server.rate_limit.redis names and reads
// its password.
func (v *validator) redisSecrets(env Env) {
	r := v.cfg.Server.RateLimit.Redis
	if r == nil {
		return
	}
	const p = "server.rate_limit.redis"
	if env.ReadFile != nil {
		if r.TLS.CA != "" {
			if data, ok := v.read(env, p+".tls.ca", r.TLS.CA, ""); ok && !x509.NewCertPool().AppendCertsFromPEM(data) {
				v.errAt(p+".tls.ca", fmt.Sprintf("%s.tls.ca %q holds no PEM certificate", p, r.TLS.CA), "")
			}
		}
		if r.TLS.Certificate != "" && r.TLS.Key != "" {
			v.keyPair(env, p+".tls", r.TLS.Certificate, r.TLS.Key)
		}
		if r.PasswordFile != "" {
			if data, ok := v.read(env, p+".password_file", r.PasswordFile, "write the Redis password into it"); ok {
				pw := strings.TrimSpace(string(data))
				if pw == "" {
					v.errAt(p+".password_file", fmt.Sprintf("%s.password_file %q is empty", p, r.PasswordFile), "write the Redis password into it, or drop password_file")
				}
				r.Password = secret.Secret(pw)
			}
		}
	}
	if r.PasswordEnv != "" && env.LookupEnv != nil && envNameRe.MatchString(r.PasswordEnv) {
		pw, ok := env.LookupEnv(r.PasswordEnv)
		if pw = strings.TrimSpace(pw); !ok || pw == "" {
			v.errAt(p+".password_env", fmt.Sprintf("%s.password_env: environment variable %s is not set or empty", p, r.PasswordEnv),
				fmt.Sprintf("export %s=... before starting Gatehouse", r.PasswordEnv))
		}
		r.Password = secret.Secret(pw)
	}
}

// read reads a file named at path, reporting a problem when it cannot.
func (v *validator) read(env Env, path, name, fix string) ([]byte, bool) {
	data, err := env.ReadFile(name)
	if err != nil {
		if fix == "" {
			fix = "check the path and the file's permissions"
		}
		v.errAt(path, fmt.Sprintf("%s: cannot read %q: %v", path, name, reason(err)), fix)
		return nil, false
	}
	return data, true
}

// reason strips the path an error repeats, leaving why.
func reason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// keyPair reads section.certificate and section.key and checks that they
// belong together. It returns nil when they are unset or unusable.
func (v *validator) keyPair(env Env, section, certFile, keyFile string) *tls.Certificate {
	if certFile == "" || keyFile == "" {
		return nil
	}
	const fix = "check the path; `gatehouse certs init` makes a certificate and key"
	certPEM, ok1 := v.read(env, section+".certificate", certFile, fix)
	keyPEM, ok2 := v.read(env, section+".key", keyFile, fix)
	if !ok1 || !ok2 {
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error text names what is wrong, never the key material.
		v.errAt(section+".certificate", fmt.Sprintf("%s.certificate and %s.key are not a usable pair: %v", section, section, strings.TrimPrefix(err.Error(), "tls: ")), fix)
		return nil
	}
	if leaf := pair.Leaf; leaf != nil && now().After(leaf.NotAfter) {
		v.warnAt(section+".certificate", fmt.Sprintf("%s.certificate %q expired on %s", section, certFile, leaf.NotAfter.UTC().Format(time.DateOnly)), "renew it")
	}
	return &pair
}

// signingKey checks that a key can sign tokens (RSA or ECDSA, as docker_auth
// and registries accept).
func (v *validator) signingKey(pair *tls.Certificate, path string) {
	switch pair.PrivateKey.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
	default:
		v.errAt(path, fmt.Sprintf("%s: tokens are signed with RSA or ECDSA keys; this key is %T", path, pair.PrivateKey),
			"make an RSA or ECDSA key (gatehouse certs init does) and name it in token.certificate and token.key")
	}
}
