package bridge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// member is an authenticated join (or leave) of sender in room.
func member(network, room, sender string, join bool) bridge.Event {
	h := bridge.Header{
		Origin: bridge.Origin{Network: network, Room: room},
		Sender: bridge.Sender{Network: network, ID: sender, Name: sender, Authenticated: true},
	}
	if join {
		return &bridge.Join{Header: h}
	}
	return &bridge.Leave{Header: h}
}

func peopleRooms(r *bridge.Router) string { return fmt.Sprint(r.PeopleRooms()) }

// A person takes part in a link while one of their accounts is in one of
// its rooms (it joined, or said something there): their connections
// belong in every room of that link, and in no other link's. Leaving
// one room keeps them in the link while another account of theirs is in
// another of its rooms; leaving the last takes them out. Where they are
// outlives a restart; a stranger, or a bare nick, counts for nothing.
func TestRouterKnowsWhichLinksPeopleTakePartIn(t *testing.T) {
	f, restart, told := presenceFixture(t)

	if got := peopleRooms(f.router); got != "map[]" {
		t.Fatalf("before anything: %s", got)
	}
	accept(t, f.router, msg("irc", "#ops", "alice", "n-1", "a bare nick is no one"))
	accept(t, f.router, authed("irc", "#ops", "bob", "b-1", "a stranger"))
	if got := peopleRooms(f.router); got != "map[]" || told.Load() != 0 {
		t.Fatalf("after a bare nick and a stranger: %s (told %d)", got, told.Load())
	}

	lobby := "map[alice:[irc:#lobby matrix:!lobby mqtt:chat/lobby]]"
	accept(t, f.router, member("matrix", "!lobby", "@alice:hs", true))
	if got := peopleRooms(f.router); got != lobby || told.Load() != 1 {
		t.Fatalf("after her Matrix join: %s (told %d), want %s", got, told.Load(), lobby)
	}
	// Speaking from her phone in the same link changes nothing more
	// than a room; speaking again, nothing at all.
	accept(t, f.router, authed("mqtt", "chat/lobby", "alices-phone", "", "from my phone"))
	accept(t, f.router, authed("mqtt", "chat/lobby", "alices-phone", "", "again"))
	if got := peopleRooms(f.router); got != lobby || told.Load() != 2 {
		t.Fatalf("after her phone spoke: %s (told %d)", got, told.Load())
	}
	// Her phone leaves the lobby: she is still in the Matrix room.
	accept(t, f.router, member("mqtt", "chat/lobby", "alices-phone", false))
	if got := peopleRooms(f.router); got != lobby {
		t.Fatalf("after her phone left: %s, want %s", got, lobby)
	}
	// Typing in #ops takes her into that link too.
	accept(t, f.router, &bridge.Typing{Header: authed("irc", "#ops", "alice", "", "").Header, Active: true})
	both := "map[alice:[irc:#lobby irc:#ops matrix:!lobby mqtt:chat/lobby mqtt:chat/ops]]"
	if got := peopleRooms(f.router); got != both {
		t.Fatalf("after typing in #ops: %s, want %s", got, both)
	}
	// Leaving Matrix takes her out of the lobby.
	accept(t, f.router, member("matrix", "!lobby", "@alice:hs", false))
	ops := "map[alice:[irc:#ops mqtt:chat/ops]]"
	if got := peopleRooms(f.router); got != ops {
		t.Fatalf("after she left Matrix: %s, want %s", got, ops)
	}

	// A restart on the same store: she is still in #ops.
	f = restart()
	if got := peopleRooms(f.router); got != ops {
		t.Fatalf("after a restart: %s, want %s", got, ops)
	}
	// A link changed at runtime: the rooms follow.
	if err := f.links.Replace(map[string][]bridge.RoomAddr{
		"ops": {{Network: "irc", Room: "#ops"}, {Network: "matrix", Room: "!ops"}},
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := peopleRooms(f.router), "map[alice:[irc:#ops matrix:!ops]]"; got != want {
		t.Fatalf("after ops changed: %s, want %s", got, want)
	}
	if err := f.links.Replace(map[string][]bridge.RoomAddr{
		"other": {{Network: "irc", Room: "#other"}, {Network: "matrix", Room: "!ops"}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := peopleRooms(f.router); got != "map[]" {
		t.Fatalf("after #ops was unlinked: %s, want none", got)
	}
}

// A room's member list, as an adapter reads it from its network, says
// who is there whatever events Switchboard saw: alice, in the Matrix room
// since before it looked, takes part in the lobby without a word; a list
// without her takes her out, as her leave would have, and that outlives
// a restart. Members who are no one's account, and other rooms, are left
// as they are; an unchanged list changes nothing.
func TestRoomMembersCorrectWherePeopleAre(t *testing.T) {
	f, restart, told := presenceFixture(t)
	ctx := context.Background()
	lobby := bridge.RoomAddr{Network: "matrix", Room: "!lobby"}
	members := func(room bridge.RoomAddr, accounts ...string) {
		t.Helper()
		if err := f.router.Members(ctx, room, accounts); err != nil {
			t.Fatal(err)
		}
	}

	members(lobby, "@bob:hs", "@alice:hs")
	want := "map[alice:[irc:#lobby matrix:!lobby mqtt:chat/lobby]]"
	if got := peopleRooms(f.router); got != want || told.Load() != 1 {
		t.Fatalf("after a list with her: %s (told %d), want %s", got, told.Load(), want)
	}
	members(lobby, "@alice:hs")
	if told.Load() != 1 {
		t.Errorf("the same list again told of a change")
	}
	// She speaks in #ops; then the lobby's list comes without her.
	accept(t, f.router, authed("irc", "#ops", "alice", "", "in ops"))
	members(lobby, "@bob:hs")
	ops := "map[alice:[irc:#ops mqtt:chat/ops]]"
	if got := peopleRooms(f.router); got != ops {
		t.Fatalf("after a list without her: %s, want %s", got, ops)
	}
	// Her IRC account's name on a list of the Matrix room is no one.
	members(lobby, "alice")
	if got := peopleRooms(f.router); got != ops {
		t.Fatalf("after a list naming her IRC account in the Matrix room: %s, want %s", got, ops)
	}
	f = restart()
	if got := peopleRooms(f.router); got != ops {
		t.Fatalf("after a restart: %s, want %s", got, ops)
	}
	if err := f.router.Members(ctx, bridge.RoomAddr{Network: "matrix"}, nil); err == nil {
		t.Error("a list of a room without a name was taken")
	}
}

// presenceFixture is a router with alice among the people, counting what
// it tells OnPresence; restart stops it and starts another on the same
// store.
func presenceFixture(t *testing.T) (f *fixture, restart func() *fixture, told *atomic.Int32) {
	nets := map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": newPlain(), "matrix": rich{newPlain()}}
	dir := t.TempDir()
	told = new(atomic.Int32)
	start := func() *fixture {
		f := newFixture(t, dir, nets)
		withPeople(t, f)
		f.router.OnPresence = func() { told.Add(1) }
		return f
	}
	f = start()
	return f, func() *fixture { f.stop(); f = start(); return f }, told
}

// Two routers on one store (two instances of a cluster): where a person
// is, as one saw it, reaches the other when it reloads, and a reload
// that finds nothing new says so.
func TestReloadPresenceFromSharedStore(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := context.Background()
	nets := func() map[string]bridge.MessageSender {
		return map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": newPlain(), "matrix": rich{newPlain()}}
	}
	seer := newFixtureDSN(t, dsn, t.TempDir(), nets())
	withPeople(t, seer)
	other := newFixtureDSN(t, dsn, t.TempDir(), nets())
	withPeople(t, other)
	var told atomic.Int32
	other.router.OnPresence = func() { told.Add(1) }

	accept(t, seer.router, member("matrix", "!lobby", "@alice:hs", true))
	if got := peopleRooms(other.router); got != "map[]" {
		t.Fatalf("the other router knows before reloading: %s", got)
	}
	changed, err := other.router.ReloadPresence(ctx)
	lobby := "map[alice:[irc:#lobby matrix:!lobby mqtt:chat/lobby]]"
	if got := peopleRooms(other.router); err != nil || !changed || got != lobby {
		t.Fatalf("after a reload: %s (changed %v, %v), want %s", got, changed, err, lobby)
	}
	if changed, err := other.router.ReloadPresence(ctx); changed || err != nil {
		t.Errorf("a second reload changed %v (%v), want nothing", changed, err)
	}
	accept(t, seer.router, member("matrix", "!lobby", "@alice:hs", false))
	if changed, _ := other.router.ReloadPresence(ctx); !changed || peopleRooms(other.router) != "map[]" {
		t.Errorf("after her leave: changed %v, %s", changed, peopleRooms(other.router))
	}
	if told.Load() != 0 {
		t.Errorf("OnPresence told %d times by reloads, want 0 (the caller acts on the answer)", told.Load())
	}
}
