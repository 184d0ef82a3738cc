package xmpp

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Cluster mode (adapters.Fenced): once the fence says this instance no
// longer holds the network, nothing more reaches the room, the stream
// that tried is closed, and the adapter does not connect again until the
// fence allows it. As a component (puppets) and as a client (relay bot).
func TestFenceSilencesTheStream(t *testing.T) {
	for _, mode := range []string{"puppet", "relay"} {
		t.Run(mode, func(t *testing.T) {
			srv := newServer(t)
			room := newRoomName(srv, "fence")
			// Every stream of the adapter goes through p, which counts them.
			via := *srv
			upstream := &via.ComponentAddr
			if mode == "relay" {
				upstream = &via.C2SAddr
			}
			p := testenv.NewDropProxy(t, *upstream, func([]byte) bool { return false })
			*upstream = p.Addr
			a, _ := newTestAdapter(t, &via, setup{mode: mode})
			var may atomic.Bool
			may.Store(true)
			a.UseFence(may.Load)
			start(t, a, room)
			alice := joinHuman(t, srv, "alice", room, "Alice")
			ann := foreign("matrix", "@ann:hs", "ann")
			said := func(text string) func(testenv.XMPPStanza) bool {
				return func(s testenv.XMPPStanza) bool { return strings.HasSuffix(s.Body(), text) }
			}

			send(t, a, room, message(ann, "one"))
			alice.waitMessage(said("one"))

			may.Store(false)
			mark := alice.c.Len()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := a.Send(ctx, &bridge.Delivery{Link: "test", Room: room, Event: message(ann, "two")}); err == nil {
				t.Error("a message sent on a fenced stream was confirmed")
			}
			// The stream was closed on the refused write.
			deadline := time.Now().Add(5 * time.Second)
			for a.Connected() {
				if time.Now().After(deadline) {
					t.Fatal("adapter still connected 5 s after a refused write")
				}
				time.Sleep(20 * time.Millisecond)
			}
			// Two quiet seconds: nothing said and no new stream; the
			// reconnect loop's attempts (every second at most here) are
			// refused before dialing.
			dialed := p.Accepted()
			time.Sleep(2 * time.Second)
			if d := p.Accepted() - dialed; d != 0 {
				t.Errorf("a fenced adapter opened %d streams", d)
			}
			if a.Connected() {
				t.Error("adapter reports connected while fenced")
			}
			for _, s := range alice.c.Stanzas()[mark:] {
				if s.Kind() == "message" && s.Body() != "" {
					t.Errorf("alice got a message after the fence closed: %s", s.Raw)
				}
			}

			// Holding the network again: the adapter connects again and
			// messages flow.
			may.Store(true)
			adapterstest.WaitConnected(t, a)
			send(t, a, room, message(ann, "four"))
			alice.waitMessage(said("four"))
			for _, s := range alice.c.Stanzas() {
				if s.Kind() == "message" && strings.HasSuffix(s.Body(), "two") {
					t.Errorf("alice got the fenced message: %s", s.Raw)
				}
			}
			// Lost again: the service stops the adapter.
			may.Store(false)
			adapterstest.StopsFenced(t, a)
		})
	}
}
