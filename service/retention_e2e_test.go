package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// Test 6 (retention), end to end: what alice said on IRC is removed from
// the store once older than retention.messages, and a device's reply to
// it still reaches IRC quoting it, with the quote the store kept.
func TestReplyToPrunedMessage(t *testing.T) {
	every := retentionEvery
	retentionEvery = 100 * time.Millisecond
	t.Cleanup(func() { retentionEvery = every })
	w := newWorld(t)
	cfg, err := config.Parse([]byte(w.yaml("puppet", "127.0.0.1:0", "retention: { messages: 1s, ids: 1h }")))
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := runService(t, cfg)
	sub := w.mqtt.Subscribe(t, root+"/out/#", 1)
	alice := w.human(t, "alice")
	secret := "secret-" + fmt.Sprint(time.Now().UnixNano())
	said := "the first words of what alice said, and then the " + secret
	alice.Say(room, said)
	var ev mqtt.OutEvent
	for ev.Type != "message" {
		m := sub.Next(t, patience)
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("payload %q: %v", m.Payload, err)
		}
	}
	if ev.Text != said || ev.ID == "" {
		t.Fatalf("event %+v, want alice's message with its id", ev)
	}

	// Pruned within a second or so, once delivered.
	deadline := time.Now().Add(patience)
	for {
		_, err := svc.store.FullText(t.Context(), bridge.EventID(ev.ID))
		if errors.Is(err, bridge.ErrContentRemoved) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's message not pruned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	old, err := svc.store.Event(t.Context(), bridge.EventID(ev.ID))
	if err != nil {
		t.Fatal(err)
	}
	if text := old.(*bridge.Message).Text; strings.Contains(text, secret) {
		t.Fatalf("the store still holds %q", text)
	}

	w.publish(t, "sensor-1", fmt.Sprintf(`{"text": "I agree", "reply_to": %q}`, ev.ID))
	alice.WaitText(patience, room, "sensor-1[devices]", "> alice: "+bridge.Excerpt(said, 40))
	alice.WaitText(patience, room, "sensor-1[devices]", "I agree")
}
