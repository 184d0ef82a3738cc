package matrix

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// A message delivered late (caught up, or held in the outbox while the
// homeserver was away) shows when it was said; one of now shows now.
func TestLateMessageKeepsItsTime(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	carol := foreign("carol", "Carol")
	said := time.Now().Add(-5 * time.Minute).Truncate(time.Millisecond)
	late := &bridge.Message{Header: header(carol), Text: "said a while ago"}
	late.Time = said
	now := &bridge.Message{Header: header(carol), Text: "said now"}
	for _, m := range []*bridge.Message{late, now} {
		deliver(t, func(ctx context.Context) (string, error) {
			return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
		})
	}
	if got := waitEvent(t, alice, "the late message", bodyIs(rid, "said a while ago")); got.Timestamp != said.UnixMilli() {
		t.Errorf("late message at %v, want when it was said, %v", time.UnixMilli(got.Timestamp), said)
	}
	if got := waitEvent(t, alice, "the message of now", bodyIs(rid, "said now")); time.Since(time.UnixMilli(got.Timestamp)) > time.Minute {
		t.Errorf("message of now at %v", time.UnixMilli(got.Timestamp))
	}
}
