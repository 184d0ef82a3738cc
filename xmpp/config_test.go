package xmpp

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/config"
)

const validXMPP = `
networks:
  jabber:
    type: xmpp
    server: 127.0.0.1:5347
    component: {domain: bridge.example.org, secret: "${SECRET}"}
  relay:
    type: xmpp
    server: xmpp.example.org:5222
    jid: bot@example.org
    password: "${SECRET}"
links:
  lobby: ["jabber:lobby@conference.example.org", "relay:lobby2@conference.example.org"]
`

func TestXMPPDefaults(t *testing.T) {
	c, err := config.ParseEnv([]byte(validXMPP), map[string]string{"SECRET": "s3cr3t"})
	if err != nil {
		t.Fatal(err)
	}
	comp, relay := c.Networks["jabber"], c.Networks["relay"]
	if comp.Mode != "puppet" || comp.Puppets.Template != "{name} ({network})" || comp.Section.(*Config).Nick != "switchboard" || comp.Section.(*Config).MaxStanza != 262144 {
		t.Errorf("component network: %+v %+v", comp, comp.Section.(*Config))
	}
	if cu := comp.Section.(*Config).CatchUp; cu.MaxMessages != 500 || cu.MaxAge != 24*time.Hour {
		t.Errorf("catch_up defaults: %+v, want 500 lines and 24h", cu)
	}
	if relay.Mode != "relay" || relay.Section.(*Config).JID != "bot@example.org" || relay.Section.(*Config).InsecurePlaintext {
		t.Errorf("relay network: %+v %+v", relay, relay.Section.(*Config))
	}
}

func TestXMPPBadConfigs(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"neither", `networks: {x: {type: xmpp, server: "h:1"}}`,
			[]string{`networks.x.component: required unless jid is set`}},
		{"both", `networks: {x: {type: xmpp, server: "h:1", jid: a@b, password: p, component: {domain: d.example, secret: s}}}`,
			[]string{`networks.x.jid: set together with component`}},
		{"component without secret", `networks: {x: {type: xmpp, server: "h:1", component: {domain: d.example}}}`,
			[]string{`networks.x.component.secret: required`}},
		{"component with a bad domain", `networks: {x: {type: xmpp, server: "h:1", component: {domain: "a@b", secret: s}}}`,
			[]string{`networks.x.component.domain: "a@b" is not a domain name`}},
		{"client_server not host:port", `networks: {x: {type: xmpp, server: "h:1", client_server: "h", insecure_plaintext: true, component: {domain: d.example, secret: s}}}`,
			[]string{`networks.x.client_server: `}},
		{"upload service not a JID", `networks: {x: {type: xmpp, server: "h:1", component: {domain: d.example, secret: s}, upload: {service: "upload.example.org/x"}}}`,
			[]string{`networks.x.upload.service: "upload.example.org/x" is not the JID of a service`}},
		{"jid without password", `networks: {x: {type: xmpp, server: "h:1", jid: a@b}}`,
			[]string{`networks.x.password: required with jid`}},
		{"jid not bare", `networks: {x: {type: xmpp, server: "h:1", jid: "a@b/res", password: p}}`,
			[]string{`networks.x.jid: an account is a bare JID name@domain, without /resource`}},
		{"puppet mode with jid", `networks: {x: {type: xmpp, mode: puppet, server: "h:1", jid: a@b, password: p}}`,
			[]string{`networks.x.mode: puppet needs a component; with jid use mode: relay`}},
		{"insecure with component", `networks: {x: {type: xmpp, server: "h:1", insecure_plaintext: true, component: {domain: d.example, secret: s}}}`,
			[]string{`networks.x.insecure_plaintext: only applies to jid`}},
		{"bad server, nick and size", `networks: {x: {type: xmpp, server: "h", nick: "a\u0007b", max_stanza: 100, max_message_bytes: 100, component: {domain: d.example, secret: s}}}`,
			[]string{`networks.x.server: "h" is not host:port`, `networks.x.nick: "a\ab" contains a control character`, `networks.x.max_stanza: must be at least 4096, got 100`, `networks.x.max_message_bytes: must be 0 (no limit) or at least 256, got 100`}},
		{"room not a bare JID", `networks: {x: {type: xmpp, server: "h:1", component: {domain: d.example, secret: s}}}
links: {l: ["x:room@muc.example/nick", "x:nolocal.example"]}`,
			[]string{`links.l[0]: invalid xmpp room "room@muc.example/nick": a MUC room is a bare JID name@domain, without /resource`,
				`links.l[1]: invalid xmpp room "nolocal.example": a MUC room is a JID name@domain, this has no name@`}},
		{"catch-up bounds", `networks: {x: {type: xmpp, server: "h:1", component: {domain: d.example, secret: s}, catch_up: {max_messages: -1, max_age: -1h}}}`,
			[]string{`networks.x.catch_up.max_messages: want 0 (off) to 10000, got -1`, `networks.x.catch_up.max_age: must not be negative, got -1h0m0s (0 turns catch-up off)`}},
		{"unknown key", `networks: {x: {type: xmpp, server: "h:1", component: {domain: d.example, secret: s, port: 1}}}`,
			[]string{`networks.x.component.port: unknown key`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseEnv([]byte(tt.yaml), nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestXMPPSecretsStayOut(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	c, err := config.ParseEnv([]byte(validXMPP), map[string]string{"SECRET": secret})
	if err != nil {
		t.Fatal(err)
	}
	var logText bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logText, nil))
	comp, relay := c.Networks["jabber"], c.Networks["relay"]
	l.Info("cfg", "config", c, "n", comp, "x", comp.Section.(*Config), "xv", *comp.Section.(*Config), "comp", comp.Section.(*Config).Component, "r", relay.Section.(*Config))
	for name, out := range map[string]string{
		"String": c.String(),
		"%v":     fmt.Sprintf("%v %+v %v %v %v", comp, *comp.Section.(*Config), comp.Section.(*Config).Component, *comp.Section.(*Config).Component, relay.Section.(*Config)),
		"log":    logText.String(),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret:\n%s", name, out)
		}
	}
	if !strings.Contains(c.String(), "secret: xxxxx") || !strings.Contains(c.String(), "password: xxxxx") {
		t.Errorf("String does not show redacted values:\n%s", c)
	}
	// A bad secret is reported without its value.
	_, err = config.ParseEnv([]byte(strings.Replace(validXMPP, `secret: "${SECRET}"`, `secret: "${SECRET}\nx"`, 1)), map[string]string{"SECRET": secret})
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "networks.jabber.component.secret: contains a line break or NUL") {
		t.Errorf("error: %v", err)
	}
}
