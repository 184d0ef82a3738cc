package service

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Test 4 (issue 24): a portal room created on Dendrite starts with the
// link's recent messages, from all its rooms, in order, each from its
// sender's ghost at its original time (origin_server_ts), before what
// is said after; an edit and a redaction of one of them later reach it
// natively.
func TestMatrixPortalHistory(t *testing.T) {
	w := newMWorld(t)
	type said struct {
		text       string
		before, at time.Time // just before it was said; when it arrived
	}
	var history []said
	svc, _ := runService(t, w.config(t, ""))
	bob := w.human(t, "bob")
	for i := range 3 {
		s := said{text: fmt.Sprintf("reading %d", i), before: time.Now()}
		w.publish(t, "sensor-1", s.text)
		w.waitMatrix(t, s.text, func(ev *event.Event) bool { c, ok := messageText(ev); return ok && c.Body == s.text })
		s.at = time.Now()
		history = append(history, s)
	}
	ids := map[string]id.EventID{}
	for _, text := range []string{"from the matrix room", "lunch at noon", "a secret"} {
		s := said{text: text, before: time.Now()}
		ids[text] = w.alice.Text(w.roomID, s.text)
		bob.WaitText(patience, room, "alice[mx]", s.text)
		s.at = time.Now()
		history = append(history, s)
	}
	s := said{text: "from irc", before: time.Now()}
	bob.Say(room, s.text)
	w.waitMatrix(t, s.text, func(ev *event.Event) bool { c, ok := messageText(ev); return ok && c.Body == s.text })
	s.at = time.Now()
	history = append(history, s)

	// The link gets a portal: the room made for the first Matrix user
	// who joins its alias is seeded with the history.
	time.Sleep(1500 * time.Millisecond) // the seed's times would differ
	seededAfter := time.Now()
	if err := svc.AddRoom(t.Context(), "lobby", "mx:#sb_lobby:localhost"); err != nil {
		t.Fatal(err)
	}
	portal := w.alice.Join("#sb_lobby:localhost")
	bob.Say(room, "live, after the history")
	w.waitMatrix(t, "the live message in the portal", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && ev.RoomID == portal && c.Body == "live, after the history"
	})

	resp, err := w.alice.Messages(t.Context(), portal, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	seeded := map[string]*event.Event{}
	var evs []*event.Event
	for _, ev := range slices.Backward(resp.Chunk) {
		if c, ok := messageText(ev); ok {
			got = append(got, c.Body)
			evs = append(evs, ev)
			seeded[c.Body] = ev
		}
	}
	var want []string
	for _, s := range history {
		want = append(want, s.text)
	}
	want = append(want, "live, after the history")
	if !slices.Equal(got, want) {
		t.Fatalf("the portal has\n%q\nwant\n%q", got, want)
	}
	for i, s := range history {
		ev := evs[i]
		ts := time.UnixMilli(ev.Timestamp)
		if ts.Before(s.before.Add(-2*time.Second)) || ts.After(s.at.Add(time.Second)) || !ts.Before(seededAfter) {
			t.Errorf("%q at %v, want its original time (said between %v and %v)", s.text, ts, s.before, s.at)
		}
		if ev.Sender == w.alice.UserID || ev.Sender.Localpart() == w.mx.Bot {
			t.Errorf("%q from %s, want a ghost", s.text, ev.Sender)
		}
	}
	if live := time.UnixMilli(evs[len(evs)-1].Timestamp); live.Before(seededAfter) {
		t.Errorf("the live message at %v, before the portal was made", live)
	}

	// Editing and redacting in the Matrix room reaches the copies in the
	// portal, which the ghost posted.
	w.alice.Edit(w.roomID, ids["lunch at noon"], "lunch at one")
	w.waitMatrix(t, "the edit in the portal", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && ev.RoomID == portal && c.RelatesTo != nil && c.RelatesTo.Type == event.RelReplace &&
			c.RelatesTo.EventID == seeded["lunch at noon"].ID && ev.Sender == seeded["lunch at noon"].Sender
	})
	// Dendrite pushes no redactions to appservices: pushed as Synapse would.
	if code := w.pushTransaction(t, "redact-history", fmt.Sprintf(`{"type":"m.room.redaction","room_id":%q,"sender":%q,
		"event_id":"$redaction-history","redacts":%q,"origin_server_ts":%d,"content":{"redacts":%q}}`,
		w.roomID, w.alice.UserID, ids["a secret"], time.Now().UnixMilli(), ids["a secret"])); code != http.StatusOK {
		t.Fatalf("transaction: %d", code)
	}
	w.waitMatrix(t, "the redaction in the portal", func(ev *event.Event) bool {
		return ev.RoomID == portal && ev.Type == event.EventRedaction && ev.Redacts == seeded["a secret"].ID
	})
}
