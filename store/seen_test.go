package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// A Bloom filter never forgets a key, and at its capacity mistakes about
// one key in a hundred never added for one it holds.
func TestBloomHoldsEveryKey(t *testing.T) {
	var f seen
	f.init()
	const n = 20000
	b := newBloom(n)
	for i := range n {
		if b.add(f.eventKey(fmt.Sprint("event-", i))) != (i+1 > n) {
			t.Fatalf("full after %d keys of %d", i+1, n)
		}
	}
	for i := range n {
		if !b.has(f.eventKey(fmt.Sprint("event-", i))) {
			t.Fatalf("event-%d added and not found", i)
		}
	}
	if !b.add(f.eventKey("one too many")) {
		t.Error("not full beyond its capacity")
	}
	fp := 0
	const tries = 100000
	for i := range tries {
		if b.has(f.remoteKey(remoteKey{"irc", "#lobby", fmt.Sprint("event-", i)})) {
			fp++
		}
	}
	if rate := float64(fp) / tries; rate > 0.02 {
		t.Errorf("%.2f%% false positives at capacity, want about 1%%", 100*rate)
	}
}

func waitSeenLoaded(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.seen.ready.Load() || s.seen.loading.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the stored ids were not loaded within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Once the stored ids are loaded, an Accept runs no statement: its rows
// wait for the sync's commit, and duplicates of what was stored before a
// restart are found all the same.
func TestAcceptStagesWithoutStatements(t *testing.T) {
	s, other := batchStore(t)
	first, durable := acceptUnsynced(t, s, message(lobby, "irc-1", "one"))
	if err := s.Delivered(t.Context(), first, "mqtt-1"); err != nil {
		t.Fatal(err)
	}
	if err := durable(true); err != nil {
		t.Fatal(err)
	}
	waitSeenLoaded(t, s)

	second, durable := acceptUnsynced(t, s, message(lobby, "irc-2", "two"))
	if s.batch.open {
		t.Error("an accept began a transaction")
	}
	var events int
	if err := other.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&events); err != nil || events != 1 {
		t.Errorf("%d events on disk before the sync, want 1: %v", events, err)
	}
	if err := durable(true); err != nil {
		t.Fatal(err)
	}
	if err := other.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&events); err != nil || events != 2 {
		t.Errorf("%d events on disk after the sync, want 2: %v", events, err)
	}

	// Each key is found in the batch, in the delivery records, or in
	// the database through the filter: the same event again, its remote
	// id again, and our delivery coming back.
	third, _ := acceptUnsynced(t, s, message(lobby, "irc-3", "three"))
	if err := s.Delivered(t.Context(), third, "mqtt-3"); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []bridge.Event{
		first.Event, second.Event, third.Event,
		message(lobby, "irc-1", "one"), message(lobby, "irc-2", "two"), message(lobby, "irc-3", "three"),
		message(mqtt, "mqtt-1", "echo"), message(mqtt, "mqtt-3", "echo"),
	} {
		if _, ok, _, err := s.AcceptCommitted(t.Context(), "lobby", ev, []bridge.RoomAddr{mqtt}); err != nil || ok {
			t.Errorf("accept of %s from %s again: %v, %v; want a duplicate", ev.Head().Origin.RemoteID, ev.Head().Origin.Room, ok, err)
		}
	}
}

// A filter that fills up is replaced by one twice as large, loaded in the
// background while accepts go on; no key is lost on the way, not even one
// staged and not yet committed when the new filter began.
func TestSeenGrows(t *testing.T) {
	defer func(c int) { seenCapacity = c }(seenCapacity)
	seenCapacity = 16
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "seen.db")
	s := openStore(t, dsn, "")
	var accepted []bridge.Event
	for i := range 40 {
		ev := message(lobby, fmt.Sprint("irc-", i), "hello")
		accept(t, s, ev, mqtt)
		accepted = append(accepted, ev)
	}
	waitSeenLoaded(t, s)
	if b := s.seen.cur.Load(); b.capacity <= 16 || b.full() {
		t.Errorf("capacity %d for %d keys", b.capacity, b.n.Load())
	}

	// Staged when a new filter begins, committed before it is loaded.
	staged, durable := acceptUnsynced(t, s, message(lobby, "irc-staged", "hello"))
	next := s.startGrowing(1000)
	if err := durable(true); err != nil {
		t.Fatal(err)
	}
	for _, k := range []seenKey{s.seen.eventKey(string(staged.Event.Head().ID)), s.seen.remoteKey(remoteKey{lobby.Network, lobby.Room, "irc-staged"})} {
		if !next.has(k) {
			t.Error("a key staged when the filter began is not in it")
		}
	}
	s.seen.next.Store(nil)

	for _, ev := range accepted {
		for _, again := range []bridge.Event{ev, message(lobby, ev.Head().Origin.RemoteID, "again")} {
			if _, ok, err := s.Accept(t.Context(), "lobby", again, []bridge.RoomAddr{mqtt}); err != nil || ok {
				t.Fatalf("accept of %s again: %v, %v; want a duplicate", ev.Head().Origin.RemoteID, ok, err)
			}
		}
	}
}
