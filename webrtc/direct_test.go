package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// dmTo is a direct message from bob on IRC to id on the page.
func dmTo(id, text string) *bridge.Delivery {
	return &bridge.Delivery{Link: bridge.DirectLink, Event: &bridge.Message{
		Header: bridge.Header{ID: bridge.NewEventID(), Time: time.Now(),
			Origin: bridge.Origin{Network: "libera", Room: "direct:bob"},
			Sender: bridge.Sender{Network: "libera", ID: "bob", Name: "bob"},
			To:     &bridge.Sender{Network: "web", ID: id, Person: "alice"}},
		Text: text,
	}}
}

// shownDirect is a direct frame as the page reads it.
type shownDirect struct {
	With struct{ Network, ID, Name string }
	// Event is the message, in the shape of an event frame.
	Event struct {
		ID, Type, Text string
		Sender         struct{ ID, Person string }
	}
}

func readDirect(t *testing.T, f testenv.WebRTCFrame) shownDirect {
	t.Helper()
	var d shownDirect
	if err := json.Unmarshal([]byte(f.Raw), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDirectMessages: a direct message to alice's web account waits
// (retryably) while no page of hers is open, then shows on her verified
// page only, as a direct frame naming the writer; what she answers from
// the page is a direct message to the writer, shown on her page too;
// anyone else may not write privately, nor is a page anyone's inbox but
// a person's.
func TestDirectMessages(t *testing.T) {
	s, _ := peopleServer(t)
	ctx := context.Background()

	_, err := s.a.Send(ctx, dmTo("alice", "are you there?"))
	if err == nil || errors.Is(err, bridge.ErrPermanent) || !errors.Is(err, bridge.ErrNotConnected) {
		t.Fatalf("with no page of hers open: %v, want a retryable not connected", err)
	}
	for _, id := range []string{"carol", "web-0123"} {
		if _, err := s.a.Send(ctx, dmTo(id, "hi")); !errors.Is(err, bridge.ErrPermanent) {
			t.Errorf("to %s, who has no personal page: %v, want a permanent failure", id, err)
		}
	}

	watcher := testenv.MustDialWebRTC(t, s.url, "lobby", "", "watcher", "watcher-1")
	alice, err := testenv.DialWebRTCHeader(t, s.url, "lobby", personHeader(aliceToken))
	if err != nil {
		t.Fatal(err)
	}
	alice.Send(map[string]any{"type": "hello"})
	alice.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })

	if _, err := s.a.Send(ctx, dmTo("alice", "are you there?")); err != nil {
		t.Fatalf("with her page open: %v", err)
	}
	f := alice.Wait(t, wait, "the direct message", func(f testenv.WebRTCFrame) bool { return f.Type == "direct" })
	if d := readDirect(t, f); d.With.Network != "libera" || d.With.ID != "bob" || d.With.Name != "bob" || d.Event.Type != "message" || d.Event.Text != "are you there?" {
		t.Errorf("her page got %s", f.Raw)
	}

	// She answers bob.
	alice.Send(map[string]any{"type": "direct", "to": map[string]string{"network": "libera", "id": "bob", "name": "bob"}, "text": "yes, here"})
	m := s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "yes, here" })
	if m.To == nil || m.To.Network != "libera" || m.To.ID != "bob" || m.Sender.ID != "alice" || !m.Sender.Authenticated {
		t.Errorf("her answer: from %+v to %+v, want from her web account, authenticated, to libera bob", m.Sender, m.To)
	}
	f = alice.Wait(t, wait, "her answer on her page", func(f testenv.WebRTCFrame) bool {
		return f.Type == "direct" && strings.Contains(f.Raw, "yes, here")
	})
	if d := readDirect(t, f); d.With.Network != "libera" || d.With.ID != "bob" || d.Event.Sender.ID != "alice" {
		t.Errorf("her answer shown as %s", f.Raw)
	}

	// Refused: a page without a token, and a private message to the page's
	// own network.
	watcher.Send(map[string]any{"type": "direct", "to": map[string]string{"network": "libera", "id": "bob"}, "text": "psst"})
	watcher.Wait(t, wait, "the refusal", func(f testenv.WebRTCFrame) bool { return f.Type == "error" && f.Code == codeInvalid })
	alice.Send(map[string]any{"type": "direct", "to": map[string]string{"network": "web", "id": "watcher-1"}, "text": "psst"})
	alice.Wait(t, wait, "the refusal", func(f testenv.WebRTCFrame) bool { return f.Type == "error" && f.Code == codeInvalid })
	alice.Send(map[string]any{"type": "direct", "to": map[string]string{"network": "libera", "id": "bob\r\nQUIT"}, "text": "psst"})
	alice.Wait(t, wait, "the refusal", func(f testenv.WebRTCFrame) bool { return f.Type == "error" && strings.Contains(f.Message, "to.id") })
	time.Sleep(200 * time.Millisecond)
	for _, ev := range s.rec.Events() {
		if m, ok := ev.(*bridge.Message); ok && m.Text == "psst" {
			t.Errorf("a refused direct message was accepted: %+v", m)
		}
	}
	for _, f := range watcher.Frames() {
		if f.Type == "direct" || strings.Contains(f.Raw, "are you there?") || strings.Contains(f.Raw, "yes, here") {
			t.Errorf("someone else's page got %s", f.Raw)
		}
	}
}
