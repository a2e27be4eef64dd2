// Package docs runs the commands the documentation tells a user to type.
// Every page (README.md and docs/*.md) follows one rule for its fenced
// blocks: each has a language (sh for commands, console for a command
// with its output, text for output or other plain text, yaml, ini, json
// or go for files), and each sh or console block is marked by an HTML
// comment on the line before it:
//
//   - `<!-- tested: NAME -->`: the integration test (docs_test.go) runs it
//     against real Gatehouse processes, with only ports, host names and
//     the placeholders it names replaced;
//   - `<!-- tested in: DIR -->`: the tests in DIR read the page and run its
//     commands (test/packaging for docs/deploy.md);
//   - `<!-- untested: REASON -->`: deliberately not run, such as `make test`.
//
// A text block marked `<!-- output: NAME -->` is the output the page
// shows for block NAME; the test compares it with what NAME printed.
//
// This file checks the markers without running anything: the tested
// blocks are exactly those listed in pages, so neither the pages nor the
// test can change without the other.
package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// pages lists every page with the names of its tested blocks in page
// order; a page without tested blocks is listed with none.
var pages = map[string][]string{
	"README.md":               {"readme-run", "readme-push-pull"},
	"docs/README.md":          nil,
	"docs/acl.md":             {"acl-check"},
	"docs/auth-config.md":     {"auth-config-check"},
	"docs/auth-server.md":     {"users-add"},
	"docs/certificates.md":    {"certs-init", "certs-seed", "certs-verify"},
	"docs/compatibility.md":   nil,
	"docs/deploy.md":          nil,
	"docs/development.md":     nil,
	"docs/doctor.md":          {"doctor-sample"},
	"docs/ha.md":              nil,
	"docs/ldap.md":            nil,
	"docs/migration.md":       {"migration-check", "migration-acl", "migration-auth-server", "migration-registry"},
	"docs/notifications.md":   nil,
	"docs/performance.md":     nil,
	"docs/proxy.md":           nil,
	"docs/registry-config.md": nil,
	"docs/security.md":        nil,
	"docs/storage.md":         nil,
	"docs/tokens.md":          nil,
	"docs/troubleshooting.md": {"troubleshooting-acl-check"},
	"docs/serve.md": {
		"serve-first-start",
		"serve-docker", "serve-crane", "serve-skopeo", "serve-podman", "serve-oras", "serve-regctl", "serve-token",
		"serve-helm", "serve-cosign", "serve-remote-start", "serve-remote-docker",
	},
}

// Markers other than tested: NAME.
const (
	untested  = "\x00untested"
	testedIn  = "\x00tested in "
	outputFor = "\x00output for "
)

// Languages a block may have. sh and console hold commands and need a
// marker; the others must not have one (except output on text).
var languages = map[string]bool{
	"sh": true, "console": true, "text": true, "yaml": true, "ini": true, "json": true, "go": true,
}

// block is a marked fenced block.
type block struct {
	page   string
	name   string
	lang   string
	line   int // of the opening fence
	text   string
	output string // the text of the block marked <!-- output: NAME -->, if any
	in     string // for <!-- tested in: DIR -->
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// docPages returns README.md and every page under docs/.
func docPages(t testing.TB) []string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(repoRoot(), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, f := range found {
		out = append(out, "docs/"+filepath.Base(f))
	}
	return out
}

// parseBlocks returns the tested and tested-in blocks of a page, their
// output blocks attached, and an error for a block without a language, an
// sh or console block without a marker, a marker not followed by a block
// it fits, or an unterminated fence.
func parseBlocks(page string, data []byte) ([]block, error) {
	var (
		out     []block
		pending string // a marker waiting for its block
		problem []string
	)
	find := func(name string) *block {
		for i := range out {
			if out[i].name == name {
				return &out[i]
			}
		}
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		trimmed := strings.TrimSpace(sc.Text())
		if marker, ok := strings.CutPrefix(trimmed, "<!--"); ok && pending == "" {
			kind, value, _ := strings.Cut(strings.TrimSpace(strings.TrimSuffix(marker, "-->")), ":")
			value = strings.TrimSpace(value)
			switch kind {
			case "tested":
				pending = value
			case "untested":
				pending = untested
			case "tested in":
				pending = testedIn + value
			case "output":
				pending = outputFor + value
			}
			if pending != "" && value == "" {
				problem = append(problem, fmt.Sprintf("%s:%d: <!-- %s: --> needs a value", page, n, kind))
			}
			if pending != "" {
				continue
			}
		}
		// A backtick in the info string makes the line inline code, not a
		// fence (CommonMark).
		if !strings.HasPrefix(trimmed, "```") || strings.Contains(strings.TrimLeft(trimmed, "`"), "`") {
			if pending != "" && trimmed != "" {
				problem = append(problem, fmt.Sprintf("%s:%d: marker %q is not followed by a block", page, n, strings.TrimPrefix(pending, "\x00")))
				pending = ""
			}
			continue
		}
		lang := strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))
		start := n
		var body strings.Builder
		closed := false
		for sc.Scan() {
			n++
			if strings.TrimSpace(sc.Text()) == "```" {
				closed = true
				break
			}
			body.WriteString(sc.Text() + "\n")
		}
		if !closed {
			problem = append(problem, fmt.Sprintf("%s:%d: unterminated block", page, start))
			break
		}
		command := lang == "sh" || lang == "console"
		switch {
		case lang == "":
			problem = append(problem, fmt.Sprintf("%s:%d: a block without a language: sh for commands (marked tested or untested), text for output, yaml, ini, json or go for files", page, start))
		case !languages[lang]:
			problem = append(problem, fmt.Sprintf("%s:%d: a ```%s block: use sh, console, text, yaml, ini, json or go", page, start, lang))
		case command && pending == "":
			problem = append(problem, fmt.Sprintf("%s:%d: a ```%s block without <!-- tested: NAME --> or <!-- untested: REASON --> on the line before: mark it and add it to the test", page, start, lang))
		case strings.HasPrefix(pending, outputFor):
			name := strings.TrimPrefix(pending, outputFor)
			if b := find(name); lang != "text" || b == nil || b.output != "" {
				problem = append(problem, fmt.Sprintf("%s:%d: <!-- output: %s --> must mark a ```text block after the tested block %s, once", page, start, name, name))
			} else {
				b.output = body.String()
			}
		case pending != "" && !command:
			problem = append(problem, fmt.Sprintf("%s:%d: marker %q is on a ```%s block, not ```sh or ```console", page, start, strings.TrimPrefix(pending, "\x00"), lang))
		case pending == untested:
		case strings.HasPrefix(pending, testedIn):
			out = append(out, block{page: page, lang: lang, line: start, text: body.String(), in: strings.TrimPrefix(pending, testedIn)})
		case pending != "":
			out = append(out, block{page: page, name: pending, lang: lang, line: start, text: body.String()})
		}
		pending = ""
	}
	if pending != "" {
		problem = append(problem, fmt.Sprintf("%s: marker %q at the end of the page", page, strings.TrimPrefix(pending, "\x00")))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(problem) > 0 {
		return out, fmt.Errorf("%s", strings.Join(problem, "\n"))
	}
	return out, nil
}

// loadBlocks parses every page and checks that its tested blocks are the
// ones listed in pages, in order, and that a tested-in folder has tests
// that read the page; it returns the tested blocks by name.
func loadBlocks(t testing.TB) map[string]block {
	t.Helper()
	all := docPages(t)
	for page := range pages {
		if !slices.Contains(all, page) {
			t.Errorf("%s is listed in test/docs/blocks_test.go but is not a page", page)
		}
	}
	byName := map[string]block{}
	for _, page := range all {
		want, listed := pages[page]
		if !listed {
			t.Errorf("%s is not listed in pages (test/docs/blocks_test.go): add it with the names of its tested blocks", page)
			continue
		}
		data, err := os.ReadFile(filepath.Join(repoRoot(), page))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := parseBlocks(page, data)
		if err != nil {
			t.Error(err)
			continue
		}
		var got []string
		for _, b := range blocks {
			if b.in != "" {
				checkTestedIn(t, b)
				continue
			}
			got = append(got, b.name)
			if _, dup := byName[b.name]; dup {
				t.Errorf("%s:%d: block name %q used twice", page, b.line, b.name)
			}
			byName[b.name] = b
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: tested blocks %q, the test runs %q: a block was added, removed or renamed in the page or in the test (test/docs/blocks_test.go)", page, got, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return byName
}

// checkTestedIn checks that a test file in the block's folder names the
// page, the least a test that reads it does.
func checkTestedIn(t testing.TB, b block) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(), b.in, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(`"`+b.page+`"`)) {
			return
		}
	}
	t.Errorf("%s:%d: marked <!-- tested in: %s -->, but no test file there reads %q", b.page, b.line, b.in, b.page)
}

func TestMarkersMatchTheTest(t *testing.T) {
	loadBlocks(t)
}

func TestParseBlocks(t *testing.T) {
	tests := []struct {
		name, page string
		want       []string
		wantErr    string
	}{
		{"marked", "<!-- tested: a -->\n```sh\necho a\n```\n", []string{"a"}, ""},
		{"marked console", "<!-- tested: a -->\n```console\n$ echo a\na\n```\n", []string{"a"}, ""},
		{"files and output need no marker", "```text\nout\n```\n```yaml\nk: v\n```\n<!-- haproxy.cfg: begin -->\n```text\nx\n```\n", nil, ""},
		{"unmarked sh", "text\n```sh\necho a\n```\n", nil, "without <!-- tested"},
		{"unmarked console", "```console\n$ x\n```\n", nil, "without <!-- tested"},
		{"no language", "```\nmake run\n```\n", nil, "without a language"},
		{"inline code is no fence", "```` ```sh ```` blocks\n", nil, ""},
		{"unknown language", "```bash\nmake run\n```\n", nil, "use sh, console"},
		{"marker before prose", "<!-- tested: a -->\nprose\n```sh\necho\n```\n", nil, "not followed by a block"},
		{"marker before yaml", "<!-- tested: a -->\n```yaml\nk: v\n```\n", nil, "not ```sh"},
		{"unterminated", "<!-- tested: a -->\n```sh\necho\n", nil, "unterminated"},
		{"untested with a reason", "<!-- untested: runs the suite -->\n```sh\nmake test\n```\n<!-- tested: b -->\n```sh\necho\n```\n", []string{"b"}, ""},
		{"untested without a reason", "<!-- untested: -->\n```sh\nmake test\n```\n", nil, "needs a value"},
		{"tested in", "<!-- tested in: test/x -->\n```sh\nmake\n```\n", []string{""}, ""},
		{"output", "<!-- tested: a -->\n```sh\necho a\n```\nprints\n<!-- output: a -->\n```text\na\n```\n", []string{"a"}, ""},
		{"output before its block", "<!-- output: a -->\n```text\na\n```\n<!-- tested: a -->\n```sh\necho a\n```\n", nil, "must mark a ```text block after"},
		{"output on sh", "<!-- tested: a -->\n```sh\necho a\n```\n<!-- output: a -->\n```sh\na\n```\n", nil, "must mark a ```text block after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := parseBlocks("p.md", []byte(tt.page))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range blocks {
				got = append(got, b.name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("blocks %q, want %q", got, tt.want)
			}
		})
	}
}
