package bridge

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Where people are: the router keeps, for each of the configured
// people, the rooms where one of their accounts is (it joined, or said
// or did something there) from the events that pass through it, so that
// their personal connections on the other networks are in the rooms of
// the links they take part in, and only those (see PeopleRooms). It is
// kept per room, not per link: alice leaving the IRC channel from one
// client while she is still in the Matrix room stays in the link.
// Events tell only of what happens while Switchboard looks: adapters that
// can list a room's members by account correct it (see MemberLister).

// PersonRoom is one person present in one room.
type PersonRoom struct {
	Person string   `json:"person"`
	Room   RoomAddr `json:"room"`
}

// PresenceStore is implemented by stores that keep where people are
// across restarts, so that their personal connections go back into the
// same rooms before anyone speaks again.
type PresenceStore interface {
	SavePresence(ctx context.Context, p PersonRoom) error
	DeletePresence(ctx context.Context, p PersonRoom) error
	LoadPresence(ctx context.Context) ([]PersonRoom, error)
}

// presenceOf reports how ev, committed from room, changes where its
// sender is: a person's leave takes them out of the room (here false),
// anything else they do in a room puts them in it (here true). ok is
// false for events that say nothing of a person's presence: those of
// others, and direct ones.
func presenceOf(room RoomAddr, ev Event) (p PersonRoom, here, ok bool) {
	h := ev.Head()
	if h.Sender.Person == "" || h.To != nil || room.Room == "" {
		return PersonRoom{}, false, false
	}
	_, left := ev.(*Leave)
	return PersonRoom{Person: h.Sender.Person, Room: room}, !left, true
}

// notePresence records what ev, committed from room, says of where its
// sender is, and tells OnPresence when that changed.
func (r *Router) notePresence(ctx context.Context, room RoomAddr, ev Event) {
	p, here, ok := presenceOf(room, ev)
	if !ok {
		return
	}
	r.presMu.Lock()
	changed := r.setPresenceLocked(ctx, p, here)
	r.presMu.Unlock()
	if changed && r.OnPresence != nil {
		r.OnPresence()
	}
}

// setPresenceLocked records whether p's person is in p's room and
// reports whether that changed. The store keeps it for the next start;
// a store that fails it is logged, and the change holds until then.
// presMu is held.
func (r *Router) setPresenceLocked(ctx context.Context, p PersonRoom, here bool) bool {
	if r.present[p] == here {
		return false
	}
	if here {
		r.present[p] = true
	} else {
		delete(r.present, p)
	}
	var err error
	if ps, ok := r.store.(PresenceStore); ok {
		if here {
			err = ps.SavePresence(ctx, p)
		} else {
			err = ps.DeletePresence(ctx, p)
		}
	}
	if err != nil {
		r.log.Warn("could not store where a person is; it holds until the next restart", "person", p.Person, "room", p.Room.String(), "present", here, "err", err)
	}
	r.log.Debug("a person's presence changed", "person", p.Person, "room", p.Room.String(), "present", here)
	return true
}

// MemberLister is implemented by the router, behind the Inbound adapters
// are given: an adapter that can see who is in a room as its network
// authenticates them (a Matrix room's joined members, the real JIDs of
// a MUC's occupants) says so when it learns it (on joining the room,
// after a restart), so that people who were there before Switchboard
// saw them come count, and those who left while it was not looking no
// longer do. Only authenticated account ids are given, never nicks; an
// adapter that cannot tell (a room that hides real JIDs, IRC's NAMES)
// gives nothing.
type MemberLister interface {
	// Members says that accounts (ids as the adapter gives Sender.ID)
	// are in room now, and no one else: every person with one of these
	// accounts on room's network is there, every other is not.
	Members(ctx context.Context, room RoomAddr, accounts []string) error
}

var _ MemberLister = (*Router)(nil)

// Members implements MemberLister.
func (r *Router) Members(ctx context.Context, room RoomAddr, accounts []string) error {
	if room.Network == "" || room.Room == "" {
		return fmt.Errorf("members: room network and name are required (%+v)", room)
	}
	if r.People == nil {
		return nil
	}
	in := map[string]bool{}
	for _, acc := range accounts {
		if p, ok := r.People.PersonOf(room.Network, acc); ok {
			in[p.ID] = true
		}
	}
	changed := false
	r.presMu.Lock()
	for person := range in {
		changed = r.setPresenceLocked(ctx, PersonRoom{Person: person, Room: room}, true) || changed
	}
	for p := range r.present {
		if p.Room == room && !in[p.Person] {
			changed = r.setPresenceLocked(ctx, p, false) || changed
		}
	}
	r.presMu.Unlock()
	r.log.Debug("room members taken", "room", room.String(), "accounts", len(accounts), "people", len(in), "changed", changed)
	if changed && r.OnPresence != nil {
		r.OnPresence()
	}
	return nil
}

// ReloadPresence puts in place where people are as the store has it
// (another instance of a cluster saw them come or go), and reports
// whether that changed anything. OnPresence is not called: the caller
// acts on the answer.
func (r *Router) ReloadPresence(ctx context.Context) (bool, error) {
	ps, ok := r.store.(PresenceStore)
	if !ok {
		return false, nil
	}
	all, err := ps.LoadPresence(ctx)
	if err != nil {
		return false, fmt.Errorf("read where people are: %w", err)
	}
	next := make(map[PersonRoom]bool, len(all))
	for _, p := range all {
		next[p] = true
	}
	r.presMu.Lock()
	defer r.presMu.Unlock()
	if maps.Equal(next, r.present) {
		return false, nil
	}
	r.present = next
	return true, nil
}

// loadPresence reads where people were, as the store kept it.
func (r *Router) loadPresence(ctx context.Context) error {
	ps, ok := r.store.(PresenceStore)
	if !ok {
		return nil
	}
	all, err := ps.LoadPresence(ctx)
	if err != nil {
		return fmt.Errorf("read where people are: %w", err)
	}
	r.presMu.Lock()
	defer r.presMu.Unlock()
	for _, p := range all {
		r.present[p] = true
	}
	return nil
}

// PeopleRooms returns, for each person, the rooms of every link they
// take part in: all the rooms of each link where one of their accounts
// is present (rooms no longer linked count for nothing), sorted. Their
// personal connections belong in these rooms.
func (r *Router) PeopleRooms() map[string][]RoomAddr {
	r.presMu.Lock()
	present := slices.Collect(maps.Keys(r.present))
	r.presMu.Unlock()
	return linkedRooms(present, r.links)
}

// linkedRooms is PeopleRooms of the presences given.
func linkedRooms(present []PersonRoom, links Links) map[string][]RoomAddr {
	sets := map[string]map[RoomAddr]bool{}
	for _, p := range present {
		_, rooms, ok := links.LinkOf(p.Room)
		if !ok {
			continue
		}
		set := sets[p.Person]
		if set == nil {
			set = map[RoomAddr]bool{}
			sets[p.Person] = set
		}
		for _, room := range rooms {
			set[room] = true
		}
	}
	out := make(map[string][]RoomAddr, len(sets))
	for person, set := range sets {
		out[person] = slices.SortedFunc(maps.Keys(set), func(a, b RoomAddr) int {
			return cmp.Or(strings.Compare(a.Network, b.Network), strings.Compare(a.Room, b.Room))
		})
	}
	return out
}
