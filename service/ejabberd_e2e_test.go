package service

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestEjabberdMUCLinkedWithIRC links a MUC on ejabberd, set up as the
// guide says (docs/snippets/ejabberd.yml: the component listener, mod_muc
// with mod_mam), with an IRC channel through the component, Switchboard
// configured as the guide says too (docs/snippets/switchboard-xmpp.yaml),
// and checks what people on both sides see: the room's history stays out of IRC,
// messages cross both ways, and corrections and replies, which name
// messages by id and by the room's stanza-id, reach IRC.
func TestEjabberdMUCLinkedWithIRC(t *testing.T) {
	w := newXWorldOn(t, testenv.EjabberdWith, testenv.XMPPServerConfig{})
	alice := w.oldNews(t)
	bob := w.human(t, "bob")
	runSwitchboard(t, w.guideConfig(t))
	carol := w.person(t, "carol")

	// XMPP to IRC, from alice's puppet; nothing said before Switchboard
	// joined follows.
	id, err := alice.Say(w.room, "helo wrld")
	if err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "alice[jabber]", "helo wrld")

	// IRC to XMPP, from bob's occupant, whose real JID (alice owns the
	// room, so she sees it) is on the component.
	bob.Say(room, "hello from irc <&>")
	fromBob := carol.WaitMessage(patience, groupchatFrom(w.room, "bob (libera)", "hello from irc <&>"))
	bobSID := fromBob.StanzaID(w.room.String())
	if bobSID == "" {
		t.Fatalf("the room stamped no stanza-id on bob's message (mod_mam): %s", fromBob.Raw)
	}
	presence, err := alice.WaitFor(patience, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.From() == w.room.String()+"/bob (libera)"
	})
	if err != nil {
		t.Fatal(err)
	}
	if real, err := jid.Parse(presence.Child("http://jabber.org/protocol/muc#user", "x").Child("", "item").AttrValue("jid")); err != nil || real.Domain().String() != w.xmpp.Component {
		t.Errorf("bob's occupant has real JID %q, want one on %s", real, w.xmpp.Component)
	}

	// A correction (XEP-0308, by message id) reaches IRC as a fallback.
	if _, err := alice.Say(w.room, "hello world", `<replace xmlns="urn:xmpp:message-correct:0" id="`+id+`"/>`); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "alice[jabber]", "* hello world")

	// Replies name their target by the room's stanza-id: one to alice's
	// message and one to bob's bridged message, whose stanza-id
	// Switchboard learnt from the room's reflection. IRC shows the quote
	// Switchboard stored for the message it found by that id, not the
	// client's own quote (which the reply's fallback element strips).
	st := carol.WaitMessage(patience, groupchatFrom(w.room, "alice", "helo wrld"))
	// alice in carol's text is a mention of her: IRC names her by her
	// puppet's nick.
	reply := func(to, sid, quote, text, onIRC string) {
		t.Helper()
		if _, err := carol.Say(w.room, quote+text,
			`<reply xmlns="urn:xmpp:reply:0" to="`+w.room.String()+`/`+to+`" id="`+sid+`"/>`,
			fmt.Sprintf(`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="%d"/></fallback>`, len([]rune(quote)))); err != nil {
			t.Fatal(err)
		}
		bob.WaitText(patience, room, "carol[jabber]", onIRC)
	}
	reply("alice", st.StanzaID(w.room.String()), "> alice wrote\n", "welcome, alice", "welcome, alice[jabber]")
	reply("bob (libera)", bobSID, "> bob wrote\n", "welcome, bob", "welcome, bob")
	want := []string{"> alice: helo wrld", "welcome, alice[jabber]", "> bob: hello from irc <&>", "welcome, bob"}
	if got := messages(bob, "carol[jabber]"); !slices.Equal(got, want) {
		t.Errorf("IRC shows carol's replies as %q, want %q", got, want)
	}
	noOldNews(t, bob)
}

// guideConfig is the setup guide's Switchboard config
// (docs/snippets/switchboard-xmpp.yaml) with this world's servers, rooms
// and data directory, the secret from the environment as the guide has it.
func (w *xworld) guideConfig(t *testing.T) *config.Config {
	t.Helper()
	t.Setenv("JABBER_COMPONENT_SECRET", w.xmpp.ComponentSecret)
	text := testenv.Snippet(t, "switchboard-xmpp.yaml", map[string]string{
		"data_dir: /var/lib/switchboard": "data_dir: " + strconv.Quote(w.dir) + "\nhttp: { listen: \"127.0.0.1:0\" }",
		"irc.example.org:6697":           w.irc.Addr,
		"tls: true":                      "tls: false",
		"127.0.0.1:5347":                 w.xmpp.ComponentAddr,
		"bridge.example.org":             w.xmpp.Component,
		`"libera:#lobby"`:                strconv.Quote("libera:" + room),
		"lobby@conference.example.org":   w.room.String(),
	})
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("the guide's config: %v\n%s", err, text)
	}
	return cfg
}
