package adapters

import (
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

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
