package xmpp

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// The one inbox, against Prosody: alice's home is Matrix, so her
// session is available at a priority above her own client's and gets the
// chats to her bare JID. bob's chat is a direct message from him to her
// puppet identity on her home; a headline and a note from her own other
// client are not; her answer goes out from her session's JID.
func TestPersonalSessionInbox(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "inbox")
	alice := srv.JID("alice")
	a, _ := withPeople(t, srv, PersonalAccount{Person: "alice", Name: "Alice", Home: "matrix", ID: alice.String(), Password: testUsers["alice"]})
	rec := start(t, a, room)
	waitPersonal(t, a, "alice", func(s string) bool { return s == adapters.PersonalConnected })
	bob := joinHuman(t, srv, "bob", room, "Bob")
	laptop := srv.Client(t, "alice", testUsers["alice"]) // at priority 0

	if _, err := bob.c.Send("message", []string{"to", alice.String(), "type", "headline"}, "news"); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Chat(alice, "note to self"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Chat(alice, "hi alice"); err != nil {
		t.Fatal(err)
	}
	hi := waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "hi alice" })
	if hi.To == nil || *hi.To != (bridge.Sender{Network: "matrix", ID: "person/alice", Name: "Alice", Person: "alice", Home: "matrix"}) {
		t.Errorf("bob's chat is to %+v, want alice's puppet identity on matrix", hi.To)
	}
	if s := hi.Sender; s.ID != srv.JID("bob").String() || !s.Authenticated || hi.Origin.Room != "" {
		t.Errorf("bob's chat is from %+v in %q, want his bare JID, authenticated, no room", s, hi.Origin.Room)
	}
	for _, m := range rec.Messages() {
		if m.Text == "news" || m.Text == "note to self" {
			t.Errorf("%q bridged: %+v", m.Text, m.Header)
		}
	}
	for _, s := range laptop.Stanzas() {
		if s.Body() == "hi alice" {
			t.Errorf("her client at priority 0 got the chat too; want her session's, at 1")
		}
	}

	// Her answer from Matrix: from her own JID, through her session.
	answer := message(fromPerson(), "hi bob")
	answer.Sender.Home = "matrix"
	answer.To = &bridge.Sender{Network: a.name, ID: srv.JID("bob").String()}
	send(t, a, "", answer)
	st := bob.c.WaitMessage(waitFor, func(s testenv.XMPPStanza) bool { return s.Type() == "chat" && s.Body() == "hi bob" })
	if !strings.HasPrefix(st.From(), alice.String()+"/") {
		t.Errorf("bob got her answer from %q, want %s/…", st.From(), alice)
	}
}
