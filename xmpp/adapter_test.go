package xmpp

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestInboundMessage: a room message becomes a Message whose remote id is
// the room's stanza-id, from the occupant's real JID.
func TestInboundMessage(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "inbound")
	a, _ := newTestAdapter(t, srv, setup{})
	rec := start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	id := alice.say("hello <&> *world*")
	sid := alice.stanzaIDOf(id)
	m := waitEvent(t, rec, func(m *bridge.Message) bool { return strings.HasPrefix(m.Text, "hello") })
	if m.Text != "hello <&> *world*" || m.HTML != "hello &lt;&amp;&gt; <b>world</b>" {
		t.Errorf("text %q html %q", m.Text, m.HTML)
	}
	if m.Origin != (bridge.Origin{Network: "jabber", Room: room, RemoteID: sid}) {
		t.Errorf("origin %+v, want remote id %s", m.Origin, sid)
	}
	// The room shows her real JID: the server vouches for it.
	if m.Sender != (bridge.Sender{Network: "jabber", ID: "alice@localhost", Name: "Alice", Authenticated: true}) {
		t.Errorf("sender %+v", m.Sender)
	}
}

// TestPuppetSend: a foreign sender's message comes from their own
// occupant, whose real JID is on the component's domain, and Send
// returns the room's stanza-id.
func TestPuppetSend(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "puppet")
	a, _ := newTestAdapter(t, srv, setup{})
	rec := start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	bob := foreign("libera", "Bob", "bob")
	m := message(bob, "hi from IRC")
	remote := send(t, a, room, m)
	st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "hi from IRC" })
	if st.Nick() != "bob (libera)" {
		t.Errorf("from nick %q, want %q", st.Nick(), "bob (libera)")
	}
	if sid := st.StanzaID(alice.room.String()); sid == "" || sid != remote {
		t.Errorf("Send returned %q, the room's stanza-id is %q", remote, sid)
	}
	// The puppet's real JID, visible in this non-anonymous room.
	pres, err := alice.c.WaitFor(waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.Nick() == "bob (libera)"
	})
	if err != nil {
		t.Fatal(err)
	}
	item := pres.Child("http://jabber.org/protocol/muc#user", "x").Child("", "item")
	if got, want := item.AttrValue("jid"), "^bob%libera@"+srv.Component; got != want {
		t.Errorf("puppet real JID %q, want %q", got, want)
	}
	if st.ID() != "sb-"+string(m.ID) || st.Child("urn:xmpp:sid:0", "origin-id").AttrValue("id") != st.ID() {
		t.Errorf("message id and origin-id are not derived from the event id %s: %s", m.ID, st.Raw)
	}
	// A retry of the same event is not sent again.
	if again := send(t, a, room, m); again != remote {
		t.Errorf("retry returned %q, first send %q", again, remote)
	}
	alice.say("marker")
	waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "marker" })
	for _, m := range rec.Messages() {
		if m.Text == "hi from IRC" {
			t.Errorf("our own message came back as an event: %+v", m.Sender)
		}
	}
	copies := 0
	for _, s := range alice.c.Stanzas() {
		if s.Body() == "hi from IRC" {
			copies++
		}
	}
	if copies != 1 {
		t.Errorf("alice saw the message %d times", copies)
	}
}

// TestHistoryNotBridged: what was said before the adapter joined does not
// arrive, even for a client that asks the room for history.
func TestHistoryNotBridged(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "history")
	alice := joinHuman(t, srv, "alice", room, "Alice")
	for _, text := range []string{"old one", "old two", "old three"} {
		alice.stanzaIDOf(alice.say(text))
	}
	a, _ := newTestAdapter(t, srv, setup{})
	rec := start(t, a, room)
	alice.say("new one")
	waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "new one" })
	for _, m := range rec.Messages() {
		if strings.HasPrefix(m.Text, "old") {
			t.Errorf("history bridged: %q", m.Text)
		}
	}
}

// TestCorrections: XEP-0308 corrections name the client id of the
// original; the Edit refers to the stanza-id the bridge knows. A
// correction of someone else's message keeps its true sender.
func TestCorrections(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "correct")
	a, _ := newTestAdapter(t, srv, setup{})
	rec := start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	mallory := joinHuman(t, srv, "mallory", room, "Mallory")
	id := alice.say("helo")
	sid := alice.stanzaIDOf(id)
	alice.say("hello", `<replace xmlns="urn:xmpp:message-correct:0" id="`+id+`"/>`)
	ed := waitEvent(t, rec, func(e *bridge.Edit) bool { return e.Text == "hello" })
	if ed.Target.Remote != sid || ed.Sender.ID != "alice@localhost" {
		t.Errorf("edit target %+v sender %+v, want %s from alice", ed.Target, ed.Sender, sid)
	}
	// A second correction may name the first correction or the original.
	alice.say("hello!", `<replace xmlns="urn:xmpp:message-correct:0" id="`+id+`"/>`)
	ed2 := waitEvent(t, rec, func(e *bridge.Edit) bool { return e.Text == "hello!" })
	if ed2.Target.Remote != sid {
		t.Errorf("second edit target %+v, want %s", ed2.Target, sid)
	}
	mallory.say("forged", `<replace xmlns="urn:xmpp:message-correct:0" id="`+id+`"/>`)
	forged := waitEvent(t, rec, func(e *bridge.Edit) bool { return e.Text == "forged" })
	if forged.Target.Remote != sid || forged.Sender.ID != "mallory@localhost" {
		t.Errorf("forged edit target %+v sender %+v: the sender must be mallory", forged.Target, forged.Sender)
	}
}

// TestRepliesReactionsRetractions maps XEP-0461, XEP-0444 (set diffing)
// and XEP-0424 onto the bridge's events.
func TestRepliesReactionsRetractions(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "rrr")
	a, _ := newTestAdapter(t, srv, setup{})
	rec := start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	bob := joinHuman(t, srv, "bob", room, "Bob")
	origID := alice.say("original")
	sid := alice.stanzaIDOf(origID)

	bob.say("> Alice: original\nthe reply",
		`<reply xmlns="urn:xmpp:reply:0" to="`+room+`/Alice" id="`+sid+`"/>`,
		`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="18"/></fallback>`)
	reply := waitEvent(t, rec, func(m *bridge.Message) bool { return strings.Contains(m.Text, "the reply") })
	if reply.Text != "the reply" || reply.ReplyTo.Remote != sid {
		t.Errorf("reply text %q to %+v, want %q to %s", reply.Text, reply.ReplyTo, "the reply", sid)
	}

	// A client that names the original by its client id is understood too.
	bob.say("second reply", `<reply xmlns="urn:xmpp:reply:0" id="`+origID+`"/>`)
	reply2 := waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "second reply" })
	if reply2.ReplyTo.Remote != sid {
		t.Errorf("reply by client id refers to %+v, want %s", reply2.ReplyTo, sid)
	}

	react := func(keys ...string) {
		x := `<reactions xmlns="urn:xmpp:reactions:0" id="` + sid + `">`
		for _, k := range keys {
			x += "<reaction>" + k + "</reaction>"
		}
		bob.say("", x+"</reactions>", `<store xmlns="urn:xmpp:hints"/>`)
	}
	react("👍", "🎉")
	react("🎉", "❤")
	waitEvent(t, rec, func(r *bridge.Reaction) bool { return r.Key == "👍" && r.Remove })
	var got []string
	for _, r := range eventsOf[*bridge.Reaction](rec) {
		if r.Target.Remote != sid || r.Sender.ID != "bob@localhost" {
			t.Errorf("reaction %+v", r)
		}
		sign := "+"
		if r.Remove {
			sign = "-"
		}
		got = append(got, sign+r.Key)
	}
	if want := "+👍 +🎉 +❤ -👍"; strings.Join(got, " ") != want {
		t.Errorf("reactions %q, want %q", strings.Join(got, " "), want)
	}

	alice.say(retractFallback, `<retract xmlns="urn:xmpp:message-retract:1" id="`+sid+`"/>`,
		`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/>`, `<store xmlns="urn:xmpp:hints"/>`)
	del := waitEvent(t, rec, func(d *bridge.Delete) bool { return true })
	if del.Target.Remote != sid || del.Sender.ID != "alice@localhost" {
		t.Errorf("delete %+v from %+v", del.Target, del.Sender)
	}
	for _, m := range rec.Messages() {
		if m.Text == retractFallback {
			t.Error("the retraction's fallback body was bridged as a message")
		}
	}
}

// TestHostileText: markup from another network arrives as literal text,
// and control characters never reach the stream.
func TestHostileText(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "hostile")
	a, _ := newTestAdapter(t, srv, setup{})
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	mallory := foreign("libera", "mallory", "<b>mal</b>")
	send(t, a, room, message(mallory, `<b>&amp;</b> ]]> '"`+"\x00\x01"))
	st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.HasPrefix(s.Body(), "<b>") })
	if st.Body() != `<b>&amp;</b> ]]> '"` {
		t.Errorf("body %q", st.Body())
	}
	if st.Child("", "b") != nil {
		t.Errorf("text became markup: %s", st.Raw)
	}
	send(t, a, room, message(mallory, "still here"))
	alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "still here" })
}

// TestOutboundChanges: edits, replies, reactions and retractions from
// other networks reach XMPP in their native forms, from the puppet.
func TestOutboundChanges(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "outbound")
	a, _ := newTestAdapter(t, srv, setup{})
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	bob := foreign("libera", "bob", "bob")
	orig := message(bob, "teh original")
	remote := send(t, a, room, orig)

	edit := &bridge.Edit{Header: bridge.Header{ID: bridge.NewEventID(), Sender: bob}, Target: bridge.Ref{Event: orig.ID}, Text: "the *original*", HTML: "the <b>original</b>"}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.SendEdit(ctx, &bridge.Delivery{Room: room, Event: edit, Target: remote})
	})
	st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "the *original*" })
	if r := st.Child(nsCorrect, "replace"); r.AttrValue("id") != msgID(orig.ID) || st.Nick() != "bob (libera)" {
		t.Errorf("correction: %s", st.Raw)
	}

	reply := message(bob, "a reply")
	reply.ReplyTo = bridge.Ref{Event: orig.ID}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.SendReply(ctx, &bridge.Delivery{Room: room, Event: reply, Reply: &bridge.Quote{RemoteID: remote, SenderName: "bob", Text: "the original"}})
	})
	st = alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.HasSuffix(s.Body(), "a reply") })
	if st.Body() != "> bob: the original\na reply" {
		t.Errorf("reply body %q", st.Body())
	}
	if r := st.Child(nsReply, "reply"); r.AttrValue("id") != remote || r.AttrValue("to") != room+"/bob (libera)" {
		t.Errorf("reply element: %s", st.Raw)
	}
	if fb := st.Child(nsFallback, "fallback").Child("", "body"); fb.AttrValue("end") != "20" {
		t.Errorf("fallback: %s", st.Raw)
	}

	carol := foreign("libera", "carol", "carol")
	react := func(key string, remove bool) {
		ev := &bridge.Reaction{Header: bridge.Header{ID: bridge.NewEventID(), Sender: carol}, Target: bridge.Ref{Event: orig.ID}, Key: key, Remove: remove}
		deliver(t, func(ctx context.Context) (string, error) {
			return a.SendReaction(ctx, &bridge.Delivery{Room: room, Event: ev, Target: remote})
		})
	}
	reactionsOf := func(s testenv.XMPPStanza) string {
		var keys []string
		for _, k := range s.Child(nsReactions, "reactions").ChildrenNamed("", "reaction") {
			keys = append(keys, k.Text)
		}
		return strings.Join(keys, " ")
	}
	react("👍", false)
	react("🎉", false)
	react("👍", true)
	from := 0
	for _, want := range []string{"👍", "👍 🎉", "🎉"} {
		i, st, err := alice.c.WaitIndex(from, waitFor, func(s testenv.XMPPStanza) bool {
			return s.Child(nsReactions, "reactions") != nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := reactionsOf(st); got != want || st.Nick() != "carol (libera)" || st.Child(nsReactions, "reactions").AttrValue("id") != remote {
			t.Errorf("reaction set %q from %s, want %q: %s", got, st.Nick(), want, st.Raw)
		}
		from = i + 1
	}

	del := &bridge.Delete{Header: bridge.Header{ID: bridge.NewEventID(), Sender: bob}, Target: bridge.Ref{Event: orig.ID}}
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendDelete(ctx, &bridge.Delivery{Room: room, Event: del, Target: remote})
	})
	st = alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Child(nsRetract, "retract") != nil })
	if st.Child(nsRetract, "retract").AttrValue("id") != remote || st.Nick() != "bob (libera)" ||
		st.Child(nsFasten, "apply-to").AttrValue("id") != msgID(orig.ID) {
		t.Errorf("retraction: %s", st.Raw)
	}
}

// TestDirectChat: an XMPP user's chat message to a puppet JID is a direct
// message to the sender it stands for, and direct events reach XMPP users
// from the sender's puppet.
func TestDirectChat(t *testing.T) {
	srv := newServer(t)
	a, _ := newTestAdapter(t, srv, setup{})
	rec := start(t, a)
	alice := srv.Client(t, "alice", testUsers["alice"])
	bob := foreign("libera", "Bob|away", "Bob")
	pj, err := puppetJID(bob, srv.Component)
	if err != nil {
		t.Fatal(err)
	}
	id, err := alice.Chat(pj, "psst, bob")
	if err != nil {
		t.Fatal(err)
	}
	m := waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "psst, bob" })
	if m.To == nil || *m.To != (bridge.Sender{Network: "libera", ID: "Bob|away"}) {
		t.Errorf("to %+v", m.To)
	}
	if m.Origin != (bridge.Origin{Network: "jabber", RemoteID: id}) || m.Sender.ID != "alice@localhost" || m.Sender.Name != "alice" {
		t.Errorf("origin %+v sender %+v", m.Origin, m.Sender)
	}

	answer := message(bob, "hi alice")
	answer.To = &bridge.Sender{Network: "jabber", ID: "alice@localhost"}
	remote := deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Link: bridge.DirectLink, Event: answer})
	})
	st := alice.WaitMessage(waitFor, func(s testenv.XMPPStanza) bool { return s.Body() == "hi alice" })
	if st.Type() != "chat" || !strings.HasPrefix(st.From(), pj.String()) || remote != st.ID() {
		t.Errorf("direct message %s, remote id %q", st.Raw, remote)
	}
}

// TestMembership: occupants joining, changing nick and leaving become
// Join, Rename and Leave events; our own puppets never do.
func TestMembership(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "members")
	a, _ := newTestAdapter(t, srv, setup{})
	rec := start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	j := waitEvent(t, rec, func(j *bridge.Join) bool { return true })
	if j.Sender.ID != "alice@localhost" || j.Sender.Name != "Alice" || j.Origin.Room != room {
		t.Errorf("join %+v", j.Header)
	}
	if err := alice.c.Join(alice.room, "Alicia"); err != nil {
		t.Fatal(err)
	}
	rn := waitEvent(t, rec, func(r *bridge.Rename) bool { return true })
	if rn.Previous != "Alice" || rn.Sender.Name != "Alicia" || rn.Sender.ID != "alice@localhost" {
		t.Errorf("rename %+v previous %q", rn.Sender, rn.Previous)
	}
	alice.c.Send("presence", []string{"to", room + "/Alicia"}, "", "<show>away</show><status>lunch</status>")
	pr := waitEvent(t, rec, func(p *bridge.Presence) bool { return true })
	if pr.Status != "away" || pr.Message != "lunch" {
		t.Errorf("presence %+v", pr)
	}
	alice.say("", `<composing xmlns="http://jabber.org/protocol/chatstates"/>`)
	waitEvent(t, rec, func(ty *bridge.Typing) bool { return ty.Active && ty.Sender.ID == "alice@localhost" })

	// A foreign user's puppet joins and leaves: no events for it.
	carol := foreign("libera", "carol", "carol")
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendMembership(ctx, &bridge.Delivery{Room: room, Event: &bridge.Join{Header: bridge.Header{ID: bridge.NewEventID(), Sender: carol}}})
	})
	if _, err := alice.c.WaitFor(waitFor, func(s testenv.XMPPStanza) bool { return s.Kind() == "presence" && s.Nick() == "carol (libera)" }); err != nil {
		t.Fatal(err)
	}
	hdr := func() bridge.Header { return bridge.Header{ID: bridge.NewEventID(), Sender: carol} }
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendTyping(ctx, &bridge.Delivery{Room: room, Event: &bridge.Typing{Header: hdr(), Active: true}})
	})
	alice.waitMessage(func(s testenv.XMPPStanza) bool {
		return s.Nick() == "carol (libera)" && s.Child(nsChatStates, "composing") != nil
	})
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendPresence(ctx, &bridge.Delivery{Room: room, Event: &bridge.Presence{Header: hdr(), Status: "away", Message: "brb"}})
	})
	if _, err := alice.c.WaitFor(waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.Nick() == "carol (libera)" && s.Child("", "show").TextOrEmpty() == "away" && s.Child("", "status").TextOrEmpty() == "brb"
	}); err != nil {
		t.Fatal(err)
	}
	caroline := foreign("libera", "carol", "caroline")
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendMembership(ctx, &bridge.Delivery{Room: room, Event: &bridge.Rename{Header: bridge.Header{ID: bridge.NewEventID(), Sender: caroline}, Previous: "carol"}})
	})
	if _, err := alice.c.WaitFor(waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.Nick() == "caroline (libera)" && s.Type() == ""
	}); err != nil {
		t.Fatal(err)
	}
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendMembership(ctx, &bridge.Delivery{Room: room, Event: &bridge.Leave{Header: bridge.Header{ID: bridge.NewEventID(), Sender: caroline}, Reason: "bye"}})
	})
	if _, err := alice.c.WaitFor(waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.Nick() == "caroline (libera)" && s.Type() == "unavailable"
	}); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Leave(alice.room, "Alicia"); err != nil {
		t.Fatal(err)
	}
	l := waitEvent(t, rec, func(l *bridge.Leave) bool { return true })
	if l.Sender.ID != "alice@localhost" {
		t.Errorf("leave %+v", l.Sender)
	}
	for _, ev := range rec.Events() {
		if strings.Contains(ev.Head().Sender.Name, "libera") {
			t.Errorf("our puppet's %s came back as an event", ev.Kind())
		}
	}
}
