package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Cluster mode (adapters.Fenced): once the fence says this instance no
// longer holds the network, nothing more is published, the connection
// that tried is closed, and the adapter does not connect again (which
// would take the client id's session from the new holder) until the
// fence allows it.
func TestFenceSilencesTheClient(t *testing.T) {
	b := testenv.Mosquitto(t)
	// The adapter's connections go through p, which counts them.
	p := testenv.NewDropProxy(t, b.Addr, func([]byte) bool { return false })
	sub := b.Subscribe(t, room+"/out/#", 1)
	var may atomic.Bool
	may.Store(true)
	id := testenv.UniqueClientID("sb")
	a, _ := newAdapter(t, "tcp://"+p.Addr, setup{clientID: id, tweak: func(a *Adapter) { a.UseFence(may.Load) }})
	in := newFakeInbound()
	if err := a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	in.waitOnline(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	msg := func(text string) *bridge.Delivery {
		return &bridge.Delivery{Room: room, Event: &bridge.Message{Header: bridge.Header{ID: bridge.NewEventID(),
			Origin: bridge.Origin{Network: "libera", Room: "#lobby"},
			Sender: bridge.Sender{Network: "libera", ID: "ann", Name: "Ann"}, Time: time.Now()}, Text: text}}
	}

	if _, err := a.Send(ctx, msg("one")); err != nil {
		t.Fatal(err)
	}
	if m := sub.Next(t, wait); !bytes.Contains(m.Payload, []byte(`"one"`)) {
		t.Fatalf("got %s", m.Payload)
	}

	may.Store(false)
	if _, err := a.Send(ctx, msg("two")); err == nil {
		t.Error("a message published on a fenced connection was confirmed")
	}
	// The broker sees the connection end, and the adapter says so.
	b.WaitClientGone(t, id)
	eventually(t, "adapter not connected", func() bool { return !a.Connected() })
	// Two quiet seconds: nothing published and no new connection; the
	// reconnect loop's attempts are refused before dialing.
	dialed := p.Accepted()
	sub.Quiet(t, 2*time.Second)
	if d := p.Accepted() - dialed; d != 0 {
		t.Errorf("a fenced adapter opened %d connections", d)
	}
	if a.Connected() {
		t.Error("adapter reports connected while fenced")
	}

	// Holding the network again: the adapter connects again and
	// messages flow.
	may.Store(true)
	in.waitOnline(t)
	if _, err := a.Send(ctx, msg("four")); err != nil {
		t.Fatal(err)
	}
	if m := sub.Next(t, wait); !bytes.Contains(m.Payload, []byte(`"four"`)) {
		t.Fatalf("got %s, want four (and never two)", m.Payload)
	}
	// Lost again: the service stops the adapter.
	may.Store(false)
	adapterstest.StopsFenced(t, a)
}

// The fence covers every broker scheme: in cluster mode paho dials
// through the adapter's opener (dialAsPaho) for TLS and websockets too.
// Each connects, publishes, and once fenced publishes nothing and is
// closed.
func TestFenceOnEveryScheme(t *testing.T) {
	b := testenv.MosquittoSecure(t)
	sub := b.Subscribe(t, "fence/#", 1)
	for _, u := range []string{b.URL, b.TLSURL, b.WSURL, b.WSSURL} {
		t.Run(strings.SplitN(u, ":", 2)[0], func(t *testing.T) {
			var may atomic.Bool
			may.Store(true)
			a, _ := newAdapter(t, u, setup{clientID: testenv.UniqueClientID("sb"), tweak: func(a *Adapter) { a.UseFence(may.Load) }})
			id := testenv.UniqueClientID("fenced")
			o := paho.NewClientOptions().AddBroker(u).SetClientID(id).
				SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).
				SetAutoReconnect(false).
				SetTLSConfig(&tls.Config{RootCAs: b.Roots}).
				SetCustomOpenConnectionFn(a.opener())
			c := paho.NewClient(o)
			if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatalf("connect to %s: %v", u, tok.Error())
			}
			defer c.Disconnect(0)
			topic := "fence/" + id
			testenv.MQTTPublish(t, c, topic, 1, false, "one")
			if m := sub.Next(t, wait); m.Topic != topic || string(m.Payload) != "one" {
				t.Fatalf("got %s %q", m.Topic, m.Payload)
			}
			may.Store(false)
			if tok := c.Publish(topic, 1, false, "two"); tok.WaitTimeout(wait) && tok.Error() == nil {
				t.Error("a publish on a fenced connection was confirmed")
			}
			b.WaitClientGone(t, id)
			sub.Quiet(t, time.Second)
		})
	}
}
