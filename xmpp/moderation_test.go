package xmpp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Against Prosody with Debian's mod_muc_moderation (XEP-0425 in its
// urn:xmpp:message-moderate:0 form): a moderator's delete from another
// network fails for good while the bot is no moderator of the room, and
// is carried out as a moderation once it is; the room's announcement of
// that moderation is not bridged back, while a moderation by someone in
// the room becomes a moderator's delete.
func TestModeration(t *testing.T) {
	srv := testenv.ProsodyWith(t, testenv.XMPPServerConfig{Users: testUsers, MUCModules: []string{"muc_moderation"}})
	room := newRoomName(srv, "mod")
	alice := joinHuman(t, srv, "alice", room, "Alice") // the room's owner
	a, _ := newTestAdapter(t, srv, setup{})
	rec := start(t, a, room)
	bob := joinHuman(t, srv, "bob", room, "Bob")
	spam := []string{bob.stanzaIDOf(bob.say("spam 1")), bob.stanzaIDOf(bob.say("spam 2"))}

	mod := foreign("mx", "@mod:hs", "mod")
	del := &bridge.Delete{Header: message(mod, "").Header, Target: bridge.Ref{Event: bridge.NewEventID()}, Moderator: true}
	moderate := func(ctx context.Context) (string, error) {
		return "", a.SendDelete(ctx, &bridge.Delivery{Link: "test", Room: room, Event: del, Target: spam[0]})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := moderate(ctx); !errorsIsPermanent(err) || !strings.Contains(err.Error(), "not a moderator") {
		t.Fatalf("moderating without being a moderator: %v, want a permanent failure saying so", err)
	}

	if res, err := alice.c.IQ(alice.room, "set", `<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='`+srv.Component+`'/></query>`); err != nil || res.Type() != "result" {
		t.Fatalf("making the component an admin: %v %v", res, err)
	}
	deliver(t, moderate)
	announced := func(sid string) func(testenv.XMPPStanza) bool {
		return func(s testenv.XMPPStanza) bool {
			m := s.Child("urn:xmpp:fasten:0", "apply-to")
			return s.From() == room && m.AttrValue("id") == sid &&
				m.Child("urn:xmpp:message-moderate:0", "moderated").Child("urn:xmpp:message-retract:0", "retract") != nil
		}
	}
	got := bob.c.WaitMessage(waitFor, announced(spam[0]))
	if by := got.Child("urn:xmpp:fasten:0", "apply-to").Child("urn:xmpp:message-moderate:0", "moderated").AttrValue("by"); !strings.HasPrefix(by, room+"/") {
		t.Errorf("moderated by %q, want the bot's occupant", by)
	}

	if res, err := alice.c.IQ(alice.room, "set", `<apply-to xmlns='urn:xmpp:fasten:0' id='`+spam[1]+`'>
		<moderate xmlns='urn:xmpp:message-moderate:0'><retract xmlns='urn:xmpp:message-retract:0'/></moderate></apply-to>`); err != nil || res.Type() != "result" {
		t.Fatalf("alice's moderation: %v %v", res, err)
	}
	d := waitEvent(t, rec, func(d *bridge.Delete) bool { return true })
	if d.Target.Remote != spam[1] || !d.Moderator || d.Sender.Name != "Alice" || d.Sender.ID != "alice@localhost" {
		t.Errorf("alice's moderation bridged as %+v (target %+v, moderator %v), want her moderator's delete of %s", d.Sender, d.Target, d.Moderator, spam[1])
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(eventsOf[*bridge.Delete](rec)); n != 1 {
		t.Errorf("%d deletes bridged, want alice's alone: the bot's own moderation must not come back", n)
	}
}
