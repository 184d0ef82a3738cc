package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// topical sets topics natively, unless told it may not (no IRC channel
// operator, no MUC subject right, no Matrix power): then it answers
// ErrFallback, as the adapters do.
type topical struct {
	*plain
	refuse bool
}

func (n topical) SendTopic(_ context.Context, d *bridge.Delivery) error {
	if n.refuse {
		return bridge.ErrFallback
	}
	_, err := n.record(d)
	return err
}

func TestTopicSetNativelyOrAnnouncedWhereTheRoomWillNotTakeIt(t *testing.T) {
	irc, mqtt, matrix := topical{newPlain(), true}, newPlain(), topical{newPlain(), false}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	top := &bridge.Topic{Header: msg("mqtt", "chat/lobby", "sensor", "", "").Header, Topic: "release on friday"}
	accept(t, f.router, top)

	got := irc.waitRoom(t, "#lobby", 1)
	m, ok := got[0].Event.(*bridge.Message)
	if !ok || !m.Emote || m.Text != "changed the topic to: release on friday" || m.Sender.ID != "sensor" {
		t.Errorf("IRC, which may not set the topic, got %T %+v, want sensor's action line", got[0].Event, got[0].Event)
	}
	got = matrix.waitRoom(t, "!lobby", 1)
	if tp, ok := got[0].Event.(*bridge.Topic); !ok || tp.Topic != "release on friday" {
		t.Errorf("Matrix, which may, got %T %+v, want the topic itself", got[0].Event, got[0].Event)
	}
	f.waitDepth(t, 0)
	time.Sleep(50 * time.Millisecond)
	if n := len(irc.room("#lobby")); n != 1 {
		t.Errorf("IRC got %d deliveries, want the one action line", n)
	}
	if n := len(matrix.room("!lobby")); n != 1 {
		t.Errorf("Matrix got %d deliveries, want the topic alone (no action line too)", n)
	}
}
