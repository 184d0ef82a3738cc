package xmpp

import (
	"testing"

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
