package matrix

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// The homeserver creates the event but its answer is lost, and it has
// forgotten the transaction id by the retry (Dendrite restarted): the
// retry finds the event in the room instead of posting it twice, also
// when the event shows there only some time after the loss.
func TestLostSendAnswerNotRepeated(t *testing.T) {
	s := newServer(t)
	proxy := newHSProxy(t, s)
	s.network.Section.(*Config).Homeserver = proxy.URL
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	carol := foreign("carol", "Carol")
	// carol's ghost joins with a first message, so that the lost answer
	// is the message's own.
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(carol), Text: "hello"}})
	})
	d := &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(carol), Text: "only once"}}
	proxy.mu.Lock()
	proxy.loseSends = 1
	// The event shows in the room only after the retry's first look.
	proxy.fileLate = settle / 4
	proxy.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	_, err := a.Send(ctx, d)
	cancel()
	if err == nil {
		t.Fatal("a send whose answer was lost reported success")
	}
	id := deliver(t, func(ctx context.Context) (string, error) { return a.Send(ctx, d) })
	time.Sleep(settle / 4) // whatever was filed late is in the room before the marker
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(carol), Text: "marker"}})
	})
	n := 0
	for _, e := range eventsUntil(t, alice, rid, bodyIs(rid, "marker")) {
		if e.Content.AsMessage().Body == "only once" {
			n++
			if string(e.ID) != id {
				t.Errorf("the retry returned %s, the room has %s", id, e.ID)
			}
		}
	}
	if n != 1 {
		t.Errorf("alice saw %q %d times, want once", "only once", n)
	}
}
