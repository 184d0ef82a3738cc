package testenv

import (
	"testing"
	"time"
)

// TestEjabberd: users log in, a room created by a join stamps stanza-ids
// (mod_mam from the guide's snippet), the component port takes the
// guide's secret, and two servers run side by side.
func TestEjabberd(t *testing.T) {
	t.Parallel()
	a := EjabberdWith(t, XMPPServerConfig{Users: map[string]string{"alice": "pw-a", "bob": "pw-b"}})
	b := EjabberdWith(t, XMPPServerConfig{Users: map[string]string{"alice": "pw-a"}})
	room := a.Room("lobby")
	alice, bob := a.Client(t, "alice", "pw-a"), a.Client(t, "bob", "pw-b")
	if err := alice.Join(room, "Alice"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Join(room, "Bob"); err != nil {
		t.Fatal(err)
	}
	id, err := alice.Say(room, "hello <ejabberd>")
	if err != nil {
		t.Fatal(err)
	}
	got := bob.WaitMessage(20*time.Second, func(s XMPPStanza) bool { return s.Body() == "hello <ejabberd>" })
	if got.Nick() != "Alice" || got.StanzaID(room.String()) == "" {
		t.Errorf("bob got %s, want from Alice with a stanza-id by the room", got.Raw)
	}
	echo := alice.WaitMessage(20*time.Second, func(s XMPPStanza) bool { return s.ID() == id })
	if echo.StanzaID(room.String()) != got.StanzaID(room.String()) {
		t.Errorf("alice's echo %s and bob's copy %s differ in stanza-id", echo.Raw, got.Raw)
	}
	b.Client(t, "alice", "pw-a")
}
