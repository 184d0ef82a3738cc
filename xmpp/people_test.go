package xmpp

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A person writing from two accounts has one occupant, named after them
// and their home network.
func TestOnePuppetPerPerson(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "person")
	a, _ := newTestAdapter(t, srv, setup{})
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	fromIRC, fromPhone := foreign("libera", "dora", "Dora"), foreign("devices", "doras-phone", "Dora")
	for _, s := range []*bridge.Sender{&fromIRC, &fromPhone} {
		s.Person, s.Home = "dora", "libera"
	}
	for _, m := range []*bridge.Message{message(fromIRC, "from irc"), message(fromPhone, "from her phone")} {
		send(t, a, room, m)
		text := m.Text
		st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == text })
		if st.Nick() != "Dora (libera)" {
			t.Errorf("%q from nick %q, want Dora (libera)", text, st.Nick())
		}
	}
	a.mu.Lock()
	n := len(a.puppets)
	a.mu.Unlock()
	if n != 1 {
		t.Errorf("%d puppets, want one for the person", n)
	}
}

// withPeople is a component adapter whose people log in through the
// server's client port, with their own sessions.
func withPeople(t *testing.T, srv *testenv.XMPPServer, accts ...PersonalAccount) (*Adapter, *testenv.Log) {
	t.Helper()
	a, log := newTestAdapter(t, srv, setup{})
	a.cfg.ClientServer, a.cfg.InsecurePlaintext = srv.C2SAddr, true
	a.UsePeople(accts)
	return a, log
}

func waitPersonal(t *testing.T, a *Adapter, person string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		st := a.PersonalStatus()[person]
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("personal status of %s: %q after %v", person, st, waitFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fromPerson is alice writing on IRC, which the router made the person
// alice.
func fromPerson() bridge.Sender {
	s := foreign("libera", "alice", "Alice")
	s.Person, s.Home, s.Authenticated = "alice", "libera", true
	return s
}

// realJID is the real JID a non-anonymous room shows for nick, from the
// presences c received.
func realJID(c *testenv.XMPPClient, room, nick string) string {
	for _, s := range c.Stanzas() {
		if s.Kind() == "presence" && s.From() == room+"/"+nick {
			if j := s.Child(nsMUCUser, "x").Child(nsMUCUser, "item").AttrValue("jid"); j != "" {
				return j
			}
		}
	}
	return ""
}

// Alice's message goes out from her own occupant, logged in as her, and
// no puppet of hers joins; it is not bridged back. What she writes from
// another client of her own is bridged once, as from her.
func TestPersonalSession(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "own")
	alice := srv.JID("alice").String()
	a, _ := withPeople(t, srv, PersonalAccount{Person: "alice", Name: "Alice", ID: alice, Password: testUsers["alice"]})
	bob := joinHuman(t, srv, "bob", room, "Bob")
	rec := start(t, a, room)
	waitPersonal(t, a, "alice", func(s string) bool { return s == adapters.PersonalConnected })
	// Her joining elsewhere brings no puppet of hers in: her session
	// speaks for her (the check of the room's presences is below).
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendMembership(ctx, &bridge.Delivery{Room: room, Event: &bridge.Join{Header: bridge.Header{ID: bridge.NewEventID(), Sender: fromPerson()}}})
	})

	m := message(fromPerson(), "hello as myself")
	id := send(t, a, room, m)
	st := bob.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "hello as myself" })
	if st.Nick() != "Alice" {
		t.Errorf("from nick %q, want Alice (her own occupant)", st.Nick())
	}
	if j := realJID(bob.c, room, st.Nick()); !strings.HasPrefix(j, alice+"/") {
		t.Errorf("her occupant's real JID is %q, want %s/…", j, alice)
	}
	if sid := st.StanzaID(room); sid == "" || sid != id {
		t.Errorf("Send returned %q, the room's stanza-id is %q", id, sid)
	}
	if n := a.Puppets(); n != 0 {
		t.Errorf("%d puppets, want none", n)
	}
	for _, s := range bob.c.Stanzas() {
		if s.Kind() == "presence" && strings.Contains(s.Nick(), "(libera)") {
			t.Errorf("a puppet joined: %s", s.Raw)
		}
	}

	// Her phone, another client of the same account, under another nick.
	phone := joinHuman(t, srv, "alice", room, "alice-phone")
	phone.say("from my phone")
	got := waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "from my phone" })
	if got.Sender.ID != alice || !got.Sender.Authenticated {
		t.Errorf("from her phone: sender %+v, want %s, authenticated", got.Sender, alice)
	}
	bob.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "from my phone" })
	// Her laptop, in the nick of her session (the room lets one account
	// have several clients under one nick).
	laptop := joinHuman(t, srv, "alice", room, "Alice")
	laptop.say("from my laptop")
	got = waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "from my laptop" })
	if got.Sender.ID != alice || !got.Sender.Authenticated {
		t.Errorf("from her laptop: sender %+v, want %s, authenticated", got.Sender, alice)
	}
	send(t, a, room, message(fromPerson(), "still myself"))
	bob.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "still myself" && s.Nick() == "Alice" })
	time.Sleep(500 * time.Millisecond)
	n := map[string]int{}
	for _, m := range rec.Messages() {
		n[m.Text]++
	}
	for text, want := range map[string]int{"hello as myself": 0, "still myself": 0, "from my phone": 1, "from my laptop": 1} {
		if n[text] != want {
			t.Errorf("%q bridged %d times, want %d", text, n[text], want)
		}
	}
	for _, j := range eventsOf[*bridge.Join](rec) {
		if j.Sender.Name == "Alice" {
			t.Errorf("her own session's join bridged: %+v", j.Sender)
		}
	}
}

// A refused login marks her failed with the reason (not the password),
// logged once; her messages go out through her puppet.
func TestPersonalSessionWrongPassword(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "ownpw")
	a, log := withPeople(t, srv, PersonalAccount{Person: "alice", Name: "Alice", ID: srv.JID("alice").String(), Password: "not-her-password"})
	bob := joinHuman(t, srv, "bob", room, "Bob")
	start(t, a, room)
	state := waitPersonal(t, a, "alice", func(s string) bool { return strings.HasPrefix(s, "failed: ") })
	if !strings.Contains(state, "SASL login as alice@") || strings.Contains(state, "not-her-password") {
		t.Errorf("status %q: want the refused login named, never the password", state)
	}
	send(t, a, room, message(fromPerson(), "through the puppet"))
	st := bob.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "through the puppet" })
	if st.Nick() != "Alice (libera)" {
		t.Errorf("from nick %q, want her puppet Alice (libera)", st.Nick())
	}
	if n := strings.Count(log.String(), "personal session cannot log in"); n != 1 {
		t.Errorf("%d log lines about the refused login, want one", n)
	}
	if strings.Contains(log.String(), "not-her-password") {
		t.Error("the password was logged")
	}
}

// A room that bans her account keeps her out: the ban that removes her
// session is reported at once as one of the person (not of an account),
// her message fails for good as blocked, and no puppet of hers speaks
// instead. Lifting the ban lets her in again.
func TestPersonalSessionBanned(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "ownban")
	alice := srv.JID("alice").String()
	a, _ := withPeople(t, srv, PersonalAccount{Person: "alice", Name: "Alice", Home: "libera", ID: alice, Password: testUsers["alice"]})
	bob := joinHuman(t, srv, "bob", room, "Bob") // the first in: the room's owner
	rec := start(t, a, room)
	waitPersonal(t, a, "alice", func(s string) bool { return s == adapters.PersonalConnected })
	send(t, a, room, message(fromPerson(), "before the ban"))
	bob.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "before the ban" })

	res, err := bob.c.IQ(bob.room, "set", `<query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="outcast" jid="`+alice+`"/></query>`)
	if err != nil || res.Type() != "result" {
		t.Fatalf("ban: %v %s", err, res.Raw)
	}
	person := bridge.BlockKey{Room: bridge.RoomAddr{Network: a.name, Room: room},
		Sender: bridge.SenderRef{Network: "libera", ID: "person/alice"}, Source: bridge.BlockBan}
	if bl := rec.WaitBlocks(t, person.Room, 1); bl[0].Key() != person {
		t.Errorf("block %+v, want a ban of the person alice", bl[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var sendErr error
	for ctx.Err() == nil {
		_, sendErr = a.Send(ctx, &bridge.Delivery{Link: "test", Room: room, Event: message(fromPerson(), "after the ban")})
		if sendErr == nil || errorsIsPermanent(sendErr) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !errors.Is(sendErr, bridge.ErrBlocked) {
		t.Fatalf("after the ban: %v, want blocked for good", sendErr)
	}
	time.Sleep(300 * time.Millisecond)
	for _, s := range bob.c.Stanzas() {
		if s.Body() == "after the ban" || s.Kind() == "presence" && strings.Contains(s.Nick(), "(libera)") {
			t.Errorf("reached the room despite the ban: %s", s.Raw)
		}
	}
	if n := a.Puppets(); n != 0 {
		t.Errorf("%d puppets, want none", n)
	}

	res, err = bob.c.IQ(bob.room, "set", `<query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="none" jid="`+alice+`"/></query>`)
	if err != nil || res.Type() != "result" {
		t.Fatalf("unban: %v %s", err, res.Raw)
	}
	rec.WaitBlocks(t, person.Room, 0)
	send(t, a, room, message(fromPerson(), "let back in"))
	got := bob.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "let back in" })
	if j := realJID(bob.c, room, got.Nick()); !strings.HasPrefix(j, alice+"/") {
		t.Errorf("after the unban her message came from %s (%s), want her own occupant", got.Nick(), j)
	}
}

// After the server restarts, her session logs in again and goes back
// into the room of the link she takes part in without being asked, and
// speaks for her there.
func TestPersonalSessionRejoinsAfterRestart(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "ownrestart")
	a, _ := withPeople(t, srv, PersonalAccount{Person: "alice", Name: "Alice", ID: srv.JID("alice").String(), Password: testUsers["alice"]})
	a.PersonalRooms("alice", []string{room})
	start(t, a, room)
	waitPersonal(t, a, "alice", func(s string) bool { return s == adapters.PersonalConnected })

	srv.Restart(t)
	bob := joinHuman(t, srv, "bob", room, "Bob")
	if _, err := bob.c.WaitFor(waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.Nick() == "Alice" && s.Type() == ""
	}); err != nil {
		t.Fatalf("her session did not rejoin: %v", err)
	}
	send(t, a, room, message(fromPerson(), "back as myself"))
	st := bob.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "back as myself" })
	if st.Nick() != "Alice" {
		t.Errorf("from nick %q, want Alice", st.Nick())
	}
	if n := a.Puppets(); n != 0 {
		t.Errorf("%d puppets, want none", n)
	}
}

// While her session cannot come up, one message waits for it (up to
// personalWait), then goes out through her puppet; the next ones do at
// once.
func TestPersonalSessionNotUpYet(t *testing.T) {
	old := personalWait
	personalWait = time.Second
	t.Cleanup(func() { personalWait = old })
	srv := newServer(t)
	room := newRoomName(srv, "ownwait")
	a, _ := withPeople(t, srv, PersonalAccount{Person: "alice", Name: "Alice", ID: srv.JID("alice").String(), Password: testUsers["alice"]})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.cfg.ClientServer = l.Addr().String() // nothing answers there
	l.Close()
	bob := joinHuman(t, srv, "bob", room, "Bob")
	start(t, a, room)
	for i, text := range []string{"waited", "at once"} {
		t0 := time.Now()
		send(t, a, room, message(fromPerson(), text))
		took := time.Since(t0)
		st := bob.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == text })
		if st.Nick() != "Alice (libera)" {
			t.Errorf("%q from nick %q, want her puppet", text, st.Nick())
		}
		if i == 0 && took < personalWait || i == 1 && took > personalWait/2 {
			t.Errorf("%q took %v (personalWait %v)", text, took, personalWait)
		}
	}
	if st := a.PersonalStatus()["alice"]; st != adapters.PersonalConnecting {
		t.Errorf("status %q, want connecting", st)
	}
}

// Her session is in the rooms of the links she takes part in (the core
// says which: PersonalRooms) and in no other; it leaves a room whose
// link she left, without the bridge reporting her comings and goings.
func TestPersonalSessionFollowsHerLinks(t *testing.T) {
	srv := newServer(t)
	one, two := newRoomName(srv, "linkone"), newRoomName(srv, "linktwo")
	a, _ := withPeople(t, srv, PersonalAccount{Person: "alice", Name: "Alice", ID: srv.JID("alice").String(), Password: testUsers["alice"]})
	a.PersonalRooms("alice", []string{one})
	bob := joinHuman(t, srv, "bob", one, "Bob")
	carol := joinHuman(t, srv, "human", two, "Carol")
	rec := start(t, a, one, two)
	aliceIn := func(h *human, from int, typ string) error {
		_, err := h.c.WaitFrom(from, waitFor, func(s testenv.XMPPStanza) bool {
			return s.Kind() == "presence" && s.From() == h.room.String()+"/Alice" && s.Type() == typ
		})
		return err
	}
	if err := aliceIn(bob, 0, ""); err != nil {
		t.Fatalf("her session did not join the room of her link: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, st := range carol.c.Stanzas() {
		if st.Kind() == "presence" && st.From() == carol.room.String()+"/Alice" {
			t.Errorf("her session is in a room of a link she takes no part in: %s", st.Raw)
		}
	}

	from := bob.c.Len()
	a.PersonalRooms("alice", []string{two})
	if err := aliceIn(bob, from, "unavailable"); err != nil {
		t.Errorf("her session did not leave the room of the link she left: %v", err)
	}
	if err := aliceIn(carol, 0, ""); err != nil {
		t.Errorf("her session did not join the room of the link she joined: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	for _, ev := range rec.Events() {
		if (ev.Kind() == bridge.KindJoin || ev.Kind() == bridge.KindLeave) && ev.Head().Sender.Name == "Alice" {
			t.Errorf("her session's %s was reported: %+v", ev.Kind(), ev.Head())
		}
	}
	// Back in the first: her nick is hers again there.
	from = bob.c.Len()
	a.PersonalRooms("alice", []string{one, two})
	if err := aliceIn(bob, from, ""); err != nil {
		t.Errorf("her session did not come back: %v", err)
	}
}

// Away (issue 22, item 3): her session shows away, with the message, in
// the room it is in, and available again when she is back; a room it
// joins while she is away sees her away from the start.
func TestPersonalSessionAway(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "ownaway")
	room2 := newRoomName(srv, "ownaway2")
	a, _ := withPeople(t, srv, PersonalAccount{Person: "alice", Name: "Alice", ID: srv.JID("alice").String(), Password: testUsers["alice"]})
	a.PersonalRooms("alice", []string{room})
	bob := joinHuman(t, srv, "bob", room, "Bob")
	start(t, a, room, room2)
	aliceShows := func(c *testenv.XMPPClient, from int, room, show, status string) {
		t.Helper()
		if _, err := c.WaitFrom(from, waitFor, func(s testenv.XMPPStanza) bool {
			return s.Kind() == "presence" && s.From() == room+"/Alice" && s.Type() == "" &&
				s.Child("", "show").TextOrEmpty() == show && s.Child("", "status").TextOrEmpty() == status
		}); err != nil {
			t.Fatalf("alice's presence in %s never showed %q %q: %v", room, show, status, err)
		}
	}
	aliceShows(bob.c, 0, room, "", "")

	a.PersonalAway("alice", true, "Away from <her> phone")
	aliceShows(bob.c, 0, room, "away", "Away from <her> phone")
	a.PersonalRooms("alice", []string{room, room2})
	carol := joinHuman(t, srv, "human", room2, "Carol")
	aliceShows(carol.c, 0, room2, "away", "Away from <her> phone")

	from := bob.c.Len()
	a.PersonalAway("alice", false, "")
	aliceShows(bob.c, from, room, "", "")
}
