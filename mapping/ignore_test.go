package mapping

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestParsePattern(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{"NickServ", ""},
		{"*bot*", ""},
		{"/^bot/", ""},
		{"/", ""}, // one slash is not a regular expression: exact
		{"", "empty pattern"},
		{"  ", "empty pattern"},
		{"//", "empty regular expression"},
		{"/a(b/", "bad regular expression: error parsing regexp: missing closing ): `a(b`"},
		{"a\nb", "contains a line break or NUL"},
	} {
		_, err := ParsePattern(c.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.err {
			t.Errorf("ParsePattern(%q): error %q, want %q", c.in, got, c.err)
		}
	}
	if _, err := ParseIgnore([]string{"a", "b", "/(/"}); err == nil || !strings.HasPrefix(err.Error(), "[2]: bad regular expression: ") {
		t.Errorf("ParseIgnore: error %v, want one naming [2]", err)
	}
}

func TestPatternMatch(t *testing.T) {
	irc := func(nick, mask string) bridge.Sender {
		return bridge.Sender{Network: "libera", ID: "acct", Name: nick, Mask: mask}
	}
	for _, c := range []struct {
		pattern, typ string
		sender       bridge.Sender
		want         bool
	}{
		// IRC: a pattern without ! is a nick, as in ban masks.
		{"*bot*", "irc", irc("NewsBot", "NewsBot!news@example.org"), true},
		{"*bot*", "irc", irc("alice", "alice!bot@bot.example.org"), false},
		{"nickserv", "irc", irc("NickServ", "NickServ!NickServ@services."), true},
		{"NickServ", "irc", irc("NickServX", "NickServX!x@h"), false},
		{"NickServ", "irc", irc("NickServ", ""), true}, // no user@host from the server: the nick still counts
		{"*!*@*.evil.example", "irc", irc("bob", "bob!b@host.EVIL.example"), true},
		{"*!*@*.evil.example", "irc", irc("bob", ""), false},
		{"*@*.evil.example", "irc", irc("bob", "bob!b@host.evil.example"), true},
		{"b@host", "irc", irc("bob", "bob!b@host"), true},
		{"acct", "irc", irc("bob", "bob!b@host"), false}, // the account is not what is matched
		{"/^[^!]*bot!/", "irc", irc("xbot", "xbot!u@h"), true},
		{"/bot/", "irc", irc("alice", "alice!u@bot.example"), true}, // a regexp sees the whole mask
		{"/^XBOT/", "irc", irc("xbot", "xbot!u@h"), false},          // and keeps its case
		{"/(?i)^XBOT/", "irc", irc("xbot", "xbot!u@h"), true},
		// XMPP: the JID, case-insensitively.
		{"Bot@Example.org", "xmpp", bridge.Sender{ID: "bot@example.org"}, true},
		{"*/feedbot", "xmpp", bridge.Sender{ID: "room@muc.example.org/feedbot"}, true},
		{"*/feedbot", "xmpp", bridge.Sender{ID: "feedbot@example.org"}, false},
		// Matrix, MQTT, WebRTC: the id, case-sensitively.
		{"@*bot:example.org", "matrix", bridge.Sender{ID: "@hookbot:example.org"}, true},
		{"@Hookbot:example.org", "matrix", bridge.Sender{ID: "@hookbot:example.org"}, false},
		{"sensor-?", "mqtt", bridge.Sender{ID: "sensor-1"}, true},
		{"sensor-?", "mqtt", bridge.Sender{ID: "sensor-10"}, false},
		{"Sensor-1", "mqtt", bridge.Sender{ID: "sensor-1"}, false},
		{"/^sensor-[0-9]+$/", "mqtt", bridge.Sender{ID: "sensor-10"}, true},
		{"*", "mqtt", bridge.Sender{}, false}, // no id: nothing to match
	} {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(c.sender, c.typ); got != c.want {
			t.Errorf("%q (%s) against %+v: %v, want %v", c.pattern, c.typ, c.sender, got, c.want)
		}
	}
}

func TestIgnores(t *testing.T) {
	ig, err := NewIgnores(map[string]NetworkIgnore{
		"libera": {Type: "irc", Patterns: IRCServices},
		"dev":    {Type: "mqtt", Patterns: []string{"noisy"}},
	}, map[string][]string{"lobby": {"*bot*"}})
	if err != nil {
		t.Fatal(err)
	}
	chanserv := bridge.Sender{Network: "libera", Name: "ChanServ", Mask: "ChanServ!ChanServ@services."}
	bot := bridge.Sender{Network: "libera", Name: "feedbot", Mask: "feedbot!f@h"}
	devBot := bridge.Sender{Network: "dev", ID: "robot"}
	for _, c := range []struct {
		link    string
		s       bridge.Sender
		pattern string
	}{
		{"lobby", chanserv, "ChanServ"},
		{"", chanserv, "ChanServ"}, // direct
		{"other", chanserv, "ChanServ"},
		{"lobby", bot, "*bot*"},
		{"other", bot, ""},
		{"", bot, ""},
		{"lobby", devBot, "*bot*"}, // a link's list applies to every network's senders
		{"other", bridge.Sender{Network: "dev", ID: "noisy"}, "noisy"},
		{"lobby", bridge.Sender{Network: "unknown", ID: "x"}, ""},
	} {
		p, ok := ig.Ignored(c.link, c.s)
		if p != c.pattern || ok != (c.pattern != "") {
			t.Errorf("Ignored(%q, %+v) = %q, %v; want %q", c.link, c.s, p, ok, c.pattern)
		}
	}
	err = ig.Replace(nil, map[string][]string{"lobby": {"ok", "/[/"}})
	if err == nil || !strings.HasPrefix(err.Error(), "link_options.lobby.ignore[1]: bad regular expression") {
		t.Errorf("Replace with a bad pattern: %v", err)
	}
	if _, ok := ig.Ignored("lobby", bot); !ok {
		t.Error("a failed Replace changed the lists")
	}
}

// BenchmarkIgnored is the router's cost per event of an IRC network with
// the services, a glob and a regular expression, for a sender none match
// (every pattern is tried).
func BenchmarkIgnored(b *testing.B) {
	ig, err := NewIgnores(map[string]NetworkIgnore{
		"libera": {Type: "irc", Patterns: append(IRCServices, "*bot*", "/^guest[0-9]+!/")},
	}, map[string][]string{"lobby": {"*!*@*.spam.example"}})
	if err != nil {
		b.Fatal(err)
	}
	s := bridge.Sender{Network: "libera", ID: "alice", Name: "alice", Mask: "alice!~alice@host.example.org"}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ig.Ignored("lobby", s); ok {
			b.Fatal("ignored")
		}
	}
}
