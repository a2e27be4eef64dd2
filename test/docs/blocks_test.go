// Package docs runs the shell blocks of README.md and docs/serve.md that a
// newcomer copies: each is marked in the page by an HTML comment
// `<!-- tested: NAME -->` on the line before a fenced `sh` block, and the
// integration test (docs_test.go) runs it against a real `gatehouse serve`
// with only the ports (and, for the other-machine section, the host name)
// changed. This file checks the markers without running anything: every
// `sh` block of those pages is marked (`<!-- untested: REASON -->` for one
// that is deliberately not run, such as `make test`), and the tested blocks
// are exactly those the integration test runs, so neither can change
// without the other.
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

// pages lists the pages whose sh blocks are all tested, with the names of
// their blocks in page order.
var pages = map[string][]string{
	"README.md": {"readme-run", "readme-push-pull"},
	"docs/serve.md": {
		"serve-docker", "serve-crane", "serve-skopeo", "serve-podman", "serve-oras", "serve-regctl", "serve-token",
		"serve-helm", "serve-cosign", "serve-remote-start", "serve-remote-docker",
	},
}

// untested stands for an <!-- untested: REASON --> marker.
const untested = "\x00untested"

// block is a marked fenced block.
type block struct {
	page string
	name string
	line int // of the opening fence
	text string
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// parseBlocks returns the marked sh blocks of a page, and an error for an
// sh block without a marker, a marker not followed by an sh block, or an
// unterminated fence.
func parseBlocks(page string, data []byte) ([]block, error) {
	var (
		out     []block
		pending string // a marker waiting for its block
		cur     *block
		body    strings.Builder
		problem []string
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if cur != nil {
			if strings.TrimSpace(line) == "```" {
				cur.text = body.String()
				out = append(out, *cur)
				cur = nil
				continue
			}
			body.WriteString(line + "\n")
			continue
		}
		trimmed := strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(trimmed, "<!-- tested:"); ok {
			pending = strings.TrimSpace(strings.TrimSuffix(name, "-->"))
			continue
		}
		if reason, ok := strings.CutPrefix(trimmed, "<!-- untested:"); ok {
			if strings.TrimSpace(strings.TrimSuffix(reason, "-->")) == "" {
				problem = append(problem, fmt.Sprintf("%s:%d: <!-- untested: --> needs a reason", page, n))
			}
			pending = untested
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			info := strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))
			switch {
			case pending != "" && info != "sh":
				problem = append(problem, fmt.Sprintf("%s:%d: block %q is marked tested but is a ```%s block, not ```sh", page, n, pending, info))
			case info == "sh" && pending == "":
				problem = append(problem, fmt.Sprintf("%s:%d: an sh block without <!-- tested: NAME --> on the line before: mark it and add it to the test", page, n))
			}
			if info == "sh" && pending != untested {
				cur = &block{page: page, name: pending, line: n}
				body.Reset()
			} else {
				// Skip a block of another language to its closing fence.
				for sc.Scan() {
					n++
					if strings.TrimSpace(sc.Text()) == "```" {
						break
					}
				}
			}
			pending = ""
			continue
		}
		if pending != "" && trimmed != "" {
			problem = append(problem, fmt.Sprintf("%s:%d: marker %q is not followed by an sh block", page, n, pending))
			pending = ""
		}
	}
	if cur != nil {
		problem = append(problem, fmt.Sprintf("%s:%d: unterminated block", page, cur.line))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(problem) > 0 {
		return out, fmt.Errorf("%s", strings.Join(problem, "\n"))
	}
	return out, nil
}

// loadBlocks parses every page and checks that its marked blocks are the
// ones listed in pages, in order; it returns them by name.
func loadBlocks(t testing.TB) map[string]block {
	t.Helper()
	byName := map[string]block{}
	for page, want := range pages {
		data, err := os.ReadFile(filepath.Join(repoRoot(), page))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := parseBlocks(page, data)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range blocks {
			got = append(got, b.name)
			if _, dup := byName[b.name]; dup {
				t.Errorf("%s:%d: block name %q used twice", page, b.line, b.name)
			}
			byName[b.name] = b
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: tested blocks %q, the test runs %q: a block was added, removed or renamed in the page or in the test (test/docs/blocks_test.go)", page, got, want)
		}
	}
	return byName
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
		{"other languages need no marker", "```console\n$ x\n```\n```yaml\nk: v\n```\n", nil, ""},
		{"unmarked sh", "text\n```sh\necho a\n```\n", nil, "without <!-- tested"},
		{"marker before prose", "<!-- tested: a -->\nprose\n```sh\necho\n```\n", nil, "not followed by an sh block"},
		{"marker before console", "<!-- tested: a -->\n```console\n$ x\n```\n", nil, "not ```sh"},
		{"unterminated", "<!-- tested: a -->\n```sh\necho\n", nil, "unterminated"},
		{"untested with a reason", "<!-- untested: runs the suite -->\n```sh\nmake test\n```\n<!-- tested: b -->\n```sh\necho\n```\n", []string{"b"}, ""},
		{"untested without a reason", "<!-- untested: -->\n```sh\nmake test\n```\n", nil, "needs a reason"},
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
