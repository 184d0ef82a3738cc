package all_test

import (
	"os"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
)

// TestReadmeWalkthroughConfigIsValid: the config file of README.md's
// five-minute walkthrough is one that switchboard check accepts, with
// its three networks and the web page in one link.
func TestReadmeWalkthroughConfigIsValid(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const first = "# switchboard.yaml: the walkthrough of README.md"
	_, rest, ok := strings.Cut(string(data), "```yaml\n"+first)
	if !ok {
		t.Fatalf("README.md has no yaml block starting %q", first)
	}
	block, _, ok := strings.Cut(rest, "\n```")
	if !ok {
		t.Fatal("README.md: the walkthrough's yaml block does not end")
	}
	c, err := config.ParseEnv([]byte(first+block), map[string]string{
		"IRC_SASL_PASSWORD":       "sasl-secret",
		"JABBER_COMPONENT_SECRET": "component-secret",
		"MATRIX_AS_TOKEN":         "as-token",
		"MATRIX_HS_TOKEN":         "hs-token",
	})
	if err != nil {
		t.Fatalf("README.md's walkthrough config: %v", err)
	}
	links, err := c.Links()
	if err != nil {
		t.Fatal(err)
	}
	var rooms []string
	for _, r := range links["lobby"] {
		rooms = append(rooms, r.String())
	}
	want := "libera:#lobby jabber:lobby@conference.example.org matrix:#lobby:example.org web:lobby"
	if got := strings.Join(rooms, " "); got != want {
		t.Errorf("link lobby: %s, want %s", got, want)
	}
}
