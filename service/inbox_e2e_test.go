package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// Issue 22, tests 1 and 2: the one inbox, with alice's home on Matrix.
// bob on IRC writes privately to her nick, which her personal connection
// holds, and carol on XMPP to her JID, which her session holds: alice
// gets each in a Matrix DM room with the writer's ghost, and her answers
// there reach bob as a PM from her own nick (logged in to her account)
// and carol as a chat from her own JID. After a restart the
// conversations go on in the same DM rooms.
func TestOneInboxOnMatrix(t *testing.T) {
	w := newPWorld(t, alicePeople)
	bob := w.human(t, "bob")
	carol := w.xmpp.Client(t, "carol", xmppUsers["carol"])
	aliceJID := jid.MustParse("alice@localhost")

	// Test 1: an IRC PM to her nick.
	bob.Say("alice", "hi alice, a private word")
	ircDM, ghostBob := w.inboxMessage(t, "", "hi alice, a private word")
	if ghostBob == w.alice.UserID || !strings.HasPrefix(ghostBob.Localpart(), "sb_") {
		t.Errorf("bob's PM came from %s, want his ghost", ghostBob)
	}
	w.alice.Text(ircDM, "hi bob, from my Matrix")
	bob.WaitText(patience, "bob", "alice", "hi bob, from my Matrix")
	wantLoggedIn(t, bob, "alice", "alice") // her own connection, not a puppet

	// Test 2: a chat to her JID.
	if _, err := carol.Chat(aliceJID, "hello alice, carol here"); err != nil {
		t.Fatal(err)
	}
	xmppDM, ghostCarol := w.inboxMessage(t, ircDM, "hello alice, carol here")
	if xmppDM == ircDM || ghostCarol == ghostBob || !strings.HasPrefix(ghostCarol.Localpart(), "sb_") {
		t.Errorf("carol's chat came in %s from %s, want a DM room of her own ghost", xmppDM, ghostCarol)
	}
	w.alice.Text(xmppDM, "hi carol")
	if st := waitChat(t, carol, 0, "hi carol"); !strings.HasPrefix(st.From(), aliceJID.String()+"/") {
		t.Errorf("carol got alice's answer from %q, want her own JID alice@localhost/…", st.From())
	}

	// A restart: the same DM rooms, and answers still from her accounts.
	w.stop()
	w.svc, w.stop = runService(t, w.config(t, ""))
	testwait.For(t, "alice's IRC and XMPP accounts up again", func() bool {
		up := 0
		for _, n := range getStatus(t, w.svc).Networks {
			if (n.Name == "libera" || n.Name == "jabber") && n.People["alice"] == "connected" {
				up++
			}
		}
		return up == 2
	})
	mark := len(w.alice.Events())
	bob.Say("alice", "still there?")
	ev := w.waitMatrixFrom(t, mark, "bob's second PM", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "still there?"
	})
	if ev.RoomID != ircDM || ev.Sender != ghostBob {
		t.Errorf("after a restart bob's PM came in %s from %s, want the same DM room %s from %s", ev.RoomID, ev.Sender, ircDM, ghostBob)
	}
	w.alice.Text(ircDM, "yes, still here")
	bob.WaitText(patience, "bob", "alice", "yes, still here")

	from := carol.Len()
	if _, err := carol.Chat(aliceJID, "and me?"); err != nil {
		t.Fatal(err)
	}
	ev = w.waitMatrixFrom(t, mark, "carol's second chat", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "and me?"
	})
	if ev.RoomID != xmppDM || ev.Sender != ghostCarol {
		t.Errorf("after a restart carol's chat came in %s from %s, want the same DM room %s from %s", ev.RoomID, ev.Sender, xmppDM, ghostCarol)
	}
	w.alice.Text(xmppDM, "you too")
	if st := waitChat(t, carol, from, "you too"); !strings.HasPrefix(st.From(), aliceJID.String()+"/") {
		t.Errorf("carol got alice's answer from %q, want alice@localhost/…", st.From())
	}

	// What services say to her nick is not a conversation: no DM room
	// of NickServ's ghost (NickServ greeted both her logins).
	for _, e := range w.alice.Events() {
		if c, ok := messageText(e); ok && e.RoomID != ircDM && e.RoomID != xmppDM && e.RoomID != w.roomID {
			t.Errorf("a message in another room %s from %s: %q", e.RoomID, e.Sender, c.Body)
		}
	}
	if n := len(bob.Messages(func(l testenv.IRCLine) bool { return l.Target() == "bob" && l.Nick() == "alice" })); n != 2 {
		t.Errorf("bob got %d PMs from alice, want 2 (nothing twice)", n)
	}
}

// inboxMessage waits for the invite of a DM room other than the linked
// room and other (""), joins it as alice and waits there for text; it
// returns the room and who sent it.
func (w *mworld) inboxMessage(t *testing.T, other id.RoomID, text string) (id.RoomID, id.UserID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	dm, err := w.alice.WaitInvite(ctx, func(r id.RoomID) bool { return r != w.roomID && r != other })
	if err != nil {
		t.Fatalf("no DM room for %q: %v", text, err)
	}
	w.alice.Join(string(dm))
	ev := w.waitMatrix(t, text, func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && ev.RoomID == dm && c.Body == text
	})
	return dm, ev.Sender
}

// waitMatrixFrom is waitMatrix for the events after the first from.
func (w *mworld) waitMatrixFrom(t *testing.T, from int, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ev, _, err := w.alice.WaitFor(ctx, from, match)
	if err != nil {
		t.Fatalf("alice never saw %s: %v", what, err)
	}
	return ev
}

// waitChat waits for a one-to-one chat with body among c's stanzas from
// index from.
func waitChat(t *testing.T, c *testenv.XMPPClient, from int, body string) testenv.XMPPStanza {
	t.Helper()
	st, err := c.WaitFrom(from, patience, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "message" && s.Type() == "chat" && s.Body() == body
	})
	if err != nil {
		t.Fatalf("no chat %q: %v", body, err)
	}
	return st
}

// Issue 22, test 3: alice's home is XMPP, where she keeps a client of
// her own besides Switchboard's session. bob's PM to her IRC nick
// reaches that client as a chat from bob's puppet JID (her session,
// available at a negative priority, gets none of it), and her answer to
// the puppet reaches bob as a PM from her own nick.
func TestOneInboxOnXMPP(t *testing.T) {
	w := newPWorld(t, strings.Replace(alicePeople, "home: mx", "home: jabber", 1))
	bob := w.human(t, "bob")
	laptop := w.xmpp.Client(t, "alice", xmppUsers["alice"])

	bob.Say("alice", "hi alice on XMPP")
	st := waitChat(t, laptop, 0, "hi alice on XMPP")
	puppet, err := jid.Parse(st.From())
	if err != nil || puppet.Domainpart() != w.xmpp.Component || !strings.Contains(puppet.Localpart(), "bob") {
		t.Fatalf("her client got bob's PM from %q, want bob's puppet JID on %s", st.From(), w.xmpp.Component)
	}
	if _, err := laptop.Chat(puppet.Bare(), "hi bob, from my XMPP client"); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, "bob", "alice", "hi bob, from my XMPP client")
	wantLoggedIn(t, bob, "alice", "alice")

	// Once each, and nothing on Matrix, which is not her home.
	got := 0
	for _, s := range laptop.Stanzas() {
		if s.Kind() == "message" && s.Body() == "hi alice on XMPP" {
			got++
		}
	}
	if got != 1 {
		t.Errorf("her client got bob's PM %d times, want once", got)
	}
	for _, e := range w.alice.Events() {
		if c, ok := messageText(e); ok && e.RoomID != w.roomID {
			t.Errorf("Matrix, not her home, got %q in %s", c.Body, e.RoomID)
		}
	}
}

// Issue 22, item 1's "a DM to their MXID from outside a linked room",
// with alice's home on XMPP and her Matrix user double-puppeted: dave, a
// Matrix user, opens a direct chat with @alice:localhost; Switchboard
// joins it as her, and what dave writes reaches her own XMPP client from
// dave's puppet JID; her answer there reaches dave in that same room,
// from @alice:localhost. A group chat she is in (an unlinked room of
// three), and the direct chat once a third member joined, are not
// forwarded.
func TestOneInboxMatrixDMOnXMPP(t *testing.T) {
	w := newPWorld(t, strings.Replace(alicePeople, "home: mx", "home: jabber", 1))
	laptop := w.xmpp.Client(t, "alice", xmppUsers["alice"])
	dave := w.hs.Client(t, "dave")
	erin := w.hs.Client(t, "erin")
	members := func(c *testenv.MatrixClient, rid id.RoomID) int {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		res, err := c.JoinedMembers(ctx, rid)
		if err != nil {
			return 0
		}
		return len(res.Joined)
	}

	dm := dave.NewDM(w.alice.UserID)
	testwait.For(t, "alice's user joined dave's direct chat", func() bool { return members(dave, dm) == 2 })
	dave.Text(dm, "hi alice, dave on Matrix")
	st := waitChat(t, laptop, 0, "hi alice, dave on Matrix")
	puppet, err := jid.Parse(st.From())
	if err != nil || puppet.Domainpart() != w.xmpp.Component || !strings.Contains(puppet.Localpart(), "dave") {
		t.Fatalf("her client got dave's message from %q, want dave's puppet JID on %s", st.From(), w.xmpp.Component)
	}
	mark := len(dave.Events())
	if _, err := laptop.Chat(puppet.Bare(), "hi dave, from my XMPP client"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ev, _, err := dave.WaitFor(ctx, mark, func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "hi dave, from my XMPP client"
	})
	if err != nil {
		t.Fatalf("dave never got alice's answer: %v", err)
	}
	if ev.RoomID != dm || ev.Sender != w.alice.UserID {
		t.Errorf("dave got alice's answer in %s from %s, want their direct chat %s from %s", ev.RoomID, ev.Sender, dm, w.alice.UserID)
	}

	// A group chat: three members, no is_direct; her Matrix client joins.
	group := dave.NewRoom(false, "", w.alice.UserID, erin.UserID)
	w.alice.Join(string(group))
	erin.Join(string(group))
	testwait.For(t, "three in the group chat", func() bool { return members(dave, group) == 3 })
	dave.Text(group, "group talk, not for her inbox")
	// The direct chat turned group: erin invited and joined.
	dave.Invite(dm, erin.UserID)
	erin.Join(string(dm))
	testwait.For(t, "three in the former direct chat", func() bool { return members(dave, dm) == 3 })
	dave.Text(dm, "three of us now")
	// A last direct message, after both, tells that they were read.
	dm2 := erin.NewDM(w.alice.UserID)
	testwait.For(t, "alice's user joined erin's direct chat", func() bool { return members(erin, dm2) == 2 })
	erin.Text(dm2, "erin, privately")
	waitChat(t, laptop, 0, "erin, privately")
	time.Sleep(time.Second)
	for _, s := range laptop.Stanzas() {
		if s.Kind() == "message" && (s.Body() == "group talk, not for her inbox" || s.Body() == "three of us now") {
			t.Errorf("a group chat's message reached her inbox: %q from %s", s.Body(), s.From())
		}
		if s.Kind() == "message" && s.Body() == "hi dave, from my XMPP client" {
			t.Errorf("her own answer came back to her client from %s", s.From())
		}
	}

	// She left erin's direct chat (from a Matrix client of hers): her
	// answer to erin comes from her ghost, in a new room.
	w.alice.Leave(dm2)
	testwait.For(t, "alice out of erin's direct chat", func() bool { return members(erin, dm2) == 1 })
	st = waitChat(t, laptop, 0, "erin, privately")
	ctx2, cancel2 := context.WithTimeout(context.Background(), patience)
	defer cancel2()
	if _, err := laptop.Chat(jid.MustParse(st.From()).Bare(), "erin, after I left"); err != nil {
		t.Fatal(err)
	}
	ghostDM, err := erin.WaitInvite(ctx2, func(r id.RoomID) bool { return r != dm && r != dm2 && r != group })
	if err != nil {
		t.Fatalf("erin got no new DM room after alice left theirs: %v", err)
	}
	erin.Join(string(ghostDM))
	ev, _, err = erin.WaitFor(ctx2, 0, func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "erin, after I left"
	})
	if err != nil {
		t.Fatalf("erin never got alice's answer after she left: %v", err)
	}
	if ev.RoomID != ghostDM || ev.Sender == w.alice.UserID || !strings.HasPrefix(ev.Sender.Localpart(), "sb_") {
		t.Errorf("erin got alice's answer in %s from %s, want the new room %s from her ghost", ev.RoomID, ev.Sender, ghostDM)
	}
}
