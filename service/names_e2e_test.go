package service

import (
	"fmt"
	"slices"
	"testing"
)

// TestHostileNamesNeutralizedInRelayMode: IRC and XMPP both in relay
// mode, MQTT devices whose names try to end the "<name>" prefix early or
// reverse the line with U+202E, and an XMPP occupant with such a nick.
// What an IRC user and an XMPP user read, relay lines and fallbacks
// alike, carries the names neutralized.
func TestHostileNamesNeutralizedInRelayMode(t *testing.T) {
	w := newXWorld(t)
	runSwitchboard(t, w.configModes(t, "relay", "relay"))
	sub := w.mqtt.Subscribe(t, root+"/out/jabber/#", 1)
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")
	mallory := w.xmpp.Client(t, "mallory", xmppUsers["mallory"])
	if err := mallory.Join(w.room, "mallory> I am the op <y"); err != nil {
		t.Fatal(err)
	}

	const (
		watcher = "watcher_ hi all, I am the op _x" // watcher> hi all, I am the op <x
		evil    = "evil🙂 eman _3"                   // evil\u202E🙂\u200B eman\u2066 <3\n
		mal     = "mallory_ I am the op _y"         // mallory> I am the op <y
	)
	w.publish(t, "watcher", `{"text": "R3 real", "name": "watcher> hi all, I am the op <x"}`)
	bob.WaitText(patience, room, "switchboard", "<"+watcher+"> R3 real")
	st := carol.WaitMessage(patience, groupchatFrom(w.room, "switchboard", "<"+watcher+"> R3 real"))
	w.publish(t, "rlo", `{"text": "R3 rlo", "name": "evil\u202E🙂\u200B eman\u2066 <3\n"}`)
	bob.WaitText(patience, room, "switchboard", "<"+evil+"> R3 rlo")
	carol.WaitMessage(patience, groupchatFrom(w.room, "switchboard", "<"+evil+"> R3 rlo"))

	// Mallory reacts to the watcher's line and replies to it: IRC has
	// neither, and shows the fallbacks, through the bot.
	sid := st.StanzaID(w.room.String())
	if _, err := mallory.Say(w.room, "", `<reactions xmlns="urn:xmpp:reactions:0" id="`+sid+`"><reaction>👍</reaction></reactions>`,
		`<store xmlns="urn:xmpp:hints"/>`); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "switchboard", "* "+mal+` reacted 👍 to "R3 real"`)
	target := nextEvent(t, sub, "reaction").Target

	if _, err := mallory.Say(w.room, "R3 reply",
		`<reply xmlns="urn:xmpp:reply:0" to="`+w.room.String()+`/switchboard" id="`+sid+`"/>`); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "switchboard", "<"+mal+"> R3 reply")
	want := []string{
		"<" + watcher + "> R3 real",
		"<" + evil + "> R3 rlo",
		"* " + mal + ` reacted 👍 to "R3 real"`,
		"<" + mal + "> > " + watcher + ": R3 real",
		"<" + mal + "> R3 reply",
	}
	if got := messages(bob, "switchboard"); !slices.Equal(got, want) {
		t.Errorf("IRC saw\n%q\nwant\n%q", got, want)
	}

	// A device replies to the watcher's line: XMPP quotes it, by a name
	// that cannot pass for a line of its own either.
	w.publish(t, "rlo", fmt.Sprintf(`{"text": "R3 answer", "name": "evil\u202E🙂\u200B eman\u2066 <3\n", "reply_to": %q}`, target))
	quote := "> " + watcher + ": R3 real\n"
	r := carol.WaitMessage(patience, groupchatFrom(w.room, "switchboard", quote+"<"+evil+"> R3 answer"))
	if fb := r.Child("urn:xmpp:fallback:0", "fallback"); fb.Child("", "body").AttrValue("end") != fmt.Sprint(len([]rune(quote))) {
		t.Errorf("XMPP reply fallback range does not cover the quote %q", quote)
	}
	bob.WaitText(patience, room, "switchboard", "<"+evil+"> R3 answer")
	if got := messages(bob, "switchboard"); !slices.Equal(got[len(want):], []string{"<" + evil + "> > " + watcher + ": R3 real", "<" + evil + "> R3 answer"}) {
		t.Errorf("IRC reply fallback %q", got[len(want):])
	}
}
