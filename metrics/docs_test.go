package metrics

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The guides name metrics as this package defines them: a metric renamed
// here, or misspelt there, fails.
func TestGuidesNameExportedMetrics(t *testing.T) {
	name := regexp.MustCompile(`switchboard_[a-z_]+[a-z]`)
	src, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(switchboard_[a-z_]+)"`).FindAllSubmatch(src, -1) {
		defined[string(m[1])] = true
	}
	for _, guide := range []string{"operations.md", "delivery.md", "mqtt.md", "irc.md"} {
		text, err := os.ReadFile(filepath.Join("..", "docs", guide))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(text), -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !defined[base] {
				t.Errorf("docs/%s names %s, which metrics.go does not define", guide, n)
			}
		}
	}
}
