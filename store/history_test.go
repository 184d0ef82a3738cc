package store

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// TestHistory runs the history query on SQLite (both sync modes) and
// PostgreSQL.
func TestHistory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		newDB func(t *testing.T) newDBFunc
	}{
		{"SQLite", func(*testing.T) newDBFunc {
			return func(t *testing.T) (string, string) { return "sqlite", t.TempDir() }
		}},
		{"SQLiteNormal", func(*testing.T) newDBFunc {
			return func(t *testing.T) (string, string) { return "sqlite?_synchronous=NORMAL", t.TempDir() }
		}},
		{"Postgres", func(t *testing.T) newDBFunc { return postgresDBs(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testHistory(t, tc.newDB(t)) })
	}
}

func texts(es []bridge.HistoryEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Message.Text
	}
	return out
}

func testHistory(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	web := bridge.RoomAddr{Network: "web", Room: "lobby"}
	history := func(q bridge.HistoryQuery) []bridge.HistoryEntry {
		t.Helper()
		if q.Link == "" {
			q.Link = "lobby"
		}
		es, err := s.History(ctx, q)
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		return es
	}
	if es := history(bridge.HistoryQuery{Limit: 50}); len(es) != 0 {
		t.Fatalf("history of an empty store: %q", texts(es))
	}

	// 60 messages, said in two rooms of the link in turn, and delivered
	// to the third.
	var msgs []*bridge.Message
	for i := range 60 {
		from, to := lobby, mx
		if i%2 == 1 {
			from, to = mx, lobby
		}
		m := message(from, fmt.Sprintf("r-%d", i), fmt.Sprintf("line %02d", i))
		accept(t, s, m, to, web)
		msgs = append(msgs, m)
	}
	// Another link's and a direct message are no part of it.
	if _, _, err := s.Accept(ctx, "other", message(mqtt, "o-1", "elsewhere"), []bridge.RoomAddr{lobby}); err != nil {
		t.Fatal(err)
	}
	dm := message(lobby, "d-1", "privately")
	dm.To = &bridge.Sender{Network: "matrix", ID: "@bob:example.org"}
	if _, _, err := s.Accept(ctx, bridge.DirectLink, dm, []bridge.RoomAddr{{Network: "matrix"}}); err != nil {
		t.Fatal(err)
	}
	// Line 55 is edited twice: the last edit counts. Line 57 is deleted,
	// line 58 edited and then deleted.
	edit := func(m *bridge.Message, text string) *bridge.Edit {
		e := &bridge.Edit{Header: header(bridge.Addr(m), ""), Target: bridge.Ref{Event: m.ID}, Text: text}
		accept(t, s, e, web)
		return e
	}
	edit(msgs[55], "line 55, edited")
	last := edit(msgs[55], "line 55, edited again")
	edit(msgs[58], "line 58, edited")
	for _, i := range []int{57, 58} {
		accept(t, s, &bridge.Delete{Header: header(bridge.Addr(msgs[i]), ""), Target: bridge.Ref{Event: msgs[i].ID}}, web)
	}

	var all []string // what the link said, as it stands
	for i := range 60 {
		switch i {
		case 57, 58:
		case 55:
			all = append(all, "line 55, edited again")
		default:
			all = append(all, fmt.Sprintf("line %02d", i))
		}
	}
	want := all[len(all)-50:]
	es := history(bridge.HistoryQuery{Limit: 50})
	if got := texts(es); !slices.Equal(got, want) {
		t.Fatalf("last 50:\n%q\nwant\n%q", got, want)
	}
	for _, e := range es {
		edited := e.Message.ID == msgs[55].ID
		if edited && !e.Edited.Equal(last.Time) || !edited && !e.Edited.IsZero() {
			t.Errorf("%q edited at %v", e.Message.Text, e.Edited)
		}
		if e.Message.Sender.Name != "Alice ☕" || e.Message.Time.IsZero() {
			t.Errorf("%q from %+v at %v: want its sender and time", e.Message.Text, e.Message.Sender, e.Message.Time)
		}
	}
	if got := texts(history(bridge.HistoryQuery{Limit: 3})); !slices.Equal(got, want[len(want)-3:]) {
		t.Errorf("last 3: %q", got)
	}
	if got := texts(history(bridge.HistoryQuery{Link: "other", Limit: 50})); !slices.Equal(got, []string{"elsewhere"}) {
		t.Errorf("the other link's: %q", got)
	}

	// Except leaves out what still waits for that room: here, all.
	if es := history(bridge.HistoryQuery{Limit: 50, Except: web}); len(es) != 0 {
		t.Errorf("history for web, where all is waiting: %q", texts(es))
	}
	for _, q := range pending(t, s, web) {
		if q.Event.Kind() != bridge.KindMessage || q.Event.Head().ID == msgs[59].ID {
			continue
		}
		if err := s.Delivered(ctx, q, ""); err != nil {
			t.Fatal(err)
		}
	}
	before59 := all[len(all)-51 : len(all)-1]
	if got := texts(history(bridge.HistoryQuery{Limit: 50, Except: web})); !slices.Equal(got, before59) {
		t.Errorf("history for web, line 59 waiting:\n%q\nwant\n%q", got, before59)
	}

	// Since: what is older is left out, as retention will remove it.
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	accept(t, s, message(lobby, "r-new", "after the cut"), mx)
	if got := texts(history(bridge.HistoryQuery{Limit: 50, Since: cut})); !slices.Equal(got, []string{"after the cut"}) {
		t.Errorf("since the cut: %q", got)
	}

	// Once retention removed a message's contents, it is no history.
	for _, q := range pending(t, s, mx) {
		if err := s.Delivered(ctx, q, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range pending(t, s, lobby) {
		if err := s.Delivered(ctx, q, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range pending(t, s, web) {
		if err := s.Delivered(ctx, q, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveContent(ctx, msgs[59].ID); err != nil {
		t.Fatal(err)
	}
	got := texts(history(bridge.HistoryQuery{Limit: 2}))
	if want := []string{"line 56", "after the cut"}; !slices.Equal(got, want) {
		t.Errorf("after line 59's contents were removed: %q, want %q", got, want)
	}

	// A message of the history posted to a room is known there by the
	// id it got, both ways; a remote id already taken keeps its event.
	portal := bridge.RoomAddr{Network: "matrix", Room: "#sb_lobby:example.org"}
	if err := s.Posted(ctx, portal, msgs[20].ID, "$seed-20"); err != nil {
		t.Fatal(err)
	}
	if err := s.Posted(ctx, portal, msgs[21].ID, "$seed-20"); err != nil {
		t.Fatal(err)
	}
	if id, err := s.EventByRemote(ctx, portal, "$seed-20"); err != nil || id != msgs[20].ID {
		t.Errorf("EventByRemote(posted) = %q, %v; want %s", id, err, msgs[20].ID)
	}
	if r, err := s.RemoteID(ctx, portal, msgs[20].ID); err != nil || r != "$seed-20" {
		t.Errorf("RemoteID(posted) = %q, %v", r, err)
	}
}
