package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"
)

// TestDocLinksResolve: every relative link in README.md and docs/*.md
// points to a file that exists and, with a #fragment, to a heading of
// that page; so moving a section cannot leave a link dangling.
func TestDocLinksResolve(t *testing.T) {
	docs := docsDir(t)
	root := filepath.Dir(docs)
	pages, err := filepath.Glob(filepath.Join(docs, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(root, "README.md"))
	checked := 0
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, page)
		for _, target := range markdownLinks(string(data)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(target, "#")
			file := page
			if path != "" {
				file = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s: link %q: %v", name, target, err)
				continue
			}
			if frag == "" {
				continue
			}
			md, err := os.ReadFile(file)
			if err != nil || !strings.HasSuffix(file, ".md") {
				t.Errorf("%s: link %q: a fragment on a file that is not a Markdown page", name, target)
				continue
			}
			if !headingAnchors(string(md))[frag] {
				t.Errorf("%s: link %q: no heading with the anchor #%s", name, target, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: the link scanner is broken")
	}
}

// markdownLinks are the targets of the [text](target) links of a
// Markdown text, outside fenced code blocks and inline code.
func markdownLinks(md string) []string {
	var out []string
	for _, line := range proseLines(md) {
		line = inlineCode.ReplaceAllString(line, "")
		for _, m := range linkTarget.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

var (
	linkTarget = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	inlineCode = regexp.MustCompile("`[^`]*`")
)

// proseLines are the lines of a Markdown text outside fenced code blocks.
func proseLines(md string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, line)
		}
	}
	return out
}

// headingAnchors are the fragments GitHub gives a page's headings: the
// text lower-cased, punctuation but - and _ dropped, spaces made -, and
// -1, -2... on repeats.
func headingAnchors(md string) map[string]bool {
	out := map[string]bool{}
	for _, line := range proseLines(md) {
		text, ok := headingText(line)
		if !ok {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		for i := 1; out[slug]; i++ {
			slug = fmt.Sprintf("%s-%d", b.String(), i)
		}
		out[slug] = true
	}
	return out
}

// headingText is the text of an ATX heading line ("## Text").
func headingText(line string) (string, bool) {
	hashes := len(line) - len(strings.TrimLeft(line, "#"))
	if hashes == 0 || hashes > 6 || !strings.HasPrefix(line[hashes:], " ") {
		return "", false
	}
	return strings.TrimSpace(line[hashes:]), true
}

// TestConfigurationReferenceCoversTheExample: every key path of
// switchboard.example.yaml is listed, as `path` in code, in
// docs/configuration.md; a network's keys (relative to the network, as
// `flood.burst`) in the section whose heading names its `type: x`. A key
// added to the example without a line in the reference fails here.
func TestConfigurationReferenceCoversTheExample(t *testing.T) {
	docs := docsDir(t)
	ref, err := os.ReadFile(filepath.Join(docs, "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(filepath.Dir(docs), "switchboard.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(example, &doc); err != nil {
		t.Fatal(err)
	}
	top := doc.Content[0]
	sections := typeSections(string(ref))
	whole := string(ref)
	count := 0
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, value := top.Content[i].Value, top.Content[i+1]
		if key != "networks" {
			for _, p := range keyPaths(key, value) {
				count++
				if !strings.Contains(whole, "`"+p+"`") {
					t.Errorf("docs/configuration.md does not list `%s` (a key of switchboard.example.yaml)", p)
				}
			}
			continue
		}
		for j := 0; j+1 < len(value.Content); j += 2 {
			network := value.Content[j+1]
			typ := mapValue(network, "type")
			section, ok := sections[typ]
			if !ok {
				t.Errorf("docs/configuration.md has no section headed with `type: %s` (network %s of the example)", typ, value.Content[j].Value)
				continue
			}
			for k := 0; k+1 < len(network.Content); k += 2 {
				for _, p := range keyPaths(network.Content[k].Value, network.Content[k+1]) {
					count++
					if !strings.Contains(section, "`"+p+"`") {
						t.Errorf("docs/configuration.md, `type: %s`: does not list `%s` (networks.%s.%s in switchboard.example.yaml)", typ, p, value.Content[j].Value, p)
					}
				}
			}
		}
	}
	if count < 100 {
		t.Fatalf("only %d key paths read from the example: the reader is broken", count)
	}
}

// freeKeys are the maps whose keys are names the user picks (a link, a
// room): the reference writes them as a placeholder.
var freeKeys = map[string]string{"links": "<link>", "link_options": "<link>", "tokens": "<room>", "people": "<person>", "accounts": "<network>"}

// keyPaths are the dotted key paths of key and everything under it:
// lists of maps as key[].sub, a user-named key as its placeholder.
func keyPaths(key string, n *yaml.Node) []string {
	out := []string{key}
	last := key[strings.LastIndex(key, ".")+1:]
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			sub := n.Content[i].Value
			if ph, ok := freeKeys[last]; ok {
				sub = ph
			}
			if seen[sub] {
				continue
			}
			seen[sub] = true
			out = append(out, keyPaths(key+"."+sub, n.Content[i+1])...)
		}
	case yaml.SequenceNode:
		seen := map[string]bool{}
		for _, item := range n.Content {
			if item.Kind != yaml.MappingNode {
				continue
			}
			for _, p := range keyPaths(key+"[]", item)[1:] {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func mapValue(n *yaml.Node, key string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// typeSections are the sections of the reference whose heading names a
// network type as `type: x` (up to the next heading of the same or a
// higher level), by type.
func typeSections(md string) map[string]string {
	out := map[string]string{}
	current, level := "", 0
	names := regexp.MustCompile("`type: ([a-z0-9]+)`")
	for _, line := range proseLines(md) {
		if text, ok := headingText(line); ok {
			hashes := len(line) - len(strings.TrimLeft(line, "#"))
			if m := names.FindStringSubmatch(text); m != nil {
				current, level = m[1], hashes
			} else if current != "" && hashes <= level {
				current = ""
			}
		}
		if current != "" {
			out[current] += line + "\n"
		}
	}
	return out
}
