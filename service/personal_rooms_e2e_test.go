package service

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// Issue 21, item 3, with every server at once: alice's personal
// connections are in the rooms of the links she takes part in, and in
// no other. She speaks in link one's Matrix room: her own IRC nick is in
// its channel and her own occupant in its MUC, neither in link two's.
// She leaves the Matrix room: they part. She comes back without a word:
// they join again. Switchboard restarts on the same store: they go back
// into link one's rooms without her speaking again.
func TestPersonalConnectionsFollowTheLinksSheTakesPartIn(t *testing.T) {
	w := newPWorld(t, alicePeople)
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")
	// Link two, made at runtime: an IRC channel and a MUC, with someone
	// in each who would see her come.
	two := w.xmpp.Room("two")
	bob.Join("#two")
	mallory := w.xmpp.Client(t, "mallory", xmppUsers["mallory"])
	if err := mallory.Join(two, "mallory"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := w.svc.CreateLink(ctx, "two", []string{"libera:#two", "jabber:" + two.String()}); err != nil {
		t.Fatal(err)
	}

	// She comes and goes in the MUCs as "Alice", her name.
	aliceIn := func(c *testenv.XMPPClient, from int, room jid.JID, typ string) error {
		_, err := c.WaitFrom(from, patience, func(s testenv.XMPPStanza) bool {
			return s.Kind() == "presence" && s.From() == room.String()+"/Alice" && s.Type() == typ
		})
		return err
	}
	notInTwo := func(when string) {
		t.Helper()
		if slices.Contains(bob.Names(patience, "#two"), "alice") {
			t.Errorf("%s: her IRC connection is in #two, of a link she takes no part in", when)
		}
		for _, s := range mallory.Stanzas() {
			if s.Kind() == "presence" && s.From() == two.String()+"/Alice" {
				t.Errorf("%s: her XMPP session came into link two's MUC: %s", when, s.Raw)
			}
		}
	}

	w.alice.Text(w.roomID, "hello from my Matrix room")
	bob.WaitText(patience, room, "alice", "hello from my Matrix room")
	if err := aliceIn(carol, 0, w.room, ""); err != nil {
		t.Fatalf("her XMPP session is not in link one's MUC: %v", err)
	}
	if !slices.Contains(bob.Names(patience, room), "alice") {
		t.Errorf("NAMES %s does not list her nick alice", room)
	}
	notInTwo("after she spoke in link one")

	// She leaves the Matrix room: nothing of hers is in link one any more.
	ircFrom, xmppFrom := bob.Len(), carol.Len()
	w.alice.Leave(w.roomID)
	if _, err := bob.WaitFrom(ircFrom, patience, func(l testenv.IRCLine) bool {
		return l.Command == "PART" && l.Nick() == "alice" && l.Target() == room
	}); err != nil {
		t.Errorf("her IRC connection did not part %s when she left: %v", room, err)
	}
	if err := aliceIn(carol, xmppFrom, w.room, "unavailable"); err != nil {
		t.Errorf("her XMPP session did not leave link one's MUC when she left: %v", err)
	}

	// She comes back, without a word: so do they.
	ircFrom, xmppFrom = bob.Len(), carol.Len()
	w.alice.Join(string(w.roomID))
	if _, err := bob.WaitFrom(ircFrom, patience, func(l testenv.IRCLine) bool {
		return l.Command == "JOIN" && l.Nick() == "alice" && l.Target() == room
	}); err != nil {
		t.Errorf("her IRC connection did not join %s when she came back: %v", room, err)
	}
	if err := aliceIn(carol, xmppFrom, w.room, ""); err != nil {
		t.Errorf("her XMPP session did not join link one's MUC when she came back: %v", err)
	}

	// A restart on the same store: her connections come back into link
	// one's rooms, though she has said nothing since.
	w.stop()
	ircFrom, xmppFrom = bob.Len(), carol.Len()
	w.svc, w.stop = runService(t, w.config(t, ""))
	if _, err := bob.WaitFrom(ircFrom, patience, func(l testenv.IRCLine) bool {
		return l.Command == "JOIN" && l.Nick() == "alice" && l.Target() == room
	}); err != nil {
		t.Errorf("after a restart her IRC connection did not join %s: %v", room, err)
	}
	if err := aliceIn(carol, xmppFrom, w.room, ""); err != nil {
		t.Errorf("after a restart her XMPP session did not join link one's MUC: %v", err)
	}
	who := bob.Len()
	bob.Send("WHOIS", "alice")
	l, err := bob.WaitFrom(who, patience, func(l testenv.IRCLine) bool { return l.Command == "319" || l.Command == "318" })
	var chans []string
	if err == nil && l.Command == "319" {
		for _, ch := range strings.Fields(l.Text()) {
			chans = append(chans, strings.TrimLeft(ch, "~&@%+"))
		}
	}
	if !slices.Equal(chans, []string{room}) {
		t.Errorf("WHOIS alice after the restart: in %q (%v), want %s only", chans, err, room)
	}
	notInTwo("after the restart")
}

// Issue 21, item 3, for those already in a room and those who left
// while Switchboard was away. Alice made the Matrix room before
// Switchboard first started: without a word from her, her own IRC nick
// and XMPP occupant are in link one's rooms, since the Matrix adapter
// reads who is in the room when it joins. She leaves the Matrix room
// while Switchboard is stopped (it hears nothing of it): after the
// restart her IRC nick is not in the channel, nor her occupant in the
// MUC. Her own XMPP client comes into the MUC while Switchboard is
// stopped: after the restart her IRC nick is back, since the XMPP
// adapter reads the real JIDs of the MUC's occupants when it joins.
func TestPersonalConnectionsFollowWhoIsInTheMatrixRoom(t *testing.T) {
	w := newPWorld(t, alicePeople)
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")

	// (a) She has said nothing: she is there because she is a member.
	w.waitNames(t, bob, "alice is in "+room+" as a member of the Matrix room", true)
	if _, err := carol.WaitFrom(0, patience, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.From() == w.room.String()+"/Alice" && s.Type() == ""
	}); err != nil {
		t.Errorf("her XMPP session is not in link one's MUC: %v", err)
	}

	// (b) She leaves while Switchboard is stopped.
	w.stop()
	w.alice.Leave(w.roomID)
	xmppFrom := carol.Len()
	w.svc, w.stop = runService(t, w.config(t, ""))
	// The Matrix bot back in the room, her IRC connection back up: from
	// then on she is in no room of link one, and so is it.
	testwait.For(t, "the Matrix network and her IRC connection up again", func() bool {
		up := 0
		for _, n := range getStatus(t, w.svc).Networks {
			if (n.Name == "mx" && n.State == "up") || (n.Name == "libera" && n.People["alice"] == "connected") {
				up++
			}
		}
		return up == 2
	})
	w.waitNames(t, bob, "alice is out of "+room+" after the restart", false)
	// And stays out.
	time.Sleep(2 * time.Second)
	if slices.Contains(bob.Names(patience, room), "alice") {
		t.Errorf("her IRC connection came back into %s though she is in no room of its link", room)
	}
	// Her XMPP session either never came back into the MUC or left it.
	in := false
	for _, s := range carol.Stanzas()[xmppFrom:] {
		if s.Kind() == "presence" && s.From() == w.room.String()+"/Alice" {
			in = s.Type() == ""
		}
	}
	if in {
		t.Errorf("her XMPP session is in link one's MUC after the restart, though she left the Matrix room")
	}

	// (c) While Switchboard is stopped again, her own XMPP client comes
	// into the MUC under a nick of its own (the room shows her real
	// JID): after the restart, without a word, her IRC nick is back in
	// the channel.
	w.stop()
	laptop := w.xmpp.Client(t, "alice", xmppUsers["alice"])
	if err := laptop.Join(w.room, "alice-laptop"); err != nil {
		t.Fatal(err)
	}
	w.svc, w.stop = runService(t, w.config(t, ""))
	w.waitNames(t, bob, "alice is in "+room+" as an occupant of the MUC", true)
}

// waitNames waits until bob's NAMES of room lists alice (in) or does not.
func (w *pworld) waitNames(t *testing.T, bob *testenv.IRCClient, what string, in bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for slices.Contains(bob.Names(patience, room), "alice") != in {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
