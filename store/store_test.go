package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// newDBFunc returns the DSN and data directory of a fresh, empty database.
type newDBFunc func(t *testing.T) (dsn, dataDir string)

func TestSQLite(t *testing.T) {
	testStore(t, func(t *testing.T) (string, string) { return "sqlite", t.TempDir() })
}

// TestSQLiteNormal runs the suite on an SQLite store that syncs nothing
// itself (sqlite_synchronous: normal), where each write commits at once.
func TestSQLiteNormal(t *testing.T) {
	testStore(t, func(t *testing.T) (string, string) { return "sqlite?_synchronous=NORMAL", t.TempDir() })
}

func TestPostgres(t *testing.T) {
	testStore(t, postgresDBs(t))
}

// postgresDBs starts one server and gives each caller a database of its own.
func postgresDBs(tb testing.TB) newDBFunc {
	admin := testenv.Postgres(tb)
	var n atomic.Int64
	return func(t *testing.T) (string, string) {
		db, err := sql.Open("pgx/v5", admin)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		name := fmt.Sprintf("switchboard_%d", n.Add(1))
		if _, err := db.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(admin)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String(), ""
	}
}

func testStore(t *testing.T, newDB newDBFunc) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, newDB newDBFunc)
	}{
		{"RoundTrip", testRoundTrip},
		{"Dedupe", testDedupe},
		{"Order", testOrder},
		{"RemoteIDs", testRemoteIDs},
		{"DeliveredTwice", testDeliveredTwice},
		{"Failed", testFailed},
		{"FailedRetryDiscard", testFailedRetryDiscard},
		{"Reopen", testReopen},
		{"DeliveredBecomesDurable", testDeliveredBecomesDurable},
		{"AdapterState", testAdapterState},
		{"StateScan", testStateScan},
		{"NewerSchema", testNewerSchema},
		{"ConcurrentOpen", testConcurrentOpen},
		{"Concurrent", testConcurrent},
		{"Errors", testErrors},
		{"OutboxRooms", testOutboxRooms},
		{"QueuedAtMigration", testQueuedAtMigration},
		{"Retention", testRetention},
		{"Files", testFiles},
		{"Records", testRecords},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDB) })
	}
}

func openStore(t testing.TB, dsn, dataDir string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, dataDir, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func newStore(t *testing.T, newDB newDBFunc) *Store {
	t.Helper()
	dsn, dir := newDB(t)
	return openStore(t, dsn, dir)
}

var (
	lobby = bridge.RoomAddr{Network: "libera", Room: "#lobby"}
	mqtt  = bridge.RoomAddr{Network: "mqtt", Room: "chat/lobby"}
	mx    = bridge.RoomAddr{Network: "matrix", Room: "!abc:example.org"}
)

var (
	epoch = time.Date(2025, 3, 4, 5, 6, 7, 891000, time.UTC)
	ticks atomic.Int64
)

func header(from bridge.RoomAddr, remoteID string) bridge.Header {
	return bridge.Header{
		ID:     bridge.NewEventID(),
		Origin: bridge.Origin{Network: from.Network, Room: from.Room, RemoteID: remoteID},
		Sender: bridge.Sender{Network: from.Network, ID: "alice", Name: "Alice ☕"},
		Time:   epoch.Add(time.Duration(ticks.Add(1)) * time.Second),
	}
}

func message(from bridge.RoomAddr, remoteID, text string) *bridge.Message {
	return &bridge.Message{Header: header(from, remoteID), Text: text}
}

// everyKind returns one event of each kind with every field set.
func everyKind(from bridge.RoomAddr) []bridge.Event {
	ref := bridge.Ref{Event: bridge.NewEventID(), Remote: "r-0"}
	return []bridge.Event{
		&bridge.Message{Header: header(from, "r-1"), Text: "hi *there*\x00 \u2028", HTML: "hi <b>there</b>",
			Emote: true, Notice: true, ReplyTo: ref,
			Attachments: []bridge.Attachment{{URL: "https://example.org/a.png", Name: "a.png", Mime: "image/png", Size: 42}}},
		&bridge.Edit{Header: header(from, "r-2"), Target: ref, Text: "fixed", HTML: "<i>fixed</i>"},
		&bridge.Delete{Header: header(from, "r-3"), Target: ref},
		&bridge.Reaction{Header: header(from, "r-4"), Target: ref, Key: "👍", Remove: true},
		&bridge.Join{Header: header(from, "")},
		&bridge.Leave{Header: header(from, ""), Reason: "bye"},
		&bridge.Rename{Header: header(from, ""), Previous: "alice_"},
		&bridge.Topic{Header: header(from, "r-8"), Topic: "welcome; 'quoted' ?"},
		&bridge.Typing{Header: header(from, ""), Active: true},
		&bridge.Presence{Header: header(from, ""), Status: "away", Message: "lunch"},
	}
}

func accept(t testing.TB, s *Store, ev bridge.Event, targets ...bridge.RoomAddr) {
	t.Helper()
	_, ok, err := s.Accept(t.Context(), "lobby", ev, targets)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	if !ok {
		t.Fatalf("accept %s: reported duplicate", ev.Head().ID)
	}
}

func pending(t testing.TB, s *Store, target bridge.RoomAddr) []bridge.Queued {
	t.Helper()
	qs, err := s.Pending(t.Context(), target, 0, 1000)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	return qs
}

func depth(t testing.TB, s *Store) int {
	t.Helper()
	n, err := s.OutboxDepth(t.Context())
	if err != nil {
		t.Fatalf("outbox depth: %v", err)
	}
	return n
}

func testRoundTrip(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	evs := everyKind(lobby)
	for _, ev := range evs {
		accept(t, s, ev, mqtt, mx)
	}
	if n := depth(t, s); n != 2*len(evs) {
		t.Fatalf("outbox depth %d, want %d", n, 2*len(evs))
	}
	targets, err := s.PendingTargets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bridge.RoomAddr{mx, mqtt}; !reflect.DeepEqual(targets, want) {
		t.Fatalf("pending targets %v, want %v", targets, want)
	}
	for _, target := range []bridge.RoomAddr{mqtt, mx} {
		qs := pending(t, s, target)
		if len(qs) != len(evs) {
			t.Fatalf("%s: %d pending, want %d", target, len(qs), len(evs))
		}
		for i, q := range qs {
			if q.Link != "lobby" || q.Target != target {
				t.Errorf("%s #%d: link %q target %v", target, i, q.Link, q.Target)
			}
			if !reflect.DeepEqual(q.Event, evs[i]) {
				t.Errorf("%s #%d: got %#v\nwant %#v", target, i, q.Event, evs[i])
			}
			if err := s.Delivered(ctx, q, fmt.Sprintf("%s-%d", target.Network, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := depth(t, s); n != 0 {
		t.Fatalf("outbox depth %d after delivery", n)
	}
	if targets, _ := s.PendingTargets(ctx); len(targets) != 0 {
		t.Fatalf("pending targets %v after delivery", targets)
	}
	for _, ev := range evs {
		got, err := s.Event(ctx, ev.Head().ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Errorf("event %s: got %#v\nwant %#v", ev.Kind(), got, ev)
		}
	}
}

func testDedupe(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	first := message(lobby, "msg-1", "one")
	accept(t, s, first, mqtt)

	again := message(lobby, "msg-1", "one, replayed after a reconnect")
	_, ok, err := s.Accept(ctx, "lobby", again, []bridge.RoomAddr{mqtt, mx})
	if err != nil || ok {
		t.Fatalf("accept of a seen remote id: %v, %v; want false, nil", ok, err)
	}
	if _, err := s.Event(ctx, again.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("duplicate event was stored: %v", err)
	}
	if n := depth(t, s); n != 1 {
		t.Fatalf("outbox depth %d after a duplicate, want 1", n)
	}

	// The same event accepted twice (say, after an ambiguous commit).
	_, ok, err = s.Accept(ctx, "lobby", first, []bridge.RoomAddr{mqtt})
	if err != nil || ok {
		t.Fatalf("second accept of one event: %v, %v; want false, nil", ok, err)
	}

	// The same remote id in another room is another event.
	accept(t, s, message(mx, "msg-1", "other room"), mqtt)
	// Events without remote ids are never duplicates of each other.
	accept(t, s, message(lobby, "", "a"), mqtt)
	accept(t, s, message(lobby, "", "a"), mqtt)

	// Our own delivery coming back from the target room is a duplicate.
	q := pending(t, s, mqtt)[0]
	if err := s.Delivered(ctx, q, "mq-7"); err != nil {
		t.Fatal(err)
	}
	_, ok, err = s.Accept(ctx, "lobby", message(mqtt, "mq-7", "one"), []bridge.RoomAddr{lobby})
	if err != nil || ok {
		t.Fatalf("accept of an echo: %v, %v; want false, nil", ok, err)
	}
	if n := depth(t, s); n != 3 {
		t.Fatalf("outbox depth %d, want 3", n)
	}
}

func testOrder(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	var toMQTT, toMX []bridge.EventID
	for i := range 20 {
		ev := message(lobby, fmt.Sprint("m", i), fmt.Sprint(i))
		targets := []bridge.RoomAddr{mqtt}
		toMQTT = append(toMQTT, ev.ID)
		if i%3 != 0 {
			targets = append(targets, mx)
			toMX = append(toMX, ev.ID)
		}
		accept(t, s, ev, targets...)
	}
	for target, want := range map[bridge.RoomAddr][]bridge.EventID{mqtt: toMQTT, mx: toMX} {
		// Page through with the cursor, in pages that do not divide evenly.
		var got []bridge.EventID
		after := int64(0)
		for {
			qs, err := s.Pending(ctx, target, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) > 3 {
				t.Fatalf("%d rows for limit 3", len(qs))
			}
			if len(qs) == 0 {
				break
			}
			for _, q := range qs {
				if q.Seq <= after {
					t.Fatalf("%s: seq %d after %d", target, q.Seq, after)
				}
				after = q.Seq
				got = append(got, q.Event.Head().ID)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: order\n got %v\nwant %v", target, got, want)
		}
	}

	// A seq is never handed out twice, even once the outbox ran empty.
	all := pending(t, s, mqtt)
	last := all[len(all)-1].Seq
	for _, target := range []bridge.RoomAddr{mqtt, mx} {
		for _, q := range pending(t, s, target) {
			if err := s.Delivered(ctx, q, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	accept(t, s, message(lobby, "", "later"), mqtt)
	if q := pending(t, s, mqtt); len(q) != 1 || q[0].Seq <= last {
		t.Fatalf("after emptying the outbox: %+v, want one entry with seq > %d", q, last)
	}
}

func testRemoteIDs(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	ev := message(lobby, "irc-1", "hello")
	accept(t, s, ev, mqtt, mx)

	if id, err := s.EventByRemote(ctx, lobby, "irc-1"); err != nil || id != ev.ID {
		t.Fatalf("EventByRemote(origin) = %q, %v", id, err)
	}
	if r, err := s.RemoteID(ctx, lobby, ev.ID); err != nil || r != "irc-1" {
		t.Fatalf("RemoteID(origin) = %q, %v", r, err)
	}
	for _, q := range pending(t, s, mx) {
		if err := s.Delivered(ctx, q, "$event:example.org"); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range pending(t, s, mqtt) {
		if err := s.Delivered(ctx, q, ""); err != nil {
			t.Fatal(err)
		}
	}
	if id, err := s.EventByRemote(ctx, mx, "$event:example.org"); err != nil || id != ev.ID {
		t.Fatalf("EventByRemote(target) = %q, %v", id, err)
	}
	if r, err := s.RemoteID(ctx, mx, ev.ID); err != nil || r != "$event:example.org" {
		t.Fatalf("RemoteID(target) = %q, %v", r, err)
	}
	// Delivered without a remote id records none.
	if _, err := s.RemoteID(ctx, mqtt, ev.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("RemoteID in a room without one: %v, want ErrNotFound", err)
	}
	// Ids are per room.
	if _, err := s.EventByRemote(ctx, mqtt, "irc-1"); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("EventByRemote in another room: %v, want ErrNotFound", err)
	}
	if _, err := s.EventByRemote(ctx, lobby, "nope"); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("EventByRemote(unknown): %v, want ErrNotFound", err)
	}
	if _, err := s.RemoteID(ctx, lobby, bridge.NewEventID()); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("RemoteID(unknown): %v, want ErrNotFound", err)
	}
	if _, err := s.Event(ctx, bridge.NewEventID()); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("Event(unknown): %v, want ErrNotFound", err)
	}
}

func testDeliveredTwice(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	a, b := message(lobby, "", "a"), message(lobby, "", "b")
	accept(t, s, a, mqtt)
	accept(t, s, b, mqtt)
	qs := pending(t, s, mqtt)
	for range 2 {
		if err := s.Delivered(ctx, qs[0], "mq-1"); err != nil {
			t.Fatalf("delivered: %v", err)
		}
	}
	if n := depth(t, s); n != 1 {
		t.Fatalf("outbox depth %d, want 1", n)
	}
	// A network reusing an id for another event keeps the first mapping.
	if err := s.Delivered(ctx, qs[1], "mq-1"); err != nil {
		t.Fatalf("delivered with a taken remote id: %v", err)
	}
	if id, err := s.EventByRemote(ctx, mqtt, "mq-1"); err != nil || id != a.ID {
		t.Fatalf("EventByRemote = %q, %v; want %q", id, err, a.ID)
	}
	if n := depth(t, s); n != 0 {
		t.Fatalf("outbox depth %d, want 0", n)
	}
}

func testFailed(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	ev := message(lobby, "", "too long")
	accept(t, s, ev, mqtt, mx)
	q := pending(t, s, mqtt)[0]
	for range 2 {
		if err := s.Failed(ctx, q, "message too long"); err != nil {
			t.Fatal(err)
		}
	}
	if qs := pending(t, s, mqtt); len(qs) != 0 {
		t.Fatalf("failed delivery still pending: %+v", qs)
	}
	if n := depth(t, s); n != 1 {
		t.Fatalf("outbox depth %d, want 1", n)
	}
	var (
		seq                          int64
		link, network, room, id, why string
	)
	err := s.r.QueryRowContext(ctx, s.q(`SELECT seq, link, target_network, target_room, event_id, reason FROM failed`)).
		Scan(&seq, &link, &network, &room, &id, &why)
	if err != nil {
		t.Fatal(err)
	}
	if seq != q.Seq || link != "lobby" || network != mqtt.Network || room != mqtt.Room || id != string(ev.ID) || why != "message too long" {
		t.Fatalf("failed row: %d %q %q %q %q %q", seq, link, network, room, id, why)
	}
}

// An operator lists what failed, queues one again and drops another.
func testFailedRetryDiscard(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	first, second := message(lobby, "", "first"), message(lobby, "", "second")
	accept(t, s, first, mqtt)
	accept(t, s, second, mqtt)
	qs := pending(t, s, mqtt)
	for i, why := range []string{"room gone", "not allowed"} {
		if err := s.Failed(ctx, qs[i], why); err != nil {
			t.Fatal(err)
		}
	}
	accept(t, s, message(lobby, "", "third"), mqtt)
	if rooms, err := s.FailedRooms(ctx); err != nil || len(rooms) != 1 || rooms[0].Room != mqtt || rooms[0].Count != 2 {
		t.Errorf("failed rooms %+v, %v; want %v with 2", rooms, err, mqtt)
	}
	list, err := s.FailedDeliveries(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Seq != qs[1].Seq || list[1].Seq != qs[0].Seq || list[1].Reason != "room gone" ||
		list[1].Target != mqtt || list[1].Link != "lobby" || list[1].Event.(*bridge.Message).Text != "first" || list[1].FailedAt.IsZero() {
		t.Fatalf("failed list %+v", list)
	}
	if one, err := s.FailedDeliveries(ctx, 1); err != nil || len(one) != 1 || one[0].Seq != qs[1].Seq {
		t.Errorf("limit 1: %+v, %v", one, err)
	}

	// Queued again: behind what waits for the room, with the event whole.
	q, err := s.Requeue(ctx, qs[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	waiting := pending(t, s, mqtt)
	if len(waiting) != 2 || waiting[0].Event.(*bridge.Message).Text != "third" || waiting[1].Seq != q.Seq ||
		waiting[1].Event.(*bridge.Message).Text != "first" || q.Target != mqtt || q.Link != "lobby" || q.Seq <= waiting[0].Seq {
		t.Fatalf("after requeue: pending %+v, requeued %+v", waiting, q)
	}
	if _, err := s.Requeue(ctx, qs[0].Seq); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("second requeue: %v, want not found", err)
	}

	if err := s.Discard(ctx, qs[1].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(ctx, qs[1].Seq); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("second discard: %v, want not found", err)
	}
	if list, err := s.FailedDeliveries(ctx, 10); err != nil || len(list) != 0 {
		t.Errorf("failed list after retry and discard: %+v, %v", list, err)
	}
	if rooms, err := s.FailedRooms(ctx); err != nil || len(rooms) != 0 {
		t.Errorf("failed rooms after retry and discard: %+v, %v", rooms, err)
	}
	if n := depth(t, s); n != 2 {
		t.Errorf("outbox depth %d, want 2", n)
	}
}

func testReopen(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	dsn, dir := newDB(t)
	s := openStore(t, dsn, dir)
	evs := everyKind(lobby)
	for _, ev := range evs {
		accept(t, s, ev, mqtt, mx)
	}
	q := pending(t, s, mx)[0]
	if err := s.Delivered(ctx, q, "mx-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 { // the second reopen finds nothing to migrate
		s = openStore(t, dsn, dir)
		if n := depth(t, s); n != 2*len(evs)-1 {
			t.Fatalf("outbox depth %d after reopen, want %d", n, 2*len(evs)-1)
		}
		qs := pending(t, s, mqtt)
		for i, q := range qs {
			if !reflect.DeepEqual(q.Event, evs[i]) {
				t.Errorf("after reopen #%d: got %#v\nwant %#v", i, q.Event, evs[i])
			}
		}
		if id, err := s.EventByRemote(ctx, mx, "mx-1"); err != nil || id != evs[0].Head().ID {
			t.Fatalf("EventByRemote after reopen = %q, %v", id, err)
		}
		// What was stored before is still known: the same event, its
		// origin's remote id, and our delivery's coming back.
		for _, ev := range []bridge.Event{evs[0], message(lobby, evs[0].Head().Origin.RemoteID, "again"), message(mx, "mx-1", "echo")} {
			if _, ok, err := s.Accept(ctx, "lobby", ev, []bridge.RoomAddr{mqtt}); err != nil || ok {
				t.Fatalf("after reopen, accept of %s from %s: %v, %v; want a duplicate", ev.Head().Origin.RemoteID, ev.Head().Origin.Room, ok, err)
			}
		}
		var versions, max int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&versions, &max); err != nil {
			t.Fatal(err)
		}
		if versions != len(migrations) || max != migrations[len(migrations)-1].version {
			t.Fatalf("schema_version has %d rows up to %d, want %d", versions, max, len(migrations))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// testDeliveredBecomesDurable: a delivery record reaches the database on
// its own, without another write or a Close, shortly after.
func testDeliveredBecomesDurable(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	dsn, dir := newDB(t)
	s := openStore(t, dsn, dir)
	accept(t, s, message(lobby, "r-1", "one"), mqtt)
	accept(t, s, message(lobby, "r-2", "two"), mqtt)
	q := pending(t, s, mqtt)[0]
	if err := s.Delivered(ctx, q, "m-1"); err != nil {
		t.Fatal(err)
	}
	if n := depth(t, s); n != 1 {
		t.Fatalf("depth %d right after Delivered, want 1", n)
	}
	if qs := pending(t, s, mqtt); len(qs) != 1 || qs[0].Seq == q.Seq {
		t.Fatalf("pending after Delivered = %v, want only the second entry", qs)
	}
	other := openStore(t, dsn, dir) // another process's view of the database
	deadline := time.Now().Add(5 * time.Second)
	for depth(t, other) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("delivery record not durable after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if id, err := other.EventByRemote(ctx, mqtt, "m-1"); err != nil || id != q.Event.Head().ID {
		t.Fatalf("EventByRemote from another handle = %q, %v", id, err)
	}
}

func testAdapterState(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	dsn, dir := newDB(t)
	s := openStore(t, dsn, dir)
	mx, irc := s.State("matrix"), s.State("libera")
	if first, err := mx.PutIfAbsent(ctx, "txn:42", "done"); err != nil || !first {
		t.Fatalf("first PutIfAbsent = %v, %v", first, err)
	}
	if first, err := mx.PutIfAbsent(ctx, "txn:42", "again"); err != nil || first {
		t.Fatalf("second PutIfAbsent = %v, %v", first, err)
	}
	if _, ok, _ := irc.Get(ctx, "txn:42"); ok {
		t.Error("state leaked between networks")
	}
	if err := mx.Put(ctx, "portal:lobby", "!a:hs"); err != nil {
		t.Fatal(err)
	}
	if err := mx.Put(ctx, "portal:lobby", "!b:hs"); err != nil {
		t.Fatal(err)
	}
	// Compare and put: only over the value read (or no value).
	if ok, err := mx.CompareAndPut(ctx, "portal:lobby", "!a:hs", true, "!c:hs"); err != nil || ok {
		t.Fatalf("CompareAndPut over a stale value = %v, %v, want false", ok, err)
	}
	if ok, err := mx.CompareAndPut(ctx, "portal:lobby", "", false, "!c:hs"); err != nil || ok {
		t.Fatalf("CompareAndPut over a value read as unset = %v, %v, want false", ok, err)
	}
	if ok, err := irc.CompareAndPut(ctx, "portal:lobby", "!b:hs", true, "!c:hs"); err != nil || ok {
		t.Fatalf("CompareAndPut of another network's key = %v, %v, want false", ok, err)
	}
	if ok, err := irc.CompareAndPut(ctx, "links", "", false, "{}"); err != nil || !ok {
		t.Fatalf("CompareAndPut of an unset key read as unset = %v, %v, want true", ok, err)
	}
	if v, _, _ := mx.Get(ctx, "portal:lobby"); v != "!b:hs" {
		t.Errorf("failed CompareAndPuts changed the value to %q", v)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mx = openStore(t, dsn, dir).State("matrix")
	if v, ok, err := mx.Get(ctx, "portal:lobby"); err != nil || !ok || v != "!b:hs" {
		t.Errorf("after reopen Get = %q, %v, %v", v, ok, err)
	}
	if v, _, _ := mx.Get(ctx, "txn:42"); v != "done" {
		t.Errorf("PutIfAbsent overwrote: %q", v)
	}
	if err := mx.Delete(ctx, "portal:lobby"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := mx.Get(ctx, "portal:lobby"); ok {
		t.Error("deleted key still set")
	}
}

func testStateScan(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	mx, irc := s.State("matrix"), s.State("libera")
	// More than a page, so that paging is crossed; keys around the prefix
	// (an upper-case twin, a "%" and "_" that LIKE would take as
	// wildcards, a multi-byte character) must not match.
	var want []string
	for i := range scanPage + 3 {
		k := fmt.Sprintf("txn:%04d", i)
		want = append(want, k)
		if err := mx.Put(ctx, k, "v"+k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"TXN:1", "txn", "txa:1", "tx%:1", "tx_:1", "portal:é", "ghost:x"} {
		if err := mx.Put(ctx, k, "other"); err != nil {
			t.Fatal(err)
		}
	}
	if err := irc.Put(ctx, "txn:other-network", "x"); err != nil {
		t.Fatal(err)
	}
	var got []string
	// Deleting what it is shown, as a prune does.
	err := mx.Scan(ctx, "txn:", func(k, v string) bool {
		if v != "v"+k {
			t.Errorf("%s = %q", k, v)
		}
		got = append(got, k)
		if err := mx.Delete(ctx, k); err != nil {
			t.Error(err)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scan txn: got %d keys %v..., want %d", len(got), got[:min(3, len(got))], len(want))
	}
	if _, ok, _ := mx.Get(ctx, "txn:0000"); ok {
		t.Error("a key deleted during the scan is still set")
	}
	if _, ok, _ := irc.Get(ctx, "txn:other-network"); !ok {
		t.Error("the scan reached another network's state")
	}
	got = nil
	if err := mx.Scan(ctx, "portal:é", func(k, _ string) bool { got = append(got, k); return true }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"portal:é"}) {
		t.Errorf("multi-byte prefix: %v", got)
	}
	got = nil
	if err := mx.Scan(ctx, "", func(k, _ string) bool { got = append(got, k); return len(got) < 2 }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("stopping after 2: %v", got)
	}
}

func testNewerSchema(t *testing.T, newDB newDBFunc) {
	dsn, dir := newDB(t)
	s := openStore(t, dsn, dir)
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_version (version, name, applied_at) VALUES (100000, 'from the future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(t.Context(), dsn, dir, nil)
	if err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error %q does not say the schema is newer", err)
	}
}

// testConcurrentOpen starts several processes' stores on a new database
// at once: each migration is applied exactly once.
func testConcurrentOpen(t *testing.T, newDB newDBFunc) {
	dsn, dir := newDB(t)
	var wg sync.WaitGroup
	stores := make([]*Store, 3)
	for i := range stores {
		wg.Go(func() {
			s, err := Open(t.Context(), dsn, dir, nil)
			if err != nil {
				t.Errorf("open: %v", err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		return
	}
	var n int
	if err := stores[0].r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != len(migrations) {
		t.Fatalf("schema_version has %d rows, %v; want %d", n, err, len(migrations))
	}
	accept(t, stores[2], message(lobby, "", "x"), mqtt)
}

// testConcurrent runs writers, a cursor-keeping consumer, a consumer that
// re-reads from the start (as the router does) and readers at once. Every
// delivery must be seen exactly once and in the order each writer accepted
// its events, and no call may fail with a lock error.
func testConcurrent(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	const writers, perWriter = 4, 40
	total := writers * perWriter

	type pos struct{ writer, i int }
	var mu sync.Mutex
	where := map[bridge.EventID]pos{}

	var wg, consumers sync.WaitGroup
	var writing atomic.Int32
	writing.Store(writers)
	for w := range writers {
		wg.Go(func() {
			defer writing.Add(-1)
			for i := range perWriter {
				ev := message(bridge.RoomAddr{Network: "libera", Room: fmt.Sprint("#w", w)}, fmt.Sprint("r", i), "x")
				mu.Lock()
				where[ev.ID] = pos{w, i}
				mu.Unlock()
				if _, ok, err := s.Accept(ctx, "lobby", ev, []bridge.RoomAddr{mqtt, mx}); err != nil || !ok {
					t.Errorf("accept: %v, %v", ok, err)
					return
				}
			}
		})
	}

	consume := func(target bridge.RoomAddr, keepCursor bool) {
		seen := map[bridge.EventID]bool{}
		last := make([]int, writers)
		for i := range last {
			last[i] = -1
		}
		after := int64(0)
		deadline := time.Now().Add(2 * time.Minute)
		for len(seen) < total {
			if time.Now().After(deadline) {
				t.Errorf("%s: saw %d of %d deliveries", target, len(seen), total)
				return
			}
			from := after
			if !keepCursor {
				from = 0
			}
			// Read before Pending: a writer that finished after it may
			// have committed behind an empty answer.
			writersDone := writing.Load() == 0
			qs, err := s.Pending(ctx, target, from, 16)
			if err != nil {
				t.Errorf("pending: %v", err)
				return
			}
			if len(qs) == 0 {
				if keepCursor && writersDone {
					// Nothing after the cursor although deliveries are
					// missing: one committed behind it and was skipped.
					if behind, err := s.Pending(ctx, target, 0, 1); err == nil && len(behind) > 0 {
						t.Errorf("%s: seq %d committed after the cursor passed %d", target, behind[0].Seq, after)
						return
					}
				}
				time.Sleep(time.Millisecond)
				continue
			}
			for _, q := range qs {
				id := q.Event.Head().ID
				if seen[id] {
					t.Errorf("%s: %s delivered twice", target, id)
					return
				}
				seen[id] = true
				mu.Lock()
				p := where[id]
				mu.Unlock()
				if p.i <= last[p.writer] {
					t.Errorf("%s: writer %d's event %d after its event %d", target, p.writer, p.i, last[p.writer])
				}
				last[p.writer] = p.i
				if err := s.Delivered(ctx, q, target.Network+"-"+string(id)); err != nil {
					t.Errorf("delivered: %v", err)
					return
				}
				after = q.Seq
			}
		}
	}
	consumers.Go(func() { consume(mqtt, true) })
	consumers.Go(func() { consume(mx, false) })
	wg.Go(func() {
		for writing.Load() > 0 {
			if _, err := s.OutboxDepth(ctx); err != nil {
				t.Errorf("outbox depth: %v", err)
				return
			}
			if _, err := s.PendingTargets(ctx); err != nil {
				t.Errorf("pending targets: %v", err)
				return
			}
		}
	})
	wg.Wait()
	consumers.Wait()
	if t.Failed() {
		return
	}
	if n := depth(t, s); n != 0 {
		t.Fatalf("outbox depth %d at the end", n)
	}
	for id := range where {
		if r, err := s.RemoteID(ctx, mx, id); err != nil || r != "matrix-"+string(id) {
			t.Fatalf("RemoteID = %q, %v", r, err)
		}
	}
}

func testErrors(t *testing.T, newDB newDBFunc) {
	s := newStore(t, newDB)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.Accept(ctx, "lobby", message(lobby, "", "x"), []bridge.RoomAddr{mqtt}); !errors.Is(err, context.Canceled) {
		t.Errorf("accept with a canceled context: %v", err)
	}
	if _, err := s.Pending(ctx, mqtt, 0, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("pending with a canceled context: %v", err)
	}
	if _, err := s.Event(ctx, bridge.NewEventID()); !errors.Is(err, context.Canceled) {
		t.Errorf("event with a canceled context: %v", err)
	}
	if _, err := s.Pending(t.Context(), mqtt, 0, 0); err == nil {
		t.Error("pending with limit 0 did not fail")
	}
	if _, _, err := s.Accept(t.Context(), "lobby", &bridge.Message{Text: "no id"}, nil); err == nil {
		t.Error("accept of an event without id did not fail")
	}
	if n := depth(t, s); n != 0 {
		t.Errorf("outbox depth %d", n)
	}
}

func TestSQLiteDSN(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	for _, tc := range []struct{ dsn, dataDir, file string }{
		{"sqlite", filepath.Join(dir, "data"), filepath.Join(dir, "data", "switchboard.db")},
		{"", filepath.Join(dir, "empty"), filepath.Join(dir, "empty", "switchboard.db")},
		{"sqlite://" + (&url.URL{Path: filepath.Join(dir, "ex plicit?#", "a.db")}).EscapedPath(), "", filepath.Join(dir, "ex plicit?#", "a.db")},
		{"sqlite://" + filepath.Join(dir, "norm.db") + "?_synchronous=NORMAL", "", filepath.Join(dir, "norm.db")},
		{"sqlite?_synchronous=NORMAL", filepath.Join(dir, "normal"), filepath.Join(dir, "normal", "switchboard.db")},
		{"file:" + filepath.Join(dir, "uri.db") + "?cache=private", "", filepath.Join(dir, "uri.db")},
	} {
		s := openStore(t, tc.dsn, tc.dataDir)
		accept(t, s, message(lobby, "", "x"), mqtt)
		var journal string
		var syncMode, fk int
		conn, err := s.w.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for q, v := range map[string]any{"journal_mode": &journal, "synchronous": &syncMode, "foreign_keys": &fk} {
			if err := conn.QueryRowContext(ctx, "PRAGMA "+q).Scan(v); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close()
		// FULL is SQLite's NORMAL plus the store's own sync of the log
		// after each commit.
		if journal != "wal" || syncMode != 1 || fk != 1 {
			t.Errorf("%q: journal_mode %s synchronous %d foreign_keys %d", tc.dsn, journal, syncMode, fk)
		}
		if full := !strings.Contains(tc.dsn, "NORMAL"); full != (s.wal != nil) {
			t.Errorf("%q: store syncs the log itself: %v", tc.dsn, s.wal != nil)
		} else if full && (s.wal.path != tc.file+"-wal" || s.wal.syncs == 0 || s.wal.durable != s.wal.written) {
			t.Errorf("%q: log %s synced %d times, %d of %d commits durable", tc.dsn, s.wal.path, s.wal.syncs, s.wal.durable, s.wal.written)
		}
		if _, err := s.r.ExecContext(ctx, `DELETE FROM outbox`); err == nil {
			t.Errorf("%q: a reader connection can write", tc.dsn)
		}
		s.Close()
		if _, err := os.Stat(tc.file); err != nil {
			t.Errorf("%q: %v", tc.dsn, err)
		}
	}
	for _, dsn := range []string{"mysql://x", "/plain/path.db", "sqlite://"} {
		if s, err := Open(ctx, dsn, dir, nil); err == nil {
			s.Close()
			t.Errorf("Open(%q) did not fail", dsn)
		}
	}
	if s, err := Open(ctx, "sqlite", "", nil); err == nil {
		s.Close()
		t.Error("Open(sqlite) without a data directory did not fail")
	}
}

func TestRebind(t *testing.T) {
	got := rebind(`SELECT '?', "a?" FROM t WHERE a = ? AND b IN (?, ?)`)
	want := `SELECT '?', "a?" FROM t WHERE a = $1 AND b IN ($2, $3)`
	if got != want {
		t.Fatalf("rebind = %s", got)
	}
}

// TestSQLiteTwoStores has two stores, as two processes would, write one
// file at once: they wait for each other's write lock instead of failing
// with "database is locked".
func TestSQLiteTwoStores(t *testing.T) {
	dir := t.TempDir()
	stores := []*Store{openStore(t, "sqlite", dir), openStore(t, "sqlite", dir)}
	var wg sync.WaitGroup
	for i, s := range stores {
		for w := range 2 {
			wg.Go(func() {
				for j := range 25 {
					ev := message(lobby, fmt.Sprintf("s%d-w%d-%d", i, w, j), "x")
					if _, ok, err := s.Accept(t.Context(), "lobby", ev, []bridge.RoomAddr{mqtt, mx}); err != nil || !ok {
						t.Errorf("accept: %v, %v", ok, err)
						return
					}
					qs, err := s.Pending(t.Context(), mqtt, 0, 1)
					if err != nil {
						t.Errorf("pending: %v", err)
						return
					}
					for _, q := range qs {
						if err := s.Delivered(t.Context(), q, ""); err != nil {
							t.Errorf("delivered: %v", err)
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	var n int
	if err := stores[1].r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM events`).Scan(&n); err != nil || n != 100 {
		t.Fatalf("%d events, %v; want 100", n, err)
	}
}

func outboxRooms(t testing.TB, s *Store) []RoomQueue {
	t.Helper()
	rooms, err := s.OutboxRooms(t.Context())
	if err != nil {
		t.Fatalf("outbox rooms: %v", err)
	}
	return rooms
}

// testOutboxRooms: the outbox per target room, with when its head was
// queued; a delivered entry leaves the count at once, and a room whose
// queue emptied leaves the list.
func testOutboxRooms(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	if rooms := outboxRooms(t, s); len(rooms) != 0 {
		t.Fatalf("empty outbox lists %v", rooms)
	}
	before := time.Now().Truncate(time.Microsecond)
	accept(t, s, message(lobby, "r-1", "one"), mqtt, mx)
	between := time.Now()
	time.Sleep(5 * time.Millisecond)
	accept(t, s, message(lobby, "r-2", "two"), mqtt)
	rooms := outboxRooms(t, s)
	if len(rooms) != 2 || rooms[0].Room != mx || rooms[0].Depth != 1 || rooms[1].Room != mqtt || rooms[1].Depth != 2 {
		t.Fatalf("outbox rooms %+v, want %v with 1 and %v with 2", rooms, mx, mqtt)
	}
	for _, r := range rooms {
		if r.Oldest.Before(before) || r.Oldest.After(between) {
			t.Errorf("%v: oldest queued at %v, want the first accept's time, between %v and %v", r.Room, r.Oldest, before, between)
		}
	}

	// Delivered, not yet recorded: the counts drop at once.
	qs := pending(t, s, mqtt)
	if err := s.Delivered(ctx, qs[0], ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(ctx, pending(t, s, mx)[0], ""); err != nil {
		t.Fatal(err)
	}
	if rooms := outboxRooms(t, s); len(rooms) != 1 || rooms[0].Room != mqtt || rooms[0].Depth != 1 {
		t.Fatalf("after two deliveries, outbox rooms %+v, want %v with 1", rooms, mqtt)
	}
	// Recorded: the head is the second entry, queued later.
	deadline := time.Now().Add(5 * time.Second)
	for {
		// A read overlapping the records' commit errs low (see subtract)
		// and may miss the room for that moment; it must come back.
		rooms := outboxRooms(t, s)
		if len(rooms) > 1 || len(rooms) == 1 && (rooms[0].Room != mqtt || rooms[0].Depth != 1) {
			t.Fatalf("outbox rooms %+v, want %v with 1", rooms, mqtt)
		}
		if len(rooms) == 1 && rooms[0].Oldest.After(between) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("head of %v still queued at %v, before the second accept", mqtt, rooms[0].Oldest)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Failed(ctx, qs[1], "gone"); err != nil {
		t.Fatal(err)
	}
	if rooms := outboxRooms(t, s); len(rooms) != 0 {
		t.Fatalf("emptied outbox lists %+v", rooms)
	}
}

// testQueuedAtMigration: entries queued before the outbox had queued_at
// take their event's acceptance time.
func testQueuedAtMigration(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	dsn, dir := newDB(t)
	d, db := openRaw(t, dsn, dir)
	var stmts []string
	for _, m := range migrations[:2] {
		stmts = append(stmts, m.statements(d)...)
	}
	created := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	stmts = append(stmts,
		`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
		`INSERT INTO schema_version VALUES (1, 'events, remote ids, outbox', 0), (2, 'adapter state', 0)`,
		fmt.Sprintf(`INSERT INTO events VALUES ('ev-1', 'message', 'lobby', 'libera', '#lobby', 'r-1', 'libera', 'alice', '{}', %d)`, created.UnixMicro()),
		`INSERT INTO outbox (link, target_network, target_room, event_id) VALUES ('lobby', 'mqtt', 'chat/lobby', 'ev-1')`,
	)
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()
	s := openStore(t, dsn, dir)
	rooms := outboxRooms(t, s)
	if len(rooms) != 1 || rooms[0].Room != mqtt || rooms[0].Depth != 1 || !rooms[0].Oldest.Equal(created) {
		t.Fatalf("outbox rooms %+v, want %v with 1 queued at %v", rooms, mqtt, created)
	}
	// New entries are stamped by Accept.
	accept(t, s, message(lobby, "r-2", "two"), mx)
	if rooms := outboxRooms(t, s); len(rooms) != 2 || time.Since(rooms[0].Oldest) > time.Minute {
		t.Fatalf("outbox rooms %+v, want %v queued just now", rooms, mx)
	}
}

// openRaw opens the database behind dsn without the store, as an older
// build left it.
func openRaw(t *testing.T, dsn, dir string) (dialect, *sql.DB) {
	t.Helper()
	d, driver := sqlite, "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		d, driver = postgres, "pgx/v5"
	} else {
		w, _, _, _, err := sqliteDSNs(dsn, dir)
		if err != nil {
			t.Fatal(err)
		}
		dsn = w
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return d, db
}
