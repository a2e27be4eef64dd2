package doctor

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// checkDNS resolves u's host. role is "registry" or "realm".
func (r *run) checkDNS(ctx context.Context, u *url.URL, role string) Result {
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		return ok("%s is an IP address (nothing to resolve)", host)
	}
	addrs, err := r.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		var de *net.DNSError
		switch {
		case errors.As(err, &de) && de.IsNotFound:
			return failf(fmt.Sprintf("check the spelling of %q; if it is a private name, add it to DNS or /etc/hosts on every client%s", host, realmHint(role)),
				"%s host %s does not resolve: no such host", role, host)
		case errors.As(err, &de) && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
			return failf("check the DNS servers in /etc/resolv.conf and that they are reachable",
				"%s host %s: DNS lookup timed out after %s", role, host, r.timeout)
		}
		return failf("check the DNS configuration of this machine", "%s host %s: DNS lookup failed: %v", role, host, err)
	}
	list := make([]string, 0, len(addrs))
	for _, a := range addrs {
		list = append(list, a.String())
	}
	return ok("%s resolves to %s%s", host, strings.Join(list, ", "), proxyNote(u))
}

func realmHint(role string) string {
	if role == "realm" {
		return "; the realm comes from the registry's auth.token.realm, which must be a URL clients can reach"
	}
	return ""
}

// proxyNote says when HTTP requests to u go through a proxy (from the
// HTTP(S)_PROXY environment variables): the DNS and TLS checks here are
// direct, the requests are not.
func proxyNote(u *url.URL) string {
	p, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	if err != nil || p == nil {
		return ""
	}
	return fmt.Sprintf(" (requests go through the proxy %s, from the environment)", p.Redacted())
}

// checkTLS connects to u's host and port and, for https, checks the
// certificate chain against the system roots and --ca-file.
func (r *run) checkTLS(ctx context.Context, u *url.URL, role string) Result {
	addr := u.Host
	host := u.Hostname()
	d := &net.Dialer{Timeout: r.timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return r.dialFailure(role, u, err)
	}
	defer conn.Close() //nolint:errcheck // a probe connection.
	if u.Scheme == "http" {
		return ok("plain HTTP: %s accepts connections; no TLS, so passwords and tokens cross the network unencrypted", addr)
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is verified below, by hand, so that a failure can be
		// explained; no request is sent on this connection.
		InsecureSkipVerify: true, //nolint:gosec // verified explicitly below.
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			return failf(fmt.Sprintf("use http://%s if the %s really serves plain HTTP, or turn TLS on (http.tls in the registry's config.yml, server.certificate in auth_config.yml)", addr, role),
				"%s %s does not speak TLS (the answer looks like plain HTTP)", role, addr)
		}
		return failf(fmt.Sprintf("check the %s's TLS settings (minimum version, ciphers) and its log", role),
			"TLS handshake with %s %s failed: %v", role, addr, err)
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return failf("check the server's certificate configuration", "%s %s sent no certificate", role, addr)
	}
	leaf := st.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	now := r.now()
	chains, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: r.pool, Intermediates: inter, CurrentTime: now})
	if err != nil {
		return r.tlsFailure(role, u, st.PeerCertificates, err)
	}
	root := chains[0][len(chains[0])-1]
	detail := fmt.Sprintf("%s, certificate for %s issued by %s, valid until %s; chain verified up to %s",
		tls.VersionName(st.Version), certNames(leaf), name(leaf.Issuer.String()),
		leaf.NotAfter.UTC().Format(time.DateOnly), name(root.Subject.String()))
	if left := leaf.NotAfter.Sub(now); left < 30*24*time.Hour {
		detail += fmt.Sprintf(" (expires in %s: renew it soon)", roundDur(left))
	}
	return ok("%s", detail)
}

func (r *run) dialFailure(role string, u *url.URL, err error) Result {
	addr := u.Host
	what := "the registry"
	if role == "realm" {
		what = "the auth server"
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		if role == "realm" {
			return failf("is the auth server running, and is the realm URL in the registry's config (auth.token.realm) the one clients can reach?",
				"connection refused to realm %s", u.Redacted())
		}
		return failf(fmt.Sprintf("is %s running and listening on %s (http.addr in config.yml)? Is the port published (docker run -p)?", what, addr),
			"connection refused to %s %s", role, addr)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return failf(fmt.Sprintf("a firewall may drop the packets, or %s is not the address %s listens on", addr, what),
			"connecting to %s %s timed out after %s", role, addr, r.timeout)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return failf("check the routes and firewall between this machine and "+addr, "%s %s is unreachable: %v", role, addr, err)
	}
	return failf(fmt.Sprintf("check that %s listens on %s", what, addr), "cannot connect to %s %s: %v", role, addr, err)
}

// tlsFailure explains why the presented chain did not verify.
func (r *run) tlsFailure(role string, u *url.URL, chain []*x509.Certificate, err error) Result {
	leaf := chain[0]
	host := u.Hostname()
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &he):
		return failf(fmt.Sprintf("connect with one of the certificate's names, or issue a certificate that has %s (gatehouse certs init --host NAME / --ip IP)", host),
			"certificate name mismatch: %s %s presents a certificate for %s, not %s", role, u.Host, certNames(leaf), host)
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		c := ci.Cert
		if c == nil {
			c = leaf
		}
		now := r.now()
		what := "has expired"
		if now.Before(c.NotBefore) {
			what = "is not yet valid"
		}
		return failf("renew the certificate (gatehouse certs init --force), or if the dates look right, set this machine's clock (NTP)",
			"certificate %s %s: valid from %s to %s, and this machine's clock says %s",
			name(c.Subject.String()), what, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case errors.As(err, &ua):
		top := chain[len(chain)-1]
		detail := fmt.Sprintf("certificate signed by unknown authority: %s %s presents %s issued by %s",
			role, u.Host, name(leaf.Subject.String()), name(leaf.Issuer.String()))
		if len(chain) > 1 {
			detail += fmt.Sprintf("; the chain it sends ends at %s issued by %s", name(top.Subject.String()), name(top.Issuer.String()))
		}
		issuer := name(top.Issuer.String())
		fix := fmt.Sprintf("trust the CA %s: pass --ca-file with its certificate (the ca.crt that gatehouse certs init wrote)", issuer)
		if isSelfSigned(top) {
			sum := sha256.Sum256(top.Raw)
			fix = fmt.Sprintf("trust the CA %s (SHA-256 fingerprint %s): pass --ca-file with its certificate (the ca.crt that gatehouse certs init wrote)",
				name(top.Subject.String()), hex.EncodeToString(sum[:]))
		}
		if r.opts.CAFile != "" {
			have := make([]string, 0, len(r.caCerts))
			for _, c := range r.caCerts {
				have = append(have, name(c.Subject.String()))
			}
			detail += fmt.Sprintf("; --ca-file %s holds %s, which did not issue it", r.opts.CAFile, strings.Join(have, ", "))
			fix = strings.Replace(fix, "pass --ca-file with", "give --ca-file", 1)
		} else {
			detail += "; no --ca-file was given, so only the system's CAs were tried"
		}
		fix += fmt.Sprintf("; Docker clients read it from /etc/docker/certs.d/%s/ca.crt, other clients from the system store", u.Host)
		return failf(fix, "%s", detail)
	}
	return failf("check the certificate chain the server sends (leaf first, then intermediates)",
		"%s %s: certificate does not verify: %v", role, u.Host, err)
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.Subject.String() == c.Issuer.String() && c.CheckSignatureFrom(c) == nil
}

// certNames lists a certificate's DNS and IP names, or its common name when
// it has none.
func certNames(c *x509.Certificate) string {
	var n []string
	n = append(n, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		n = append(n, ip.String())
	}
	if len(n) == 0 {
		return fmt.Sprintf("no names (common name %q only, which clients ignore)", c.Subject.CommonName)
	}
	return strings.Join(n, ", ")
}

// name quotes a distinguished name for a message.
func name(dn string) string {
	if dn == "" {
		return `""`
	}
	return `"` + dn + `"`
}

// newClient returns the HTTP client the request checks use: verified TLS
// against pool, proxies from the environment, and a time limit on every
// stage. It never follows a redirect to another host.
func newClient(pool *x509.CertPool, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
			TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			DisableKeepAlives:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Host != via[0].URL.Host {
				return fmt.Errorf("refusing to follow a redirect to another host (%s)", req.URL.Host)
			}
			return nil
		},
	}
}

func roundDur(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}
