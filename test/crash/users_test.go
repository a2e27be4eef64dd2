//go:build integration

package crash

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/testenv"
	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// TestUsersKilledMidEdit SIGKILLs `gatehouse users add` at random moments
// (reading the password, hashing, writing the new file, renaming it) on
// one auth_config.yml. After every kill the file passes `config check`
// and holds exactly the users it had before, or those plus the new one
// with its password; the next edit succeeds and leaves no new file of a
// killed edit behind.
func TestUsersKilledMidEdit(t *testing.T) {
	rng := rand.New(rand.NewPCG(crashSeed(t), 11))
	bin := testenv.Gatehouse(t)
	dir := t.TempDir()
	ca, caKey, err := tlsutil.GenerateCA("Test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.GenerateServer(ca, caKey, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, kf := filepath.Join(dir, "token.crt"), filepath.Join(dir, "token.key")
	if err := tlsutil.WriteCertPEM(crt, cert, ca); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteKeyPEM(kf, key); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("admin-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "auth_config.yml")
	cfg := fmt.Sprintf(`# Users are added by the test.
server:
  addr: "127.0.0.1:5001"
token:
  issuer: "Test"
  expiration: 900
  certificate: %s
  key: %s
users:
  admin:
    password: %q
acl:
  - match: {account: "/.+/"}
    actions: ["*"]
`, crt, kf, hash)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	users := []string{"admin"}
	var completed, interrupted int
	for i := range 40 {
		name := fmt.Sprintf("user%02d", i)
		cmd := exec.Command(bin, "users", "add", "--config", file, name)
		cmd.Stdin = strings.NewReader("pw-" + name + "\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The random moment of the kill is the point of this test: a
		// bcrypt hash at cost 10 takes tens of milliseconds, so the range
		// covers the whole command.
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait() // killed, or finished before the kill
		if out, err := testenv.Run(t.Context(), nil, bin, "config", "check", file); err != nil {
			t.Fatalf("after killing `users add %s`: config check fails: %v\n%s", name, err, out)
		}
		got := listUsers(t, bin, file)
		switch {
		case slices.Equal(got, users):
			interrupted++
		case slices.Equal(got, append(slices.Clone(users), name)):
			completed++
			users = got
			checkPassword(t, file, name)
		default:
			t.Fatalf("after killing `users add %s`: users %q, want %q with or without %s (stderr: %s)", name, got, users, name, stderr.String())
		}
	}
	t.Logf("40 kills: %d edits had landed, %d had not", completed, interrupted)
	if completed == 0 || interrupted == 0 {
		t.Fatalf("the kills never landed on one side of the rename (%d landed, %d not): the test did not test", completed, interrupted)
	}

	// The next edit runs normally and clears what killed edits left.
	testenv.MustRun(t, nil, bin, "users", "remove", "--config", file, "admin")
	if got := listUsers(t, bin, file); slices.Contains(got, "admin") || len(got) != len(users)-1 {
		t.Fatalf("users after removing admin: %q", got)
	}
	left, err := filepath.Glob(filepath.Join(dir, ".auth_config.yml.tmp-*"))
	if err != nil || len(left) != 0 {
		t.Errorf("files of killed edits left beside the config: %q (%v)", left, err)
	}
}

// listUsers returns the names `gatehouse users list` prints.
func listUsers(t *testing.T, bin, file string) []string {
	t.Helper()
	var names []string
	for l := range strings.Lines(testenv.MustRun(t, nil, bin, "users", "list", "--config", file)) {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// checkPassword fails the test unless name's hash in file matches the
// password the test gave it.
func checkPassword(t *testing.T, file, name string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "  "+name+":\n")
	if !ok {
		t.Fatalf("%s is not in the file:\n%s", name, data)
	}
	_, rest, _ = strings.Cut(rest, `password: "`)
	h, _, _ := strings.Cut(rest, `"`)
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("pw-"+name)) != nil {
		t.Errorf("%s's hash %q does not match its password", name, h)
	}
}
