package matrix

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// TestBroadNamespace: with double_puppet_namespace matching every user
// of the homeserver, Dendrite pushes Switchboard the events of a private
// room between two of them that nothing links. Those transactions are
// answered, and nothing else: no event reaches the bridge, nothing is
// written to the store (not even the transaction), no state of the room
// is cached, nobody of Switchboard's joins it, and its text is not
// logged. A person added afterwards, in the namespace, speaks as their
// own user at once, with Dendrite never restarted.
func TestBroadNamespace(t *testing.T) {
	s := newServerNamespace(t, `@[^:]+:localhost`)
	carol := s.Client(t, "carol")
	dave := s.Client(t, "dave")
	linked := carol.NewRoom(true, "")
	log := testenv.NewLog(t)
	a, err := New("matrix", s.network, log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	st := &countingState{State: s.state}
	a.UseState(st)
	a.RegisterHTTP(s.mux)
	rec := startRecorded(t, a, string(linked))

	// A linked room's message is bridged and its transaction remembered:
	// what the counting below would see if unlinked rooms cost the same.
	carol.Text(linked, "in the linked room")
	testwait.For(t, "the linked room's message bridged", func() bool { return countText(rec.Events(), "in the linked room") == 1 })
	if _, writes := st.counts(); !hasPrefix(writes, txnPrefix) {
		t.Fatalf("the linked room's transaction was not remembered (writes %q): the count below would prove nothing", writes)
	}

	reads0, writes0 := st.counts()
	private := carol.NewRoom(false, "", dave.UserID)
	dave.Join(string(private))
	carol.Text(private, "just between us")
	dave.Text(private, "our secret")
	testwait.For(t, "the private room's messages pushed and answered", func() bool {
		return s.pushes.answered("just between us") && s.pushes.answered("our secret")
	})
	time.Sleep(200 * time.Millisecond) // anything they set off would be under way

	reads, writes := st.counts()
	if len(writes) != len(writes0) {
		t.Errorf("the private room's events wrote to the store: %q", writes[len(writes0):])
	}
	if n := len(reads) - len(reads0); n > 1 {
		t.Errorf("the private room's events read the store %d times (%q), want once at most (is it a direct chat of ours?)", n, reads[len(reads0):])
	}
	for _, text := range []string{"just between us", "our secret"} {
		if n := countText(rec.Events(), text); n != 0 {
			t.Errorf("%q was bridged %d times", text, n)
		}
		if strings.Contains(log.String(), text) {
			t.Errorf("%q was logged", text)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if a.as.StateStore.IsInRoom(ctx, private, carol.UserID) || a.as.StateStore.IsInRoom(ctx, private, dave.UserID) {
		t.Errorf("the private room's members were cached")
	}
	members, err := carol.JoinedMembers(ctx, private)
	if err != nil {
		t.Fatal(err)
	}
	for u := range members.Joined {
		if u != carol.UserID && u != dave.UserID {
			t.Errorf("%s joined the private room", u)
		}
	}

	// erin is added afterwards: the namespace covers her, so the
	// homeserver lets the appservice speak as her without a restart.
	erin := s.Client(t, "erin")
	a.UsePeople([]adapters.PersonalAccount{{Person: "erin", Name: "Erin", ID: string(erin.UserID), DoublePuppet: true}})
	waitStatus(t, a, "erin", adapters.PersonalConnected) // checked at once, before she speaks
	personSays(t, a, linked, "erin", "erin, added later")
	got := waitEvent(t, carol, "erin's message", bodyIs(linked, "erin, added later"))
	if got.Sender != erin.UserID {
		t.Errorf("erin's message came from %s, want her own %s", got.Sender, erin.UserID)
	}
	if st := a.PersonalStatus()["erin"]; st != adapters.PersonalConnected {
		t.Errorf("erin's status %q", st)
	}
}

func hasPrefix(keys []string, prefix string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
