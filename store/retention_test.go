package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// marker returns a string found nowhere else, to look for in the files.
func marker() string { return "MARK" + rand.Text() }

// oldText is a message whose marker lies past the quote a reply keeps.
func oldText(mark string) string {
	return "this line starts the quote a reply shows, and then says " + mark + " at the end"
}

// fileHolds tells whether the SQLite file or its log holds s.
func fileHolds(t *testing.T, st *Store, s string) bool {
	t.Helper()
	for _, f := range []string{st.file, st.file + "-wal"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

func fullText(t *testing.T, s *Store, id bridge.EventID) (string, error) {
	t.Helper()
	return s.FullText(t.Context(), id)
}

// testRetention: old contents go, from the store and (SQLite) from its
// files, except what the outbox and the failed list still hold; what a
// reply needs stays.
func testRetention(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	marks := map[string]string{}
	msg := func(name, remote string) *bridge.Message {
		marks[name] = marker()
		m := message(lobby, remote, oldText(marks[name]))
		m.HTML = "<b>" + marks[name] + "</b>"
		m.Sender.Mask = "alice!a@" + marks[name] + ".example"
		return m
	}
	delivered := msg("delivered", "irc-1")
	waiting := msg("waiting", "irc-2")
	failed := msg("failed", "irc-3")
	for _, m := range []*bridge.Message{delivered, waiting, failed} {
		accept(t, s, m, mqtt, mx)
	}
	for _, q := range pending(t, s, mqtt) {
		if err := s.Delivered(ctx, q, "mq-"+q.Event.Head().Origin.RemoteID); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range pending(t, s, mx) {
		var err error
		switch q.Event.Head().ID {
		case delivered.ID:
			err = s.Delivered(ctx, q, "$mx-1")
		case failed.ID:
			err = s.Failed(ctx, q, "refused")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.dialect == sqlite && s.file != "" {
		if err := s.checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if !fileHolds(t, s, marks["delivered"]) {
			t.Fatal("the marker is not in the file before pruning: the search cannot fail")
		}
	}

	keep := Retention{Messages: time.Hour, Failed: 30 * 24 * time.Hour}
	st, err := s.Prune(ctx, keep, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prune: %+v", st)
	if st.Events != 1 || st.Failed != 0 {
		t.Fatalf("pruned %d events, dropped %d failed; want 1 and 0", st.Events, st.Failed)
	}
	if _, err := fullText(t, s, delivered.ID); !errors.Is(err, bridge.ErrContentRemoved) {
		t.Fatalf("full text of a pruned message: %v, want ErrContentRemoved", err)
	}
	if _, err := fullText(t, s, bridge.NewEventID()); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("full text of an unknown event: %v, want ErrNotFound", err)
	}
	for _, m := range []*bridge.Message{waiting, failed} {
		if got, err := fullText(t, s, m.ID); err != nil || got != m.Text {
			t.Fatalf("full text of a message still in the outbox or failed list: %q, %v", got, err)
		}
	}
	if qs := pending(t, s, mx); len(qs) != 1 || qs[0].Event.(*bridge.Message).Text != waiting.Text {
		t.Fatalf("outbox after pruning: %+v", qs)
	}
	fails, err := s.FailedDeliveries(ctx, 10)
	if err != nil || len(fails) != 1 || fails[0].Event.(*bridge.Message).Text != failed.Text {
		t.Fatalf("failed list after pruning: %+v, %v", fails, err)
	}

	// What replies, edits and deletions need is still there.
	ev, err := s.Event(ctx, delivered.ID)
	if err != nil {
		t.Fatal(err)
	}
	kept := ev.(*bridge.Message)
	if want := bridge.Excerpt(delivered.Text, 40); kept.Text != want || kept.HTML != "" ||
		kept.Sender.Name != delivered.Sender.Name || kept.Sender.ID != delivered.Sender.ID || kept.Sender.Mask != "" ||
		kept.Origin != delivered.Origin || !kept.Time.Equal(delivered.Time) {
		t.Fatalf("pruned event %+v, want the sender, origin, time and the quote %q", kept, want)
	}
	if id, err := s.EventByRemote(ctx, lobby, "irc-1"); err != nil || id != delivered.ID {
		t.Fatalf("origin remote id: %v, %v", id, err)
	}
	for room, want := range map[bridge.RoomAddr]string{mqtt: "mq-irc-1", mx: "$mx-1"} {
		if got, err := s.RemoteID(ctx, room, delivered.ID); err != nil || got != want {
			t.Fatalf("remote id in %s: %q, %v; want %q", room, got, err, want)
		}
	}
	// A redelivered copy of the pruned message is still a duplicate.
	again := *delivered
	again.ID = bridge.NewEventID()
	if _, ok, err := s.Accept(ctx, "lobby", &again, []bridge.RoomAddr{mqtt}); err != nil || ok {
		t.Fatalf("accept of a pruned message's copy: %v, %v; want a duplicate", ok, err)
	}
	if s.dialect == sqlite && s.file != "" {
		if fileHolds(t, s, marks["delivered"]) {
			t.Fatal("the pruned message's text is still in the database file or its log")
		}
		if !fileHolds(t, s, marks["waiting"]) {
			t.Fatal("the waiting message's text is not in the files")
		}
	}

	// The failed list's own age: its entry goes, then its event's text.
	st, err = s.Prune(ctx, Retention{Messages: time.Hour, Failed: time.Hour}, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed != 1 || st.Events != 1 {
		t.Fatalf("second prune: %+v, want the failed delivery dropped and its event pruned", st)
	}
	if _, err := fullText(t, s, failed.ID); !errors.Is(err, bridge.ErrContentRemoved) {
		t.Fatalf("full text once out of the failed list: %v, want ErrContentRemoved", err)
	}
	if fails, err := s.FailedDeliveries(ctx, 10); err != nil || len(fails) != 0 {
		t.Fatalf("failed list: %+v, %v; want it empty", fails, err)
	}
	// Once delivered, the last one goes too.
	for _, q := range pending(t, s, mx) {
		if err := s.Delivered(ctx, q, "$mx-2"); err != nil {
			t.Fatal(err)
		}
	}
	if st, err = s.Prune(ctx, keep, time.Now().Add(2*time.Hour)); err != nil || st.Events != 1 {
		t.Fatalf("third prune: %+v, %v; want the delivered message pruned", st, err)
	}
	if s.dialect == sqlite && s.file != "" {
		for name, m := range marks {
			if fileHolds(t, s, m) {
				t.Errorf("the %s message's text is still in the database file or its log", name)
			}
		}
	}
}
