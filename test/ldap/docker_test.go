//go:build integration

package ldap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// engineHost is the name the Docker engine reaches the registries and the
// auth server by. It is mapped to ::1 only: the engine treats names on
// 127.0.0.0/8 as insecure registries (no TLS verification, plain HTTP
// fallback) but verifies [::1].
const engineHost = "registry.gatehouse-ldap.test"

// seedIssuer is token.issuer in the seed's auth_config.yml (seedAuthConfig).
const seedIssuer = "Auth-Service"

// enginePKI is a CA and a certificate for engineHost it signed, serving TLS
// for the auth server and the registries and signing the tokens.
type enginePKI struct {
	caPEM []byte
	// chainFile is the leaf then the CA (server.certificate); leafFile the
	// leaf only (the registry's rootcertbundle); keyFile its key.
	chainFile, leafFile, keyFile string
}

func newEnginePKI(t *testing.T) *enginePKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("Gatehouse LDAP engine test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := tlsutil.GenerateServer(ca, caKey, []string{engineHost, "localhost"},
		[]net.IP{net.IPv6loopback, net.IPv4(127, 0, 0, 1)}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &enginePKI{caPEM: tlsutil.EncodeCertsPEM(ca),
		chainFile: filepath.Join(dir, "server.crt"), leafFile: filepath.Join(dir, "leaf.crt"),
		keyFile: filepath.Join(dir, "server.key")}
	if err := tlsutil.WriteCertPEM(p.chainFile, leaf, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteCertPEM(p.leafFile, leaf); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(p.keyFile, key); err != nil {
		t.Fatal(err)
	}
	return p
}

// startSeedAuthServer runs `gatehouse auth-server --log-format json` on
// [::1] with the seed's auth_config.yml (LDAPS to l, tls: always,
// insecure_tls_skip_verify, the proxy bind_dn and bind_password_file, the
// posixAccount filter, groups from gidNumber) and the ACL fixed as the
// strict loader asks (fixedACL: Ops "*", DevOps "pull").
func startSeedAuthServer(t *testing.T, l *testenv.LDAP, p *enginePKI) (*testenv.Process, string) {
	t.Helper()
	addr := fmt.Sprintf("[::1]:%d", testenv.FreePortIPv6(t))
	cfg := fmt.Sprintf(seedAuthConfig, addr, p.chainFile, p.keyFile, l.TLSAddr, l.BindDN, l.BindPasswordFile, fixedACL, "")
	cfgFile := filepath.Join(t.TempDir(), "auth_config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := testenv.Start(t, nil, testenv.Gatehouse(t), "auth-server", "--log-format", "json", cfgFile)
	proc.WaitTCP(t, addr)
	_, port, _ := net.SplitHostPort(addr)
	return proc, fmt.Sprintf("https://%s:%s/auth", engineHost, port)
}

// TestDockerEngineLDAPSeedFlow is the seed's whole setup with the real
// Docker engine: users in OpenLDAP (LDAPS), `gatehouse auth-server` on the
// seed's ldap_auth section, a registry trusting its tokens over TLS. An Ops
// user (gidNumber 6000) logs in, pushes and pulls; a DevOps user (7000)
// logs in and pulls but its push is refused; a wrong password fails login.
// It runs against Debian's docker-registry 2.8.2 (the seed's registry) and
// `gatehouse registry serve`.
func TestDockerEngineLDAPSeedFlow(t *testing.T) {
	l := testenv.StartSlapd(t)
	p := newEnginePKI(t)
	testenv.MapHostIPv6Loopback(t, engineHost)
	auth, realm := startSeedAuthServer(t, l, p)
	d := testenv.StartDockerd(t)

	for _, program := range []string{testenv.Registry2, testenv.RegistryGatehouse} {
		t.Run(program, func(t *testing.T) {
			regPort := testenv.FreePortIPv6(t)
			reg := testenv.StartDistribution(t, testenv.DistributionOptions{
				Program: program, Addr: fmt.Sprintf("[::1]:%d", regPort),
				TLSCert: p.chainFile, TLSKey: p.keyFile,
				Token: &testenv.TokenAuth{Realm: realm, Service: "registry.ldap.test", Issuer: seedIssuer, RootCertBundle: p.leafFile},
			})
			hostPort := fmt.Sprintf("%s:%d", engineHost, regPort)
			testenv.TrustRegistryCA(t, hostPort, p.caPEM)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("auth server log:\n%s\nregistry log:\n%s", auth.Log(), reg.Log())
				}
			})
			login := func(user, password string) (string, error) {
				return d.Run(context.Background(), password+"\n", "login", "-u", user, "--password-stdin", hostPort)
			}

			opsRef := hostPort + "/ops/hello:v1"
			im := testenv.NewImage(t, map[string]string{"app/hello.txt": "hello from the LDAP flow through " + program + "\n"})
			archive := filepath.Join(t.TempDir(), "hello.tar")
			im.WriteDockerArchive(t, archive, opsRef)
			d.Docker(t, "", "load", "-i", archive)

			// A wrong password: the directory refuses the bind, login fails.
			out, err := login(testenv.LDAPUserOps, "not-the-password")
			if err == nil {
				t.Fatalf("docker login with a wrong password succeeded:\n%s", out)
			}
			if !strings.Contains(strings.ToLower(out), "unauthorized") {
				t.Errorf("docker login with a wrong password: the error does not say unauthorized:\n%s", out)
			}

			// Ops (gidNumber 6000, ACL "*"): login, push, remove, pull.
			out, err = login(testenv.LDAPUserOps, l.UserPassword)
			if err != nil || !strings.Contains(out, "Login Succeeded") {
				t.Fatalf("docker login as %s: %v\n%s", testenv.LDAPUserOps, err, out)
			}
			out = d.Docker(t, "", "push", opsRef)
			pushed := pushedDigest(t, out)
			d.Docker(t, "", "rmi", opsRef)
			out = d.Docker(t, "", "pull", opsRef)
			if !strings.Contains(out, "Digest: "+pushed) {
				t.Errorf("docker pull as %s did not get the pushed digest %s:\n%s", testenv.LDAPUserOps, pushed, out)
			}
			if !hasTag(reg.Root, "ops/hello", "v1") {
				t.Errorf("registry storage has no tag v1 for ops/hello after the Ops push")
			}
			d.Docker(t, "", "logout", hostPort)

			// DevOps (gidNumber 7000, ACL "pull"): login and pull work, a
			// push (a new tag, and a new repository) is refused.
			out, err = login(testenv.LDAPUserDevOps, l.UserPassword)
			if err != nil || !strings.Contains(out, "Login Succeeded") {
				t.Fatalf("docker login as %s: %v\n%s", testenv.LDAPUserDevOps, err, out)
			}
			d.Docker(t, "", "rmi", opsRef)
			out = d.Docker(t, "", "pull", opsRef)
			if !strings.Contains(out, "Digest: "+pushed) {
				t.Errorf("docker pull as %s did not get the pushed digest %s:\n%s", testenv.LDAPUserDevOps, pushed, out)
			}
			for _, target := range []struct{ repo, tag string }{{"ops/hello", "devops"}, {"devops/hello", "v1"}} {
				ref := hostPort + "/" + target.repo + ":" + target.tag
				d.Docker(t, "", "tag", opsRef, ref)
				out, err := d.Run(context.Background(), "", "push", ref)
				if err == nil {
					t.Errorf("docker push %s as %s (pull only) succeeded:\n%s", ref, testenv.LDAPUserDevOps, out)
				} else if !refusal(out) {
					t.Errorf("docker push %s as %s failed without saying denied, unauthorized or insufficient_scope:\n%s", ref, testenv.LDAPUserDevOps, out)
				}
				if hasTag(reg.Root, target.repo, target.tag) {
					t.Errorf("registry storage has tag %s:%s although the push was refused", target.repo, target.tag)
				}
			}
			// The DevOps tokens came from the auth server (so the refusal
			// is the ACL's, not a broken token flow).
			if !issuedTo(auth, testenv.LDAPUserDevOps) {
				t.Errorf("the auth server log shows no token issued to %s", testenv.LDAPUserDevOps)
			}
			d.Docker(t, "", "logout", hostPort)
		})
	}
}

// pushedDigest returns the manifest digest `docker push` printed.
func pushedDigest(t *testing.T, out string) string {
	t.Helper()
	i := strings.Index(out, "digest: sha256:")
	if i < 0 {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	return strings.Fields(out[i+len("digest: "):])[0]
}

// refusal tells whether a failed push's output names an authorization
// refusal, as the engine words it for a token without push.
func refusal(out string) bool {
	low := strings.ToLower(out)
	for _, w := range []string{"denied", "unauthorized", "insufficient_scope"} {
		if strings.Contains(low, w) {
			return true
		}
	}
	return false
}

// hasTag tells whether the registry's filesystem storage (the layout
// distribution and Gatehouse share) holds repo:tag.
func hasTag(root, repo, tag string) bool {
	_, err := os.Stat(filepath.Join(root, "docker/registry/v2/repositories", repo, "_manifests/tags", tag, "current/link"))
	return err == nil
}

// issuedTo tells whether the auth server's JSON log records a token issued
// to account.
func issuedTo(auth *testenv.Process, account string) bool {
	for line := range strings.SplitSeq(auth.Log(), "\n") {
		var r struct {
			Msg     string `json:"msg"`
			Account string `json:"account"`
			Outcome string `json:"outcome"`
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.Msg == "request" && r.Account == account && r.Outcome == "issued" {
			return true
		}
	}
	return false
}
