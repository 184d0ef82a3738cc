package xmpp

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A message delivered late (caught up, or held in the outbox while the
// server was away) carries a XEP-0203 delay with when it was said, which
// the room passes on; one of now carries none.
func TestLateMessageKeepsItsTime(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "late")
	a, _ := newTestAdapter(t, srv, setup{})
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	bob := foreign("libera", "Bob", "bob")
	said := time.Date(2026, 12, 5, 6, 1, 2, 345e6, time.UTC)
	late := message(bob, "said a while ago")
	late.Time = said
	send(t, a, room, late)
	send(t, a, room, message(bob, "said now"))
	st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "said a while ago" })
	if stamp := st.Child(nsDelay, "delay").AttrValue("stamp"); stamp != "2026-12-05T06:01:02.345Z" {
		t.Errorf("late message's delay stamp %q, want when it was said: %s", stamp, st.Raw)
	}
	st = alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "said now" })
	if d := st.Child(nsDelay, "delay"); d != nil {
		t.Errorf("a message of now carries a delay: %s", st.Raw)
	}
}
