package mqtt

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A broker that accepts Switchboard's session and drops it at once is not
// connected to again in a tight loop: no connection stayed up, so the
// backoff keeps growing (500 ms, 1 s, 2 s, ...) instead of starting over
// at every CONNACK.
func TestReconnectBacksOffFromBrokerThatDrops(t *testing.T) {
	b := testenv.Mosquitto(t)
	p := testenv.NewDropProxy(t, b.Addr, testenv.MQTTConnAck)
	in := newFakeInbound()
	a, logs := newAdapter(t, "tcp://"+p.Addr, setup{
		clientID: testenv.UniqueClientID("sb"),
		tweak: func(a *Adapter) {
			// The defaults, not the tests' short ones: what a user gets.
			a.timeouts.connectRetryMin = defaultTimeouts.connectRetryMin
			a.timeouts.connectRetryMax = defaultTimeouts.connectRetryMax
		},
	})
	if err := a.Join(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	got := p.Dropped()
	t.Logf("connections accepted and dropped in 5 s: %d", got)
	// 0, 0.5, 1-1.5, 2-3.5, 4-7.5 s: at most 5 in 5 s; the old code, which
	// started over at each CONNACK, made 31 in one run (about every 150 ms
	// here, against a broker answering on loopback).
	if got < 2 || got > 6 {
		t.Errorf("%d connections accepted and dropped in 5 s, want 2 to 6; log:\n%s", got, logs.Tail(40))
	}
}
