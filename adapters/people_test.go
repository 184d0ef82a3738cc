package adapters

import (
	"fmt"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

// RoomWants tells what to join and what to leave when a person's rooms
// change, and forgets a person left with none.
func TestRoomWants(t *testing.T) {
	w := RoomWants{}
	steps := []struct {
		rooms          []string
		added, removed string
	}{
		{[]string{"#b", "#a"}, "[#a #b]", "[]"},
		{[]string{"#a", "#b"}, "[]", "[]"},
		{[]string{"#b", "#c"}, "[#c]", "[#a]"},
		{nil, "[]", "[#b #c]"},
	}
	for i, s := range steps {
		added, removed := w.Set("alice", s.rooms)
		if got := fmt.Sprint(added); got != s.added {
			t.Errorf("step %d: added %s, want %s", i, got, s.added)
		}
		if got := fmt.Sprint(removed); got != s.removed {
			t.Errorf("step %d: removed %s, want %s", i, got, s.removed)
		}
		if i == 2 && (!w.Wants("alice", "#c") || w.Wants("alice", "#a") || fmt.Sprint(w.Of("alice")) != "[#b #c]") {
			t.Errorf("step %d: wants %v", i, w.Of("alice"))
		}
	}
	if _, ok := w["alice"]; ok || len(w.Of("alice")) != 0 {
		t.Errorf("alice still kept with no rooms: %v", w)
	}
}

// A ban of any account of a person, or of their puppet, is kept under
// one name, the person's: whatever account the adapter met it through
// and whatever account they write from next, the same block applies.
func TestBlockRefIsThePersonsWhateverTheAccount(t *testing.T) {
	person := bridge.SenderRef{Network: "mx", ID: "person/alice"}
	senders := []bridge.Sender{
		{Network: "libera", ID: "alice", Person: "alice", Home: "mx"},
		{Network: "jabber", ID: "alice@localhost", Person: "alice", Home: "mx"},
		{Network: "mx", ID: "@alice:localhost", Person: "alice", Home: "mx"},
		bridge.Sender{Network: "libera", ID: "alice", Person: "alice", Home: "mx"}.Puppet(),
	}
	for _, s := range senders {
		if got := s.BlockRef(); got != person {
			t.Errorf("BlockRef of %s: %s, want %s", s.Ref(), got, person)
		}
	}
	acct := PersonalAccount{Person: "alice", Home: "mx", ID: "alice@localhost", Password: "pw"}
	if got := acct.BlockRef(); got != person {
		t.Errorf("BlockRef of her personal account: %s, want %s", got, person)
	}
	// Anyone else is kept out as the account they wrote from.
	bob := bridge.Sender{Network: "libera", ID: "bob"}
	if got := bob.BlockRef(); got != bob.Ref() {
		t.Errorf("BlockRef of %s: %s, want the account", bob.Ref(), got)
	}
}
