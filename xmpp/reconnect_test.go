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
	n := netConfig(srv, setup{})
	n.XMPP.Server = p.Addr
	log := testenv.NewLog(t)
	ad, err := New("jabber", n, log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	a.t = testTiming
	// The defaults, not the tests' short ones: what a user gets.
	a.t.minBackoff, a.t.maxBackoff = defaultTiming.minBackoff, defaultTiming.maxBackoff
	if err := a.Start(t.Context(), adapterstest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	got := p.Dropped()
	t.Logf("streams accepted and dropped in 5 s: %d", got)
	// 0, 0.25, 0.5-0.75, 1-1.75, 2-3.75 s: at most 5 in 5 s; the old code,
	// which started over at every accepted stream, made one every 250 ms.
	if got < 2 || got > 7 {
		t.Errorf("%d streams accepted and dropped in 5 s, want 2 to 7; log:\n%s", got, log.Tail(30))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}
