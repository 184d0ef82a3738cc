package matrix

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
)

const validMatrix = `
networks:
  mx:
    type: matrix
    homeserver: http://127.0.0.1:8008
    domain: example.org
    as_token: "${AS}"
    hs_token: "${HS}"
links:
  lobby: ["mx:!abc:example.org", "mx:#sb_lobby:example.org"]
`

func TestMatrixDefaultsAndRedaction(t *testing.T) {
	c, err := config.ParseEnv([]byte(validMatrix), map[string]string{"AS": "as-secret", "HS": "hs-secret"})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Networks["mx"]
	m := n.Section.(*Config)
	if m.Bot != "switchboard" || m.GhostLocalpart != "sb_{network}_{id}" || m.ID != "switchboard" || n.Puppets.Template != "{name} ({network})" || n.Mode != "puppet" {
		t.Errorf("defaults: %+v %+v", n, m)
	}
	if m.Media != (Media{Upload: true, MaxSize: 50 << 20}) {
		t.Errorf("media defaults: %+v", m.Media)
	}
	for _, s := range []string{c.String(), n.String(), m.String()} {
		if strings.Contains(s, "as-secret") || strings.Contains(s, "hs-secret") {
			t.Errorf("secret shown: %s", s)
		}
	}
}

func TestMatrixBadConfigs(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"no homeserver", `networks: {x: {type: matrix, domain: e.org, as_token: a, hs_token: h}}`, "networks.x.homeserver: required"},
		{"bad homeserver", `networks: {x: {type: matrix, homeserver: "ftp://h", domain: e.org, as_token: a, hs_token: h}}`, "networks.x.homeserver:"},
		{"no domain", `networks: {x: {type: matrix, homeserver: "http://h", as_token: a, hs_token: h}}`, "networks.x.domain: required"},
		{"no tokens", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org}}`, "networks.x.as_token: required"},
		{"bad bot", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h, bot: "Bot!"}}`, "networks.x.bot:"},
		{"ghost without id", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h, ghost_localpart: "sb_{network}"}}`, "networks.x.ghost_localpart: must contain {network} and {id}"},
		{"ghost without separator", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h, ghost_localpart: "sb_{network}{id}"}}`, "networks.x.ghost_localpart: must have _ or /"},
		{"bad room", `{networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h}}, links: {l: ["x:lobby"]}}`, `links.l[0]: invalid matrix room "lobby"`},
		{"zero max_size", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h, media: {max_size: 0}}}`, "networks.x.media.max_size: want 1-1073741824 bytes, got 0"},
		{"huge max_size", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h, media: {max_size: 2000000000}}}`, "networks.x.media.max_size: want 1-"},
		{"max_size not a number", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h, media: {max_size: 50MiB}}}`, "networks.x.media.max_size: want an integer"},
		{"unknown media key", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h, media: {uplod: true}}}`, "networks.x.media.uplod: unknown key"},
		{"bad url", `networks: {x: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h, url: "nope"}}`, "networks.x.url:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.ParseEnv([]byte(c.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestMatrixMediaGiven(t *testing.T) {
	c, err := config.ParseEnv([]byte(`
networks:
  mx: {type: matrix, homeserver: "http://h", domain: e.org, as_token: a, hs_token: h,
       media: {upload: false, max_size: 1024, private_addresses: true}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Networks["mx"].Section.(*Config).Media; got != (Media{Upload: false, MaxSize: 1024, PrivateAddresses: true}) {
		t.Errorf("media %+v: an explicit false or size was not kept", got)
	}
}

// TestDoublePuppetNamespaceChecked: double_puppet_namespace is a regular
// expression that can match users of the network's domain only; a bad
// one is refused naming the key.
func TestDoublePuppetNamespaceChecked(t *testing.T) {
	const net = `networks: {x: {type: matrix, homeserver: "http://h", domain: example.org, as_token: a, hs_token: h, double_puppet_namespace: %s}}`
	for _, c := range []struct{ ns, want string }{
		{`'@[^:]+:example\.org'`, ""},
		{`'@(alice|bob):example\.org'`, ""},
		{`'(@.*:example\.org)$'`, ""},
		{`'(?i)@sb-.*:EXAMPLE\.org'`, ""},
		{`'@[^:'`, "networks.x.double_puppet_namespace: not a regular expression"},
		{`'@.*'`, "networks.x.double_puppet_namespace: \"@.*\" must end with :example\\.org"},
		{`'@.*:example\.org|@.*'`, "must end with :example\\.org"},
		{`'@.*:example\.org.*'`, "must end with :example\\.org"},
		{`'@.*:elsewhere\.org'`, "must end with :example\\.org"},
		{`'@.*:.*example\.org'`, "must end with :example\\.org"},
	} {
		_, err := config.ParseEnv([]byte(strings.ReplaceAll(net, "%s", c.ns)), nil)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.ns, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.ns, err, c.want)
		}
	}
}
