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
	a, _ := newAdapter(t, "tcp://"+p.Addr, setup{
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
	if err := a.Start(context.Background(), newFakeInbound()); err != nil {
		t.Fatal(err)
	}
	// Connections at 0, 0.5, 1-1.5, 2-3.5 and 4-7.5 s: at most 5 in 5 s.
	// The old code, which started over at each CONNACK, made 31 in one run
	// (one every 150 ms against a broker answering on loopback).
	p.ExpectDropped(t, 5*time.Second, 2, 6)
}
