package regconfig

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocExamplesLoad: every YAML example in the registry docs loads with
// no problem. A fragment without version or storage gets them added.
func TestDocExamplesLoad(t *testing.T) {
	for _, doc := range []string{"registry-config.md", "notifications.md"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", doc))
		if err != nil {
			t.Fatal(err)
		}
		blocks := yamlBlock.FindAllStringSubmatch(string(data), -1)
		if len(blocks) == 0 {
			t.Errorf("%s: no YAML examples found", doc)
		}
		for i, b := range blocks {
			yml := b[1]
			if !regexp.MustCompile(`(?m)^storage:`).MatchString(yml) {
				yml = "storage: {inmemory: {}}\n" + yml
			}
			if !regexp.MustCompile(`(?m)^version:`).MatchString(yml) {
				yml = "version: 0.1\n" + yml
			}
			name := doc + " example " + string(rune('1'+i))
			if _, err := Parse(name, []byte(yml), nil); err != nil {
				t.Errorf("%s:\n%s\n%v", name, strings.TrimSpace(b[1]), err)
			}
		}
	}
}
