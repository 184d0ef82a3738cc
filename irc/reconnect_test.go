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
	via := *srv
	via.Addr = p.Addr
	ad, err := New("libera", netConfig(&via, "puppet"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	if err := a.Start(context.Background(), newRecorder()); err != nil {
		t.Fatal(err)
	}
	// Welcomed at 0, 1, 2-3 and 4-7 s plus the time registration takes
	// (about a second here): at most 4 in 5 s.
	p.ExpectDropped(t, 5*time.Second, 2, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}
