package adapters

import (
	"fmt"
	"testing"
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
