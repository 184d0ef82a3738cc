package mapping

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestParseAdmins(t *testing.T) {
	for _, bad := range []string{"nocolon", ":id", "libera:", "libera: "} {
		if _, err := ParseAdmins([]string{"matrix:@ok:hs", bad}); err == nil || !strings.Contains(err.Error(), "admins[1]") {
			t.Errorf("ParseAdmins(%q) error = %v, want one naming admins[1]", bad, err)
		}
	}
	a, err := ParseAdmins(nil)
	if err != nil || a.IsAdmin(bridge.Sender{Network: "matrix", ID: "@x:hs"}, "matrix") {
		t.Errorf("an empty list: %v, or it admits someone", err)
	}
	var none *Admins
	if none.IsAdmin(bridge.Sender{Network: "matrix", ID: "@x:hs"}, "matrix") {
		t.Error("nil admits someone")
	}
}

func TestIsAdmin(t *testing.T) {
	a, err := ParseAdmins([]string{
		"libera:*!*@ops.example.org",
		"oftc:alice!al@host.example",
		"irc:root!*@trusted.example",
		"jabber:Ops@Example.org",
		"matrix:@ops:example.org",
		"mqtt:Panel-1",
		"web:ops",
	})
	if err != nil {
		t.Fatal(err)
	}
	irc := func(network, nick, mask string) bridge.Sender {
		return bridge.Sender{Network: network, ID: nick, Name: nick, Mask: mask}
	}
	for _, c := range []struct {
		name string
		s    bridge.Sender
		typ  string
		want bool
	}{
		{"irc mask by network name", irc("libera", "bob", "bob!~bob@ops.example.org"), "irc", true},
		{"irc mask ignores case", irc("libera", "Bob", "Bob!~bob@OPS.Example.ORG"), "irc", true},
		{"irc host differs", irc("libera", "bob", "bob!~bob@evil.example"), "irc", false},
		{"irc host suffix trick", irc("libera", "bob", "bob!~bob@ops.example.org.evil"), "irc", false},
		{"irc other network", irc("oftc", "bob", "bob!~bob@ops.example.org"), "irc", false},
		{"irc no mask", irc("libera", "bob", ""), "irc", false},
		{"irc nick-only mask", irc("libera", "bob", "bob"), "irc", false},
		{"irc mask lacking user", irc("libera", "bob", "bob!@ops.example.org"), "irc", false},
		{"irc exact entry", irc("oftc", "alice", "alice!al@host.example"), "irc", true},
		{"irc exact entry, other user", irc("oftc", "alice", "alice!x@host.example"), "irc", false},
		// The entry's identity equals the nick, but a nick proves nothing.
		{"irc exact entry, nick only", bridge.Sender{Network: "oftc", ID: "alice!al@host.example", Mask: ""}, "irc", false},
		{"irc entry by type", irc("anynet", "root", "root!r@trusted.example"), "irc", true},
		{"irc entry by type, wrong type", irc("anynet", "root", "root!r@trusted.example"), "xmpp", false},
		{"xmpp bare jid, case", bridge.Sender{Network: "jabber", ID: "ops@example.ORG"}, "xmpp", true},
		{"xmpp occupant jid", bridge.Sender{Network: "jabber", ID: "Ops@Example.org/nick"}, "xmpp", false},
		{"xmpp other", bridge.Sender{Network: "jabber", ID: "eve@example.org"}, "xmpp", false},
		{"matrix exact", bridge.Sender{Network: "matrix", ID: "@ops:example.org"}, "matrix", true},
		{"matrix case differs", bridge.Sender{Network: "matrix", ID: "@Ops:example.org"}, "matrix", false},
		{"matrix id on another network", bridge.Sender{Network: "jabber", ID: "@ops:example.org"}, "xmpp", false},
		{"mqtt by type", bridge.Sender{Network: "devices", ID: "Panel-1"}, "mqtt", true},
		{"mqtt case differs", bridge.Sender{Network: "devices", ID: "panel-1"}, "mqtt", false},
		{"webrtc", bridge.Sender{Network: "web", ID: "ops"}, "webrtc", true},
		{"empty sender", bridge.Sender{}, "", false},
	} {
		if got := a.IsAdmin(c.s, c.typ); got != c.want {
			t.Errorf("%s: IsAdmin(%+v, %q) = %v, want %v", c.name, c.s, c.typ, got, c.want)
		}
	}
}

func TestGlobFold(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "a!b@c", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*!*@host", "nick!user@host", true},
		{"*!*@host", "nick!user@host2", false},
		{"[ops]*!*@h", "[OPS]bot!u@h", true},
		{"[ops]!*@h", "o!u@h", false}, // no character classes
		{`a\b!*@h`, `A\B!u@h`, true},
		{"*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"n?ck!*@*.example", "nék!u@x.example", false},
		{"n?k!*@*.example", "nék!u@x.example", true}, // ? is one character, not one byte
		{"kelvin", "\u212aelvin", false},
	} {
		if got := Glob(c.p, c.s, true); got != c.want {
			t.Errorf("Glob(%q, %q, true) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}
