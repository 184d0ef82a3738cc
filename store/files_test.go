package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Files come back byte for byte, and go with their message's words: when
// retention removes them (not while a delivery of the message waits), at
// once when the author deletes the message, and when their message never
// came.
func testFiles(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	now := time.Now()
	data := append([]byte("\x89PNG\r\n\x1a\n\x00\x00"), bytes.Repeat([]byte{0, 0xff, 0x7f}, 1000)...)
	put := func(id string, ev bridge.EventID, at time.Time) {
		t.Helper()
		if err := s.PutFile(ctx, bridge.File{ID: id, Event: ev, Name: "ünïcode name.png", Mime: "image/png", Data: data, Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	has := func(id string) bool {
		t.Helper()
		_, err := s.File(ctx, id)
		if err != nil && !errors.Is(err, bridge.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	delivered := message(lobby, "irc-1", "old.png")
	waiting := message(lobby, "irc-2", "waiting.png")
	deleted := message(lobby, "irc-3", "deleted.png")
	for _, m := range []*bridge.Message{delivered, waiting, deleted} {
		accept(t, s, m, mqtt)
	}
	for _, q := range pending(t, s, mqtt) {
		if q.Event.Head().ID != waiting.ID {
			if err := s.Delivered(ctx, q, "mq-"+q.Event.Head().Origin.RemoteID); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("delivered", delivered.ID, now)
	put("waiting", waiting.ID, now)
	put("deleted", deleted.ID, now)
	put("orphan", bridge.NewEventID(), now)
	put("recent", bridge.NewEventID(), now.Add(2*time.Hour))

	f, err := s.File(ctx, "delivered")
	if err != nil || !bytes.Equal(f.Data, data) || f.Name != "ünïcode name.png" || f.Mime != "image/png" || f.Event != delivered.ID ||
		f.Time.UnixMicro() != now.UnixMicro() {
		t.Fatalf("file read back: %+v (%d bytes), %v", f, len(f.Data), err)
	}
	if _, err := s.File(ctx, "unknown"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("unknown file: %v, want ErrNotFound", err)
	}
	if err := s.PutFile(ctx, bridge.File{ID: "delivered", Event: delivered.ID, Data: data, Time: now}); err == nil {
		t.Error("a second file under the same id was taken")
	}

	// Its author deletes a message: its file goes at once.
	if err := s.RemoveContent(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	if has("deleted") || !has("delivered") {
		t.Errorf("after the deletion of its message: deleted file kept %v, another file kept %v", has("deleted"), has("delivered"))
	}

	st, err := s.Prune(ctx, Retention{Messages: time.Hour}, now.Add(90*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 2 {
		t.Errorf("pruned %d files, want 2 (the delivered message's and the orphan)", st.Files)
	}
	for id, want := range map[string]bool{"delivered": false, "orphan": false, "waiting": true, "recent": true} {
		if has(id) != want {
			t.Errorf("after retention, file %s kept: %v, want %v", id, !want, want)
		}
	}
}
