package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestLeave: a left room's devices are no longer heard, not after a
// reconnect either (the broker's persistent session forgets the
// subscription too), and joining it again hears them again.
func TestLeave(t *testing.T) {
	b := testenv.Mosquitto(t)
	in := newFakeInbound()
	a, _ := startAdapter(t, b, in, setup{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	const other, third = "chat/other", "chat/third"
	for _, r := range []string{other, third} {
		if err := a.Join(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	dev := b.Client(t, "")
	say := func(r, text string) { testenv.MQTTPublish(t, dev, r+"/in/dev1", 1, false, text) }
	expect := func(text string) {
		t.Helper()
		if m := in.next(t); m.Text != text {
			t.Fatalf("got %q from %s, want %q", m.Text, m.Origin.Room, text)
		}
	}
	say(room, "before")
	expect("before")

	if err := a.Leave(ctx, room); err != nil {
		t.Fatal(err)
	}
	say(room, "after leave")
	say(third, "marker")
	expect("marker")

	// Left while disconnected: the session still holds the subscription
	// when the adapter comes back, and must not any more.
	b.Stop()
	eventually(t, "disconnect", func() bool { return !a.Connected() })
	if err := a.Leave(ctx, other); err != nil {
		t.Fatal(err)
	}
	b.Start(t)
	in.waitOnline(t)
	dev = b.Client(t, "")
	say(room, "after restart")
	say(other, "after restart")
	say(third, "marker 2")
	// "marker" may come again: if the broker stopped before our PUBACK
	// reached it, it resends at QoS 1 (at least once), as it should.
	for m := in.next(t); m.Text != "marker 2"; m = in.next(t) {
		if m.Text != "marker" || m.Origin.Room != third {
			t.Fatalf("got %q from %s, want %q", m.Text, m.Origin.Room, "marker 2")
		}
	}

	// A message of a left room that was already on its way is dropped
	// (and acknowledged, so the broker stops resending it).
	queued := &fakeMessage{topic: other + "/in/dev1", payload: []byte("queued"), qos: 1}
	a.onPublish(queued, a.gen.Load())
	eventually(t, "the drop", func() bool { return a.Dropped()[DropLeft] == 1 && queued.acked.Load() })

	if err := a.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	say(room, "back")
	expect("back")
	in.quiet(t, 300*time.Millisecond)
	if err := a.Leave(ctx, "$SYS/x"); err == nil {
		t.Error("left an invalid room")
	}
}

// TestSendAsBot: Switchboard's notices reach the room's out topic.
func TestSendAsBot(t *testing.T) {
	b := testenv.Mosquitto(t)
	in := newFakeInbound()
	a, _ := startAdapter(t, b, in, setup{})
	sub := b.Subscribe(t, room+"/out/#", 1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	if err := a.SendAsBot(ctx, room, "", "links: 2\r\nok\x00"); err != nil {
		t.Fatal(err)
	}
	m := sub.Next(t, wait)
	if m.Topic != room+"/out/switchboard/switchboard" || m.QoS != 1 || m.Retained {
		t.Errorf("topic %s qos %d retained %v", m.Topic, m.QoS, m.Retained)
	}
	var ev OutEvent
	if err := json.Unmarshal(m.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "notice" || ev.Text != "links: 2\nok" || !ev.Notice || ev.Room != room || ev.Via != Via ||
		ev.Sender != (OutSender{ID: "switchboard", Name: "Switchboard"}) || ev.ID == "" || ev.TS == "" {
		t.Errorf("payload %s", m.Payload)
	}
	// MQTT has no private messages.
	if err := a.SendAsBot(ctx, "", "dev1", "x"); !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("to a device: %v, want a permanent error", err)
	}
	if err := a.SendAsBot(ctx, "$SYS", "", "x"); !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("to $SYS: %v, want a permanent error", err)
	}
	sub.Quiet(t, 300*time.Millisecond)
	in.quiet(t, 100*time.Millisecond)

	b.Stop()
	eventually(t, "disconnect", func() bool { return !a.Connected() })
	if err := a.SendAsBot(ctx, room, "", "x"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("while down: %v, want ErrNotConnected", err)
	}
}

// fakeMessage is a paho.Message as the broker would hand it over.
type fakeMessage struct {
	topic   string
	payload []byte
	qos     byte
	acked   atomic.Bool
}

func (m *fakeMessage) Duplicate() bool   { return false }
func (m *fakeMessage) Qos() byte         { return m.qos }
func (m *fakeMessage) Retained() bool    { return false }
func (m *fakeMessage) Topic() string     { return m.topic }
func (m *fakeMessage) MessageID() uint16 { return 1 }
func (m *fakeMessage) Payload() []byte   { return m.payload }
func (m *fakeMessage) Ack()              { m.acked.Store(true) }
