package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // {SSHA} is the scheme slapd understands out of the box; test data only
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Accounts in the directory StartSlapd seeds. All have password
// LDAP.UserPassword.
const (
	// LDAPUserOps is a posixAccount with gidNumber 6000, member of the ops groups.
	LDAPUserOps = "usera"
	// LDAPUserDevOps is a posixAccount with gidNumber 7000, member of the devops groups.
	LDAPUserDevOps = "userb"
	// LDAPUserNoGroup is a posixAccount with gidNumber 9999, in no group.
	LDAPUserNoGroup = "userc"
	// LDAPUserNotPosix is an inetOrgPerson only: the posixAccount filter must not find it.
	LDAPUserNotPosix = "userd"
	// LDAPUserTwin exists twice (ou=people and ou=contractors): a uid
	// filter finds two entries.
	LDAPUserTwin = "twin"
	// LDAPUserUnicode has a non-ASCII uid (gidNumber 6000), to check that
	// filter escaping keeps UTF-8 names working.
	LDAPUserUnicode = "jürgen"
)

// LDAP is an OpenLDAP slapd started for a test, with a directory shaped
// like the seed's: suffix dc=domain,dc=com, a read-only proxy account,
// users under o=company1.com, posixGroup and groupOfNames groups and the
// memberOf overlay. Access: the proxy reads everything, a user reads their
// own entry and may search (for initial_bind_as_user), anonymous may only
// bind.
type LDAP struct {
	// Addr and TLSAddr are host:port of the plain (StartTLS-capable) and the LDAPS listener.
	Addr, TLSAddr string
	// URL and TLSURL are the same as ldap:// and ldaps:// URLs.
	URL, TLSURL string
	// CAFile is the PEM CA that signed the server certificate
	// (SAN localhost and 127.0.0.1).
	CAFile string
	// BindDN, BindPassword and BindPasswordFile are the proxy service account.
	BindDN, BindPassword, BindPasswordFile string
	// AdminDN and AdminPassword are the rootdn.
	AdminDN, AdminPassword string
	// Base is where users live; Filter is the seed's posixAccount filter.
	Base, Filter string
	// GroupsBase holds groupOfNames groups (member: DN); PosixGroupsBase
	// holds posixGroup groups (memberUid: uid).
	GroupsBase, PosixGroupsBase string
	// UserPassword is every user's password.
	UserPassword string
	// Dir holds the configuration, certificates, database and seed LDIF.
	Dir string

	t     testing.TB
	slapd string
	args  []string
	proc  *Process
}

// StartSlapd starts slapd on two free 127.0.0.1 ports (LDAP and LDAPS),
// seeds the directory and stops it when the test ends.
func StartSlapd(t testing.TB) *LDAP {
	t.Helper()
	slapd := Tool(t, "slapd")
	slaptest := Tool(t, "slaptest")
	ldapadd := Tool(t, "ldapadd")

	const suffix = "dc=domain,dc=com"
	l := &LDAP{
		AdminDN:       "cn=admin," + suffix,
		AdminPassword: "adminpw",
		BindDN:        "cn=proxy,ou=profile," + suffix,
		BindPassword:  "proxypw",
		Base:          "o=company1.com," + suffix,
		Filter:        "(&(uid=${account})(objectClass=posixAccount))",
		UserPassword:  "password",
		Dir:           t.TempDir(),
		t:             t,
		slapd:         slapd,
	}
	l.GroupsBase = "ou=groups," + l.Base
	l.PosixGroupsBase = "ou=posixgroups," + l.Base
	l.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	l.TLSAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	l.URL = "ldap://" + l.Addr
	l.TLSURL = "ldaps://" + l.TLSAddr

	certDir := filepath.Join(l.Dir, "certs")
	dbDir := filepath.Join(l.Dir, "db")
	for _, d := range []string{certDir, dbDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l.CAFile = filepath.Join(certDir, "ca.crt")
	serverCert, serverKey := filepath.Join(certDir, "server.crt"), filepath.Join(certDir, "server.key")
	if err := writeTestCA(l.CAFile, serverCert, serverKey); err != nil {
		t.Fatalf("slapd certificates: %v", err)
	}
	l.BindPasswordFile = filepath.Join(l.Dir, "bind_password")
	writeFile(t, l.BindPasswordFile, l.BindPassword+"\n")

	conf := filepath.Join(l.Dir, "slapd.conf")
	writeFile(t, conf, l.slapdConf(certDir, dbDir))
	MustRun(t, nil, slaptest, "-u", "-f", conf)

	l.args = []string{"-d", "stats", "-f", conf, "-h", l.URL + "/ " + l.TLSURL + "/"}
	l.start()

	seed := filepath.Join(l.Dir, "seed.ldif")
	writeFile(t, seed, l.seedLDIF())
	// Over LDAP rather than slapadd: the memberof overlay fills memberOf
	// only for writes it sees.
	MustRun(t, nil, ldapadd, "-x", "-H", l.URL, "-D", l.AdminDN, "-w", l.AdminPassword, "-f", seed)
	return l
}

func (l *LDAP) start() {
	l.t.Helper()
	l.proc = Start(l.t, nil, l.slapd, l.args...)
	p := l.proc
	// A paused slapd ignores SIGTERM: resume it before it is stopped.
	l.t.Cleanup(func() { _ = p.Signal(syscall.SIGCONT) })
	p.WaitTCP(l.t, l.Addr)
	p.WaitTCP(l.t, l.TLSAddr)
}

// Stop stops slapd (the data stays for Restart).
func (l *LDAP) Stop() {
	_ = l.proc.Signal(syscall.SIGCONT)
	l.proc.Stop()
}

// Restart stops slapd if it runs and starts it again on the same ports
// with the same data.
func (l *LDAP) Restart() {
	l.t.Helper()
	l.Stop()
	l.start()
}

// Pause freezes slapd (SIGSTOP): connections are still accepted by the
// kernel but nothing answers, which is how a hung directory looks.
func (l *LDAP) Pause() {
	l.t.Helper()
	if err := l.proc.Signal(syscall.SIGSTOP); err != nil {
		l.t.Fatalf("pause slapd: %v", err)
	}
	// The signal is delivered asynchronously: a request sent at once could
	// still be answered. Wait until the kernel reports it stopped.
	stat := fmt.Sprintf("/proc/%d/stat", l.proc.Cmd.Process.Pid)
	Eventually(l.t, 10*time.Second, "slapd to be stopped", func() bool {
		b, err := os.ReadFile(stat)
		if err != nil {
			return false
		}
		// The state follows the command name in parentheses.
		_, rest, ok := strings.Cut(string(b), ") ")
		return ok && (strings.HasPrefix(rest, "T") || strings.HasPrefix(rest, "t"))
	})
}

// Resume undoes Pause.
func (l *LDAP) Resume() {
	l.t.Helper()
	if err := l.proc.Signal(syscall.SIGCONT); err != nil {
		l.t.Fatalf("resume slapd: %v", err)
	}
}

// Log returns slapd's log so far.
func (l *LDAP) Log() string { return l.proc.Log() }

// UserDN returns the DN of a user under ou=people.
func (l *LDAP) UserDN(uid string) string { return "uid=" + uid + ",ou=people," + l.Base }

func (l *LDAP) slapdConf(certDir, dbDir string) string {
	return fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema

modulepath /usr/lib/ldap
moduleload back_mdb.la
moduleload memberof.la

pidfile  %[1]s/slapd.pid
argsfile %[1]s/slapd.args

TLSCACertificateFile  %[2]s/ca.crt
TLSCertificateFile    %[2]s/server.crt
TLSCertificateKeyFile %[2]s/server.key

database mdb
maxsize  104857600
suffix   "dc=domain,dc=com"
rootdn   "%[3]s"
rootpw   %[4]s
directory %[5]s
index objectClass eq
index uid eq
index member eq
index memberUid eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="%[6]s" read
  by self read
  by users search
  by * none
`, l.Dir, certDir, l.AdminDN, ssha(l.AdminPassword), dbDir, l.BindDN)
}

func (l *LDAP) seedLDIF() string {
	var b strings.Builder
	entry := func(dn string, lines ...string) {
		if isASCII(dn) {
			fmt.Fprintf(&b, "dn: %s\n", dn)
		} else {
			fmt.Fprintf(&b, "dn:: %s\n", base64.StdEncoding.EncodeToString([]byte(dn)))
		}
		for _, line := range lines {
			k, v, _ := strings.Cut(line, ": ")
			if isASCII(v) {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			} else {
				fmt.Fprintf(&b, "%s:: %s\n", k, base64.StdEncoding.EncodeToString([]byte(v)))
			}
		}
		b.WriteString("\n")
	}
	userPW := "userPassword: " + ssha(l.UserPassword)
	entry("dc=domain,dc=com", "objectClass: dcObject", "objectClass: organization", "dc: domain", "o: domain.com")
	entry("ou=profile,dc=domain,dc=com", "objectClass: organizationalUnit", "ou: profile")
	entry(l.BindDN, "objectClass: person", "cn: proxy", "sn: proxy", "userPassword: "+ssha(l.BindPassword))
	entry(l.Base, "objectClass: organization", "o: company1.com")
	for _, ou := range []string{"people", "contractors", "groups", "posixgroups"} {
		entry("ou="+ou+","+l.Base, "objectClass: organizationalUnit", "ou: "+ou)
	}
	posix := func(dn, uid string, uidNumber, gid int) {
		mail := uid
		if !isASCII(uid) {
			mail = fmt.Sprintf("user%d", uidNumber) // mail is IA5 (ASCII)
		}
		entry(dn, "objectClass: inetOrgPerson", "objectClass: posixAccount",
			"uid: "+uid, "cn: "+uid, "sn: "+uid, "mail: "+mail+"@company1.com",
			fmt.Sprintf("uidNumber: %d", uidNumber), fmt.Sprintf("gidNumber: %d", gid),
			"homeDirectory: /home/"+mail, "loginShell: /bin/bash", userPW)
	}
	posix(l.UserDN(LDAPUserOps), LDAPUserOps, 1001, 6000)
	posix(l.UserDN(LDAPUserDevOps), LDAPUserDevOps, 1002, 7000)
	posix(l.UserDN(LDAPUserNoGroup), LDAPUserNoGroup, 1003, 9999)
	entry(l.UserDN(LDAPUserNotPosix), "objectClass: inetOrgPerson", "uid: "+LDAPUserNotPosix,
		"cn: "+LDAPUserNotPosix, "sn: "+LDAPUserNotPosix, userPW)
	posix(l.UserDN(LDAPUserTwin), LDAPUserTwin, 1005, 7000)
	posix("uid="+LDAPUserTwin+",ou=contractors,"+l.Base, LDAPUserTwin, 1006, 7000)
	posix(l.UserDN(LDAPUserUnicode), LDAPUserUnicode, 1007, 6000)

	entry("cn=ops,"+l.GroupsBase, "objectClass: groupOfNames", "cn: ops", "description: Ops (gidNumber 6000)",
		"member: "+l.UserDN(LDAPUserOps), "member: "+l.UserDN(LDAPUserUnicode))
	entry("cn=devops,"+l.GroupsBase, "objectClass: groupOfNames", "cn: devops", "description: DevOps (gidNumber 7000)",
		"member: "+l.UserDN(LDAPUserDevOps))
	entry("cn=ops,"+l.PosixGroupsBase, "objectClass: posixGroup", "cn: ops", "gidNumber: 6000",
		"memberUid: "+LDAPUserOps) // memberUid is IA5: no LDAPUserUnicode
	entry("cn=devops,"+l.PosixGroupsBase, "objectClass: posixGroup", "cn: devops", "gidNumber: 7000",
		"memberUid: "+LDAPUserDevOps)
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ssha hashes a password in slapd's {SSHA} scheme.
func ssha(password string) string {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	h := sha1.New() //nolint:gosec // see the import
	h.Write([]byte(password))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeTestCA makes a CA and a certificate for localhost and 127.0.0.1
// signed by it, usable by a TLS server and by a client presenting it, and
// writes them as PEM.
func writeTestCA(caFile, certFile, keyFile string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Gatehouse test LDAP CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	files := []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}}
	for _, f := range files {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return err
		}
	}
	return nil
}
