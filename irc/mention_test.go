package irc

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

// A word of the text that is a member's nick, in any case by the
// server's casemapping ("[" and "{" are one letter in rfc1459), mentions
// them once; the speaker does not mention themselves; a word within a
// longer one is no mention.
func TestInboundMentionsAreChannelMembers(t *testing.T) {
	a := &Adapter{name: "libera", info: defaultServerInfo(512)}
	r := &room{name: "#room", members: map[string]*member{}}
	for _, m := range []*member{{nick: "bob"}, {nick: "Carol[x]", account: "carol"}, {nick: "dave"}} {
		r.members[a.info.cm.fold(m.nick)] = m
	}
	got := a.mentionsLocked(r, "carol{X}: ask BOB, bobby and bob; dave?", "dave")
	want := []bridge.Mention{
		{Sender: bridge.Sender{Network: "libera", ID: "carol", Name: "Carol[x]", Authenticated: true}, Text: "carol{X}"},
		{Sender: bridge.Sender{Network: "libera", ID: "bob", Name: "bob"}, Text: "BOB"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mentions %+v, want %+v", got, want)
	}
	if got := a.mentionsLocked(r, "[bob] hi", "x"); len(got) != 1 || got[0].Text != "bob" {
		t.Errorf("a nick in brackets: %+v", got)
	}
}

// Outbound, a mention becomes the member's nick (found by account or
// nick); one the text does not name leads it as "nick: ", unless the
// text names them already; an action gets no lead.
func TestOutboundMentionsUseChannelNicks(t *testing.T) {
	a := &Adapter{name: "libera", info: defaultServerInfo(512), rooms: map[string]*room{}, mode: "relay"}
	r := &room{name: "#room", members: map[string]*member{}}
	for _, m := range []*member{{nick: "bob"}, {nick: "Carol_", account: "carol"}} {
		r.members[a.info.cm.fold(m.nick)] = m
	}
	a.rooms["#room"] = r
	carol := bridge.Sender{Network: "libera", ID: "carol", Authenticated: true}
	bob := bridge.Sender{Network: "libera", ID: "bob"}
	alice := bridge.Sender{Network: "mx", ID: "@alice:hs", Name: "alice"}
	for _, c := range []struct {
		m          bridge.Message
		text, html string
	}{
		{bridge.Message{Text: "Carol (libera): hi", Mentions: []bridge.Mention{{Sender: carol, Text: "Carol (libera)"}}}, "Carol_: hi", ""},
		{bridge.Message{Text: "hi", HTML: "<b>hi</b>", Mentions: []bridge.Mention{{Sender: bob}, {Sender: carol}}}, "bob, Carol_: hi", "bob, Carol_: <b>hi</b>"},
		// A reply's fallback quote stays as it is, and first.
		{bridge.Message{Text: "> bob: lunch?\nyes", HTML: "<blockquote>bob: lunch?</blockquote>yes", Mentions: []bridge.Mention{{Sender: bob}}},
			"> bob: lunch?\nbob: yes", "<blockquote>bob: lunch?</blockquote>bob: yes"},
		{bridge.Message{Text: "> Carol (libera): lunch?\nok Carol (libera)", Mentions: []bridge.Mention{{Sender: carol, Text: "Carol (libera)"}}},
			"> Carol (libera): lunch?\nok Carol_", ""},
		{bridge.Message{Text: "yes bob", Mentions: []bridge.Mention{{Sender: bob}}}, "yes bob", ""},
		{bridge.Message{Text: "waves", Emote: true, Mentions: []bridge.Mention{{Sender: bob}}}, "waves", ""},
		// Relay mode: the name the bot shows a foreign sender by.
		{bridge.Message{Text: "ask alice", Mentions: []bridge.Mention{{Sender: alice, Text: "alice"}}}, "ask alice", ""},
	} {
		got := a.withMentions(&c.m, "#room", false, strings.HasPrefix(c.m.Text, "> "))
		if got.Text != c.text || got.HTML != c.html {
			t.Errorf("%q: got %q %q, want %q %q", c.m.Text, got.Text, got.HTML, c.text, c.html)
		}
	}
}

// The scan each channel line gets, in a channel of 500 members.
func BenchmarkInboundMentions(b *testing.B) {
	a := &Adapter{name: "libera", info: defaultServerInfo(512)}
	r := &room{name: "#room", members: map[string]*member{}}
	for i := range 500 {
		nick := fmt.Sprintf("user%d", i)
		r.members[a.info.cm.fold(nick)] = &member{nick: nick}
	}
	text := "user42: did you see what user7 said about the release notes? it looks fine to me"
	b.ReportAllocs()
	for b.Loop() {
		if len(a.mentionsLocked(r, text, "user1")) != 2 {
			b.Fatal("want two mentions")
		}
	}
}
