package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuidesShowTheirSnippets: each setup guide shows, as a code block
// of its own, every server config snippet the tests start servers with,
// unchanged; so the guide is what the tests ran. Every snippet belongs to
// a guide.
func TestGuidesShowTheirSnippets(t *testing.T) {
	docs := docsDir(t)
	guides := map[string][]string{
		"xmpp.md":   {"prosody.cfg.lua", "ejabberd.yml", "switchboard-xmpp.yaml"},
		"irc.md":    {"inspircd.conf", "inspircd-chanhistory.conf", "switchboard-irc.yaml"},
		"mqtt.md":   {"mosquitto.conf", "mosquitto.acl", "mosquitto-limits.conf", "switchboard-mqtt.yaml"},
		"matrix.md": {"dendrite.yaml", "switchboard-registration.yaml", "switchboard-matrix.yaml"},
	}
	shown := map[string]bool{}
	for _, snippets := range guides {
		for _, name := range snippets {
			shown[name] = true
		}
	}
	files, err := os.ReadDir(filepath.Join(docs, "snippets"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !shown[f.Name()] {
			t.Errorf("docs/snippets/%s is in no guide's list here", f.Name())
		}
	}
	for guide, snippets := range guides {
		data, err := os.ReadFile(filepath.Join(docs, guide))
		if err != nil {
			t.Fatal(err)
		}
		blocks := codeBlocks(string(data))
		for _, name := range snippets {
			snippet, err := os.ReadFile(filepath.Join(docs, "snippets", name))
			if err != nil {
				t.Fatal(err)
			}
			if !blocks[string(snippet)] {
				t.Errorf("docs/%s does not show docs/snippets/%s as a code block, unchanged", guide, name)
			}
		}
	}
}

// codeBlocks are the contents of a Markdown text's ``` fenced blocks.
func codeBlocks(md string) map[string]bool {
	out := map[string]bool{}
	var block *strings.Builder
	for _, line := range strings.SplitAfter(md, "\n") {
		switch {
		case strings.HasPrefix(line, "```") && block == nil:
			block = &strings.Builder{}
		case strings.HasPrefix(line, "```"):
			out[block.String()] = true
			block = nil
		case block != nil:
			block.WriteString(line)
		}
	}
	return out
}
