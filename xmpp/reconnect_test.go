package xmpp

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A server that accepts the component and ends the stream at once is not
// connected to again in a tight loop: no stream stayed up, so the backoff
// keeps growing (250 ms, 500 ms, 1 s, ...) instead of starting over at
// every accepted handshake.
func TestReconnectBacksOffFromServerThatDrops(t *testing.T) {
	srv := newServer(t)
	p := testenv.NewDropProxy(t, srv.ComponentAddr, testenv.XMPPComponentAccepted)
	via := *srv
	via.ComponentAddr = p.Addr
	// The default backoff, not the tests' short one: what a user gets.
	tm := testTiming
	tm.minBackoff, tm.maxBackoff = defaultTiming.minBackoff, defaultTiming.maxBackoff
	a, _ := newTestAdapter(t, &via, setup{timing: &tm})
	if err := a.Start(context.Background(), adapterstest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	// Streams at 0, 0.25, 0.5-0.75, 1-1.75 and 2-3.75 s: at most 5 in 5 s.
	// The old code, which started over at every accepted stream, made one
	// every 250 ms.
	p.ExpectDropped(t, 5*time.Second, 2, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}
