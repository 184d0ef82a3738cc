package irc

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/config/configtest"
)

// valid is a small correct config of an IRC network; bad cases change one
// thing in it.
const valid = `
networks:
  libera:
    type: irc
    server: irc.example.org:6697
    nick: switchboard
links:
  lobby: ["libera:#lobby"]
`

func TestBadConfigs(t *testing.T) {
	configtest.RunBad(t, []configtest.BadConfig{
		{
			Name: "invalid IRC channel",
			YAML: strings.Replace(valid, `"libera:#lobby"`, `"libera:lobby"`, 1),
			Want: []string{`links.lobby[0]: invalid irc room "lobby": an IRC channel starts with # or &`},
		},
		{
			Name: "IRC channel with comma",
			YAML: strings.Replace(valid, `"libera:#lobby"`, `"libera:#a,#b"`, 1),
			Want: []string{`links.lobby[0]: invalid irc room "#a,#b": an IRC channel contains no space, comma or BEL`},
		},
		{
			Name: "IRC channel too long",
			YAML: strings.Replace(valid, `"libera:#lobby"`, `"libera:#`+strings.Repeat("x", 50)+`"`, 1),
			Want: []string{`links.lobby[0]: invalid irc room "#` + strings.Repeat("x", 50) + `": an IRC channel is at most 50 bytes, this is 51`},
		},
		{
			Name: "IRC server without port",
			YAML: strings.Replace(valid, "irc.example.org:6697", "irc.example.org", 1),
			Want: []string{`networks.libera.server: "irc.example.org" is not host:port`},
		},
		{
			Name: "IRC server port zero",
			YAML: strings.Replace(valid, "irc.example.org:6697", "irc.example.org:0", 1),
			Want: []string{`networks.libera.server: invalid port "0" (want 1-65535)`},
		},
		{
			Name: "invalid nick",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: 1bot", 1),
			Want: []string{`networks.libera.nick: invalid IRC nick "1bot": must not start with a digit or -`},
		},
		{
			Name: "nick with space",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switch board", 1),
			Want: []string{`networks.libera.nick: invalid IRC nick "switch board": ' ' is not allowed (letters, digits and []\` + "`" + `_^{|}- are)`},
		},
		{
			Name: "sasl incomplete and insecure without tls",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    tls_insecure_skip_verify: true\n    sasl: {user: me}", 1),
			Want: []string{
				`networks.libera.sasl.password: required when sasl is set`,
				`networks.libera.tls_insecure_skip_verify: set without tls: true`,
			},
		},
		{
			Name: "negative catch-up bounds",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    catch_up: {max_messages: -1, max_age: -1h}", 1),
			Want: []string{
				`networks.libera.catch_up.max_age: must not be negative, got -1h0m0s (0 turns catch-up off)`,
				`networks.libera.catch_up.max_messages: want 0 (off) to 10000, got -1`,
			},
		},
		{
			Name: "shards out of range and a source address that is no IP",
			YAML: strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    shards: 0\n    source_address: irc.example.org", 1),
			Want: []string{
				`networks.libera.shards: must be between 1 and 64, got 0`,
				`networks.libera.source_address: "irc.example.org" is not an IP address`,
			},
		},
	})
}

// Each instance of a cluster binds its connections to its own address,
// from its environment; shards defaults to 1.
func TestSourceAddressFromEnvironment(t *testing.T) {
	yaml := strings.Replace(valid, "nick: switchboard", "nick: switchboard\n    source_address: ${SWITCHBOARD_SOURCE_ADDRESS}", 1)
	c, err := config.ParseEnv([]byte(yaml), map[string]string{"SWITCHBOARD_SOURCE_ADDRESS": "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Networks["libera"].Section.(*Config)
	if cfg.SourceAddress != "127.0.0.2" || cfg.Shards != 1 {
		t.Fatalf("source_address %q, shards %d; want 127.0.0.2, 1", cfg.SourceAddress, cfg.Shards)
	}
}
