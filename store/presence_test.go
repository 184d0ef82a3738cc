package store

import (
	"cmp"
	"slices"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

// testRecords: where people are and the blocks outlive a reopen, and
// delete removes exactly one of them, whatever characters the ids hold.
func testRecords(t *testing.T, newDB newDBFunc) {
	dsn, dir := newDB(t)
	s := openStore(t, dsn, dir)
	ctx := t.Context()
	odd := bridge.RoomAddr{Network: "mx", Room: "!a b%20c:example.org"}
	want := []bridge.PersonRoom{{Person: "alice", Room: lobby}, {Person: "alice", Room: mx}, {Person: "bob smith", Room: odd}}
	for _, p := range want {
		if err := s.SavePresence(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SavePresence(ctx, want[0]); err != nil { // again: still one
		t.Fatal(err)
	}
	if err := s.DeletePresence(ctx, bridge.PersonRoom{Person: "alice", Room: mqtt}); err != nil { // never saved
		t.Fatal(err)
	}
	b := bridge.Block{Room: odd, Sender: bridge.SenderRef{Network: "libera", ID: "eve"}, Source: bridge.BlockBan, Reason: "banned", Since: epoch}
	if err := s.SaveBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openStore(t, dsn, dir)
	got, err := s.LoadPresence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sortPresence(got)
	if !slices.Equal(got, want) {
		t.Errorf("after reopen: %v, want %v", got, want)
	}
	if err := s.DeletePresence(ctx, want[1]); err != nil {
		t.Fatal(err)
	}
	got, _ = s.LoadPresence(ctx)
	sortPresence(got)
	if w := []bridge.PersonRoom{want[0], want[2]}; !slices.Equal(got, w) {
		t.Errorf("after delete: %v, want %v", got, w)
	}
	blocks, err := s.LoadBlocks(ctx)
	if err != nil || len(blocks) != 1 || blocks[0].Key() != b.Key() || !blocks[0].Since.Equal(epoch) {
		t.Errorf("blocks: %v, %v; want %v", blocks, err, b)
	}
}

func sortPresence(ps []bridge.PersonRoom) {
	slices.SortFunc(ps, func(a, b bridge.PersonRoom) int {
		return cmp.Or(cmp.Compare(a.Person, b.Person), cmp.Compare(a.Room.String(), b.Room.String()))
	})
}
