package irc

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A server that welcomes the bot and drops it at once is not connected to
// again in a tight loop: no connection stayed up, so the backoff keeps
// growing (1 s, 2 s, 4 s, ... up to reconnect_max).
func TestReconnectBacksOffFromServerThatDrops(t *testing.T) {
	srv := testenv.InspIRCd(t)
	p := testenv.NewDropProxy(t, srv.Addr, testenv.IRCWelcome)
	n := netConfig(srv, "puppet")
	n.IRC.Server = p.Addr
	ad, err := New("libera", n, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	rec := newRecorder()
	if err := a.Start(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	got := p.Dropped()
	t.Logf("connections welcomed and dropped in 5 s: %d", got)
	// Welcomed at 0, 1, 2-3 and 4-7 s: at most 4 in 5 s.
	if got < 2 || got > 5 {
		t.Errorf("%d connections welcomed and dropped in 5 s, want 2 to 5", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}
