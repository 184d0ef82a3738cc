package service

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// These tests link an XMPP MUC on a real Prosody with an IRC channel and
// an MQTT topic root, and assert what people in each see.

var xmppUsers = map[string]string{"alice": "alice-pw", "carol": "carol-pw", "mallory": "mallory-pw", "relaybot": "relay-pw"}

type xworld struct {
	*world
	xmpp *testenv.XMPPServer
	room jid.JID
}

func newXWorld(t *testing.T) *xworld { return newXWorldWith(t, testenv.XMPPServerConfig{}) }

// newXWorldWith is newXWorld with Prosody tuned (its users are always
// xmppUsers).
func newXWorldWith(t *testing.T, c testenv.XMPPServerConfig) *xworld {
	return newXWorldOn(t, testenv.ProsodyWith, c)
}

// newXWorldOn is newXWorldWith on another XMPP server (testenv.XMPPServers).
func newXWorldOn(t *testing.T, server func(testing.TB, testenv.XMPPServerConfig) *testenv.XMPPServer, c testenv.XMPPServerConfig) *xworld {
	return newXWorldAround(t, newWorld(t), server, c)
}

// newXWorldAround is newXWorldOn around a given IRC and MQTT world.
func newXWorldAround(t *testing.T, w *world, server func(testing.TB, testenv.XMPPServerConfig) *testenv.XMPPServer, c testenv.XMPPServerConfig) *xworld {
	c.Users = xmppUsers
	srv := server(t, c)
	return &xworld{world: w, xmpp: srv, room: srv.Room("lobby")}
}

// config links #room, sb/room and the MUC; xmppMode is puppet (through
// the component) or relay (through the relaybot account).
func (w *xworld) config(t *testing.T, xmppMode string) *config.Config {
	t.Helper()
	return w.configModes(t, "puppet", xmppMode)
}

// configModes is config with IRC in ircMode (puppet or relay) too.
func (w *xworld) configModes(t *testing.T, ircMode, xmppMode string) *config.Config {
	t.Helper()
	network := fmt.Sprintf(`{ type: xmpp, mode: puppet, server: %q, component: { domain: %q, secret: %q } }`,
		w.xmpp.ComponentAddr, w.xmpp.Component, w.xmpp.ComponentSecret)
	if xmppMode == "relay" {
		network = fmt.Sprintf(`{ type: xmpp, mode: relay, server: %q, jid: "relaybot@%s", password: %q, insecure_plaintext: true }`,
			w.xmpp.C2SAddr, w.xmpp.Domain, xmppUsers["relaybot"])
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: "127.0.0.1:0" }
networks:
  libera:
    type: irc
    server: %s
    nick: switchboard
    mode: %s
    flood: { burst: 50, interval: 10ms }
    rate: { per_second: 0 } # the restart test streams 30 lines from one person
    reconnect_max: 2s
  devices: { type: mqtt, broker: %q, client_id: switchboard-e2e }
  jabber: %s
links:
  lobby: [ "libera:%s", "devices:%s", "jabber:%s" ]
`, w.dir, w.irc.Addr, ircMode, w.mqtt.URL, network, room, root, w.room)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// person joins the MUC as an XMPP user with nick = user name.
func (w *xworld) person(t *testing.T, user string) *testenv.XMPPClient {
	t.Helper()
	c := w.xmpp.Client(t, user, xmppUsers[user])
	if err := c.Join(w.room, user); err != nil {
		t.Fatal(err)
	}
	return c
}

// puppetJID is the JID of the IRC user nick's puppet, from the presence
// it shows viewer once nick spoke in the room.
func (w *xworld) puppetJID(t *testing.T, viewer *testenv.XMPPClient, irc *testenv.IRCClient, nick string) jid.JID {
	t.Helper()
	irc.Say(room, "I'm here")
	presence, err := viewer.WaitFor(patience, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.From() == w.room.String()+"/"+nick+" (libera)"
	})
	if err != nil {
		t.Fatal(err)
	}
	j, err := jid.Parse(presence.Child("http://jabber.org/protocol/muc#user", "x").Child("", "item").AttrValue("jid"))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func groupchatFrom(room jid.JID, nick, body string) func(testenv.XMPPStanza) bool {
	return func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && s.From() == room.String()+"/"+nick && s.Body() == body
	}
}

// nextEvent returns the next MQTT event of a type.
func nextEvent(t *testing.T, sub *testenv.Subscriber, typ string) mqtt.OutEvent {
	t.Helper()
	for {
		m := sub.Next(t, patience)
		var ev mqtt.OutEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("payload %q: %v", m.Payload, err)
		}
		if ev.Type == typ {
			return ev
		}
	}
}

// Test 1: a MUC occupant reaches IRC and MQTT from her puppet; an IRC
// user appears in the MUC as an occupant with a JID on the component.
func TestXMPPMUCLinkedWithIRCAndMQTT(t *testing.T) {
	w := newXWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	sub := w.mqtt.Subscribe(t, root+"/out/jabber/#", 1)
	bob := w.human(t, "bob")
	alice := w.person(t, "alice")

	if _, err := alice.Say(w.room, "hi"); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "alice[jabber]", "hi")
	ev := nextEvent(t, sub, "message")
	if ev.Text != "hi" || ev.Sender.Name != "alice" || ev.Network != "jabber" {
		t.Errorf("MQTT event %+v, want hi from alice on jabber", ev)
	}

	bob.Say(room, "hello from irc")
	alice.WaitMessage(patience, groupchatFrom(w.room, "bob (libera)", "hello from irc"))
	presence, err := alice.WaitFor(patience, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.From() == w.room.String()+"/bob (libera)"
	})
	if err != nil {
		t.Fatal(err)
	}
	item := presence.Child("http://jabber.org/protocol/muc#user", "x").Child("", "item")
	if real, err := jid.Parse(item.AttrValue("jid")); err != nil || real.Domain().String() != w.xmpp.Component {
		t.Errorf("bob's occupant has real JID %q, want one on %s", item.AttrValue("jid"), w.xmpp.Component)
	}
}

// Test 2: what was said in the MUC before Switchboard joined stays there.
func TestXMPPHistoryNotRebridged(t *testing.T) {
	w := newXWorld(t)
	alice := w.oldNews(t)
	bob := w.human(t, "bob")
	runSwitchboard(t, w.config(t, "puppet"))
	if _, err := alice.Say(w.room, "new"); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "alice[jabber]", "new")
	noOldNews(t, bob)
}

// oldNews has alice join the MUC and say three "old news" messages there
// before Switchboard is started.
func (w *xworld) oldNews(t *testing.T) *testenv.XMPPClient {
	t.Helper()
	alice := w.person(t, "alice")
	for i := range 3 {
		if _, err := alice.Say(w.room, fmt.Sprintf("old news %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice.WaitMessage(patience, groupchatFrom(w.room, "alice", "old news 2"))
	return alice
}

// noOldNews fails the test if the IRC user saw any of oldNews.
func noOldNews(t *testing.T, irc *testenv.IRCClient) {
	t.Helper()
	for _, text := range messages(irc, "") {
		if strings.HasPrefix(text, "old news") {
			t.Errorf("history was bridged: %q", text)
		}
	}
}

// Test 3: corrections reach IRC as a fallback and MQTT as an edit; a
// forged correction of someone else's message goes nowhere.
func TestXMPPCorrectionAndForgery(t *testing.T) {
	w := newXWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	sub := w.mqtt.Subscribe(t, root+"/out/jabber/#", 1)
	bob := w.human(t, "bob")
	alice := w.person(t, "alice")
	mallory := w.person(t, "mallory")

	id, err := alice.Say(w.room, "helo wrld")
	if err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "alice[jabber]", "helo wrld")
	orig := nextEvent(t, sub, "message")
	if _, err := alice.Say(w.room, "hello world", `<replace xmlns="urn:xmpp:message-correct:0" id="`+id+`"/>`); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "alice[jabber]", "* hello world")
	edit := nextEvent(t, sub, "edit")
	if edit.EditOf != orig.ID || edit.Text != "hello world" {
		t.Errorf("MQTT edit %+v, want hello world editing %s", edit, orig.ID)
	}

	if _, err := mallory.Say(w.room, "alice is wrong", `<replace xmlns="urn:xmpp:message-correct:0" id="`+id+`"/>`); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Say(w.room, "marker"); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "mallory[jabber]", "marker")
	for _, text := range messages(bob, "") {
		if strings.Contains(text, "alice is wrong") {
			t.Errorf("a forged correction reached IRC: %q", text)
		}
	}
	if ev := nextEvent(t, sub, "message"); ev.Text != "marker" {
		t.Errorf("after the forged correction MQTT got %+v, want only the marker", ev)
	}
}

// Test 4: a reply and a reaction from the MUC: fallbacks on IRC,
// structured events on MQTT.
func TestXMPPReplyAndReaction(t *testing.T) {
	w := newXWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	sub := w.mqtt.Subscribe(t, root+"/out/jabber/#", 1)
	bob := w.human(t, "bob")
	alice := w.person(t, "alice")
	carol := w.person(t, "carol")

	if _, err := alice.Say(w.room, "shall we meet at noon"); err != nil {
		t.Fatal(err)
	}
	st := carol.WaitMessage(patience, groupchatFrom(w.room, "alice", "shall we meet at noon"))
	sid := st.StanzaID(w.room.String())
	orig := nextEvent(t, sub, "message")

	quote := "> alice: shall we meet at noon\n"
	if _, err := carol.Say(w.room, quote+"yes, noon works",
		`<reply xmlns="urn:xmpp:reply:0" to="`+w.room.String()+`/alice" id="`+sid+`"/>`,
		fmt.Sprintf(`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="%d"/></fallback>`, len([]rune(quote)))); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "carol[jabber]", "yes, noon works")
	if got := messages(bob, "carol[jabber]"); !slices.Equal(got, []string{"> alice: shall we meet at noon", "yes, noon works"}) {
		t.Errorf("IRC reply fallback %q", got)
	}
	reply := nextEvent(t, sub, "message")
	if reply.ReplyTo != orig.ID || reply.Text != "yes, noon works" {
		t.Errorf("MQTT reply %+v, want yes, noon works replying to %s", reply, orig.ID)
	}

	if _, err := carol.Say(w.room, "", `<reactions xmlns="urn:xmpp:reactions:0" id="`+sid+`"><reaction>👍</reaction></reactions>`,
		`<store xmlns="urn:xmpp:hints"/>`); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "carol[jabber]", "\x01ACTION reacted 👍 to \"shall we meet at noon\"\x01")
	reaction := nextEvent(t, sub, "reaction")
	if reaction.Key != "👍" || reaction.Target != orig.ID || reaction.Remove {
		t.Errorf("MQTT reaction %+v, want 👍 on %s", reaction, orig.ID)
	}
}

// Test 5: text that looks like XML arrives in the MUC as literal text.
func TestXMPPMarkupFromIRCIsLiteral(t *testing.T) {
	w := newXWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	bob := w.human(t, "bob")
	alice := w.person(t, "alice")
	bob.Say(room, "<b>&amp;</b> ]]> <message to='x'/>")
	alice.WaitMessage(patience, groupchatFrom(w.room, "bob (libera)", "<b>&amp;</b> ]]> <message to='x'/>"))
}

// Test 6: alice writes to bob's puppet JID; IRC bob gets it privately
// from alice's puppet, and his answer returns to alice from that JID.
func TestXMPPDirectChatWithIRCUser(t *testing.T) {
	w := newXWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	bob := w.human(t, "bob")
	alice := w.person(t, "alice")
	bobJID := w.puppetJID(t, alice, bob, "bob")
	if _, err := alice.Chat(bobJID.Bare(), "psst, bob"); err != nil {
		t.Fatal(err)
	}
	pm := bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return strings.EqualFold(l.Target(), "bob") && l.Text() == "psst, bob"
	})
	if pm.Nick() != "alice[jabber]" {
		t.Errorf("the private message came from %q, want alice[jabber]", pm.Nick())
	}
	bob.Say("alice[jabber]", "hi alice")
	answer := alice.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return s.Type() == "chat" && s.Body() == "hi alice"
	})
	if from, _ := jid.Parse(answer.From()); !from.Bare().Equal(bobJID.Bare()) {
		t.Errorf("the answer came from %s, want bob's puppet %s", answer.From(), bobJID.Bare())
	}
}

// Test 7: Prosody restarts while IRC keeps talking; every message reaches
// the MUC once.
func TestXMPPServerRestartLosesAndRepeatsNothing(t *testing.T) {
	w := newXWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	bob := w.human(t, "bob")
	before := w.person(t, "alice")
	const n = 30
	for i := 1; i <= 10; i++ {
		bob.Say(room, fmt.Sprintf("stream %02d", i))
	}
	before.WaitMessage(patience, groupchatFrom(w.room, "bob (libera)", "stream 10"))
	w.xmpp.Process.Stop()
	for i := 11; i <= 20; i++ {
		bob.Say(room, fmt.Sprintf("stream %02d", i))
	}
	time.Sleep(300 * time.Millisecond) // accepted into the outbox meanwhile
	w.xmpp.Process.Start(t)
	// The room is new after the restart; joining with history shows what
	// was delivered before alice got back in.
	after := w.xmpp.Client(t, "carol", xmppUsers["carol"])
	if err := after.JoinWith(w.room, "carol", `<x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="100"/></x>`); err != nil {
		t.Fatal(err)
	}
	for i := 21; i <= n; i++ {
		bob.Say(room, fmt.Sprintf("stream %02d", i))
	}
	after.WaitMessage(2*patience, groupchatFrom(w.room, "bob (libera)", fmt.Sprintf("stream %02d", n)))
	time.Sleep(500 * time.Millisecond)
	bodies := func(c *testenv.XMPPClient) []string {
		var out []string
		for _, s := range c.Stanzas() {
			if s.Kind() == "message" && s.Type() == "groupchat" && s.From() == w.room.String()+"/bob (libera)" {
				out = append(out, s.Body())
			}
		}
		return out
	}
	// The room's archive replays to carol what came before she joined,
	// with the same stanza-id; a message sent twice would have two.
	copies := map[string]map[string]bool{}
	for _, c := range []*testenv.XMPPClient{before, after} {
		for _, s := range c.Stanzas() {
			if s.Kind() == "message" && s.From() == w.room.String()+"/bob (libera)" {
				if copies[s.Body()] == nil {
					copies[s.Body()] = map[string]bool{}
				}
				copies[s.Body()][s.StanzaID(w.room.String())] = true
			}
		}
	}
	for i := 1; i <= n; i++ {
		if text := fmt.Sprintf("stream %02d", i); len(copies[text]) != 1 {
			t.Errorf("%q sent %d times", text, len(copies[text]))
		}
	}
	if got := bodies(after); !slices.IsSorted(got) {
		t.Errorf("out of order after the restart: %q", got)
	}
}

// Test 8: relay mode through an ordinary account.
func TestXMPPRelayMode(t *testing.T) {
	w := newXWorld(t)
	runSwitchboard(t, w.config(t, "relay"))
	bob := w.human(t, "bob")
	alice := w.person(t, "alice")
	bob.Say(room, "hi from irc")
	alice.WaitMessage(patience, groupchatFrom(w.room, "switchboard", "<bob> hi from irc"))
	if _, err := alice.Say(w.room, "hi from xmpp"); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "alice[jabber]", "hi from xmpp")
}
