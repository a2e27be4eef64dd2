package cli

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-registry/gatehouse/internal/tlsutil"
)

// Hashes in the sample configs (cost 10, passwords "a-pw" and "b-pw").
var (
	hashA = mustHash("a-pw")
	hashB = mustHash("b-pw")
)

func mustHash(pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}

// usersSample is an auth_config.yml with comments, blank lines, mixed
// quoting and indentation around its users.
const usersSample = `# Gatehouse test config.
server:
  addr: ":5001"

token:  # tokens
  issuer: "Test"
  expiration: 900
  certificate: CERT
  key: KEY

users:
  # Anonymous pulls.
  "": {}
  # Alice from accounting.
  alice:
    password: "HASH_A"   # set in 2024
    labels:
      groups: [dev, ops]

  bob:
      password: 'HASH_B'
# The ACL follows.
acl:
  - match: {account: "/.+/"}
    actions: ["*"]
`

const usersFlowSample = `server: {addr: ":5001"}
token: {issuer: "Test", expiration: 900, certificate: CERT, key: KEY}
users: {"": {}, alice: {password: "HASH_A"}}  # flow style
acl: [{match: {account: "/.+/"}, actions: ["*"]}]
`

const usersNoneSample = `server:
  addr: ":5001"
token:
  issuer: "Test"
  expiration: 900
  certificate: CERT
  key: KEY
ext_auth:
  command: /bin/true
acl:
  - match: {account: "/.+/"}
    actions: ["*"]`

// usersFiles writes a token key pair and returns a function that writes
// a sample config (CERT, KEY, HASH_A and HASH_B filled in) with mode 0640.
func usersFiles(t *testing.T) (dir string, write func(sample string) string, fill func(string) string) {
	t.Helper()
	dir = t.TempDir()
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
	fill = strings.NewReplacer("CERT", crt, "KEY", kf, "HASH_A", hashA, "HASH_B", hashB).Replace
	write = func(sample string) string {
		file := filepath.Join(dir, "auth_config.yml")
		if err := os.WriteFile(file, []byte(fill(sample)), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, 0o640); err != nil {
			t.Fatal(err)
		}
		return file
	}
	return dir, write, fill
}

var newHashRe = regexp.MustCompile(`\$2a\$1[0-4]\$[./A-Za-z0-9]{53}`)

func TestUsersEdit(t *testing.T) {
	tests := []struct {
		name   string
		sample string
		args   []string
		stdin  string
		// want is the file afterwards, NEWHASH standing for the hash of
		// stdin's password.
		want string
	}{
		{"add after the last user", usersSample, []string{"add", "carol"}, "c-pw\n",
			strings.Replace(usersSample, "      password: 'HASH_B'\n", "      password: 'HASH_B'\n  carol:\n      password: \"NEWHASH\"\n", 1)},
		{"add a name that needs quotes", usersSample, []string{"add", "true"}, "c-pw\n",
			strings.Replace(usersSample, "      password: 'HASH_B'\n", "      password: 'HASH_B'\n  \"true\":\n      password: \"NEWHASH\"\n", 1)},
		{"passwd keeps double quotes and the comment", usersSample, []string{"passwd", "alice"}, "new-pw\n",
			strings.Replace(usersSample, `password: "HASH_A"   # set in 2024`, `password: "NEWHASH"   # set in 2024`, 1)},
		{"passwd keeps single quotes", usersSample, []string{"passwd", "bob"}, "new-pw\n",
			strings.Replace(usersSample, `password: 'HASH_B'`, `password: 'NEWHASH'`, 1)},
		{"passwd repairs a password that is not a hash", strings.Replace(usersSample, `'HASH_B'`, `'plain text'`, 1), []string{"passwd", "bob"}, "new-pw\n",
			strings.Replace(usersSample, `password: 'HASH_B'`, `password: 'NEWHASH'`, 1)},
		{"remove takes the user's comment along", usersSample, []string{"remove", "alice"}, "",
			strings.Replace(usersSample, "  # Alice from accounting.\n  alice:\n    password: \"HASH_A\"   # set in 2024\n    labels:\n      groups: [dev, ops]\n", "", 1)},
		{"remove the last user", usersSample, []string{"remove", "bob"}, "",
			strings.Replace(usersSample, "  bob:\n      password: 'HASH_B'\n", "", 1)},
		{"remove the anonymous user", usersSample, []string{"remove", ""}, "",
			strings.Replace(usersSample, "  # Anonymous pulls.\n  \"\": {}\n", "", 1)},
		{"add in flow style", usersFlowSample, []string{"add", "carol"}, "c-pw\n",
			strings.Replace(usersFlowSample, `alice: {password: "HASH_A"}}`, `alice: {password: "HASH_A"}, carol: {password: "NEWHASH"}}`, 1)},
		{"passwd in flow style", usersFlowSample, []string{"passwd", "alice"}, "new-pw\n",
			strings.Replace(usersFlowSample, `"HASH_A"`, `"NEWHASH"`, 1)},
		{"add creates the users section", usersNoneSample, []string{"add", "carol"}, "c-pw\n",
			usersNoneSample + "\nusers:\n  carol:\n    password: \"NEWHASH\"\n"},
		{"CRLF line endings stay", strings.ReplaceAll(usersSample, "\n", "\r\n"), []string{"add", "carol"}, "c-pw\n",
			strings.ReplaceAll(strings.Replace(usersSample, "      password: 'HASH_B'\n", "      password: 'HASH_B'\n  carol:\n      password: \"NEWHASH\"\n", 1), "\n", "\r\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, write, fill := usersFiles(t)
			file := write(tc.sample)
			args := append([]string{"users", tc.args[0], "--config", file}, tc.args[1:]...)
			code, out, errOut := runMain(t, tc.stdin, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := string(data)
			if pw := strings.TrimSpace(tc.stdin); pw != "" {
				var newHash string
				for _, h := range newHashRe.FindAllString(got, -1) {
					if h != hashA && h != hashB {
						newHash = h
					}
				}
				if bcrypt.CompareHashAndPassword([]byte(newHash), []byte(pw)) != nil {
					t.Fatalf("no hash of the new password in:\n%s", got)
				}
				got = strings.Replace(got, newHash, "NEWHASH", 1)
			}
			if diff := cmp.Diff(fill(tc.want), got); diff != "" {
				t.Errorf("file (-want +got):\n%s", diff)
			}
			if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o640 {
				t.Errorf("mode %v (%v), want 0640", st.Mode().Perm(), err)
			}
			if strings.Contains(errOut, "$2") {
				t.Errorf("stderr shows a hash: %q", errOut)
			}
			if code, out, _ := runMain(t, "", "config", "check", file); code != 0 {
				t.Errorf("config check of the result: exit %d\n%s", code, out)
			}
			entries, _ := os.ReadDir(filepath.Dir(file))
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func TestUsersEditRefused(t *testing.T) {
	tests := []struct {
		name     string
		sample   string
		args     []string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"add an existing user", usersSample, []string{"add", "alice"}, "pw\n", 1, "already exists"},
		{"passwd of a missing user", usersSample, []string{"passwd", "carol"}, "pw\n", 1, "no user carol"},
		{"passwd of the anonymous user", usersSample, []string{"passwd", ""}, "pw\n", 1, "anonymous"},
		{"remove a missing user", usersSample, []string{"remove", "carol"}, "", 1, "no user carol"},
		{"case matters", usersSample, []string{"remove", "Alice"}, "", 1, "no user Alice"},
		{"remove in flow style", usersFlowSample, []string{"remove", "alice"}, "", 1, "flow style"},
		{"name with a space", usersSample, []string{"add", "carol smith"}, "pw\n", 2, "white space"},
		{"name with a leading space", usersSample, []string{"add", " carol"}, "pw\n", 2, "white space"},
		{"name with a control character", usersSample, []string{"add", "car\x01ol"}, "pw\n", 2, "control character"},
		{"name with a colon", usersSample, []string{"add", "carol:x"}, "pw\n", 2, "colon"},
		{"anonymous user", usersSample, []string{"add", ""}, "pw\n", 2, "by hand"},
		{"empty password", usersSample, []string{"add", "carol"}, "\n", 1, "password is empty"},
		{"no password", usersSample, []string{"add", "carol"}, "", 1, "no password"},
		{"password too long", usersSample, []string{"add", "carol"}, strings.Repeat("x", 73) + "\n", 1, "72 bytes"},
		{"file with problems", strings.Replace(usersSample, "expiration: 900", "expiration: -1", 1), []string{"add", "carol"}, "pw\n", 1, "problems this edit does not fix"},
		{"no --config", "", []string{"add", "carol"}, "pw\n", 2, "--config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, write, _ := usersFiles(t)
			args := []string{"users", tc.args[0]}
			var file string
			var before []byte
			if tc.sample != "" {
				file = write(tc.sample)
				before, _ = os.ReadFile(file)
				args = append(args, "--config", file)
			}
			args = append(args, tc.args[1:]...)
			code, _, errOut := runMain(t, tc.stdin, args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
			if file != "" {
				after, _ := os.ReadFile(file)
				if string(after) != string(before) {
					t.Error("the file changed")
				}
			}
			if strings.Contains(errOut, "$2") {
				t.Errorf("stderr shows a hash: %q", errOut)
			}
		})
	}
}

func TestUsersList(t *testing.T) {
	_, write, _ := usersFiles(t)
	file := write(usersSample)
	code, out, errOut := runMain(t, "", "users", "list", "--config", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "\"\" (anonymous)\nalice  groups=dev,ops\nbob\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if strings.Contains(out+errOut, "$2") {
		t.Error("list shows a hash")
	}
}

// TestUsersEditRemovesKilledEditsLeftovers: the new file of an edit that
// was killed before its rename (it holds password hashes) is removed by
// the next edit, which holds the lock; other files beside it stay.
func TestUsersEditRemovesKilledEditsLeftovers(t *testing.T) {
	dir, write, _ := usersFiles(t)
	file := write(usersSample)
	stale := filepath.Join(dir, ".auth_config.yml.tmp-123456")
	other := filepath.Join(dir, ".other.yml.tmp-123456")
	for _, f := range []string{stale, other} {
		if err := os.WriteFile(f, []byte("users: {x: {password: \"$2a$10$...\"}}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := runMain(t, "c-pw\n", "users", "add", "--config", file, "carol"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the killed edit's file %s is still there (%v)", stale, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file of another config was removed: %v", err)
	}
}
