package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// A thread message reaches each room with the thread's root as that
// room knows it (Delivery.Thread), and, where there is no native reply,
// as a reply to the root; a thread whose root was never bridged is none.
func TestThreadRootResolvedPerRoom(t *testing.T) {
	irc, mqtt, matrix := rich{newPlain()}, newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	accept(t, f.router, msg("matrix", "!lobby", "@bob:hs", "$root", "the root"))
	irc.waitRoom(t, "#lobby", 1)
	mqtt.waitRoom(t, "chat/lobby", 1)

	in := msg("matrix", "!lobby", "@carol:hs", "$in", "in the thread")
	in.Thread = bridge.Ref{Remote: "$root"}
	in.ReplyTo = in.Thread
	accept(t, f.router, in)
	d := irc.waitRoom(t, "#lobby", 2)[1]
	if d.Thread != "#lobby-1" || d.Reply == nil || d.Reply.RemoteID != "#lobby-1" {
		t.Errorf("IRC thread %q reply %+v, want both #lobby-1", d.Thread, d.Reply)
	}
	if m := d.Event.(*bridge.Message); m.Thread.Event == "" || m.Thread.Event != m.ReplyTo.Event {
		t.Errorf("thread %+v reply %+v, want both the root's event", m.Thread, m.ReplyTo)
	}
	d = mqtt.waitRoom(t, "chat/lobby", 2)[1]
	if got := d.Event.(*bridge.Message).Text; d.Thread != "chat/lobby-1" || got != "> @bob:hs: the root\nin the thread" {
		t.Errorf("MQTT got %q in thread %q, want the reply fallback in chat/lobby-1", got, d.Thread)
	}

	lost := msg("matrix", "!lobby", "@carol:hs", "$lost", "root never bridged")
	lost.Thread = bridge.Ref{Remote: "$before-the-link"}
	accept(t, f.router, lost)
	d = irc.waitRoom(t, "#lobby", 3)[2]
	if m := d.Event.(*bridge.Message); d.Thread != "" || !m.Thread.IsZero() {
		t.Errorf("a thread of an unknown root delivered as thread %q (%+v)", d.Thread, m.Thread)
	}
}

// marker has direct messages and read markers, and records the latter.
type marker struct {
	directPlain
	reads chan *bridge.Delivery
}

func (m marker) SendRead(_ context.Context, d *bridge.Delivery) error {
	m.reads <- d
	return nil
}

// A Read reaches the network where the message read came from, with the
// id it has there; one of a message the bridge never carried goes
// nowhere, and a network without read markers is sent nothing.
func TestReadDeliveredWhereTheTargetIsKnown(t *testing.T) {
	irc := marker{directPlain{newPlain()}, make(chan *bridge.Delivery, 10)}
	matrix := marker{directPlain{newPlain()}, make(chan *bridge.Delivery, 10)}
	mqtt := newPlain()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	alice := bridge.Sender{Network: "matrix", ID: "@alice:hs", Name: "alice"}
	bob := bridge.Sender{Network: "irc", ID: "bob", Name: "bob"}

	dm := msg("irc", "", "bob", "irc-dm-1", "psst, alice")
	dm.To = &alice
	accept(t, f.router, dm)
	matrix.waitRoom(t, "", 1) // Matrix gave it the id "-1"

	read := func(target string) {
		t.Helper()
		r := &bridge.Read{Header: msg("matrix", "", alice.ID, "", "").Header, Target: bridge.Ref{Remote: target}}
		r.To = &bob
		accept(t, f.router, r)
	}
	read("$never-bridged")
	read("-1")
	select {
	case d := <-irc.reads:
		r, ok := d.Event.(*bridge.Read)
		if !ok || d.Target != "irc-dm-1" || r.Sender.ID != alice.ID || r.To == nil || r.To.ID != "bob" {
			t.Errorf("read marker %+v of %+v, want alice's read of irc-dm-1 to bob", d, d.Event)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no read marker on IRC")
	}
	f.waitDepth(t, 0)
	select {
	case d := <-irc.reads:
		t.Errorf("a second read marker %+v (of a message never bridged?)", d)
	default:
	}

	// In a linked room, MQTT has no read markers: nothing is sent there.
	accept(t, f.router, msg("matrix", "!lobby", "@alice:hs", "$m", "hello"))
	mqtt.waitRoom(t, "chat/lobby", 1)
	irc.waitRoom(t, "#lobby", 1)
	r := &bridge.Read{Header: msg("irc", "#lobby", "bob", "", "").Header, Target: bridge.Ref{Remote: "#lobby-1"}}
	accept(t, f.router, r)
	select {
	case d := <-matrix.reads:
		if d.Target != "$m" {
			t.Errorf("Matrix read marker on %q, want $m", d.Target)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no read marker on Matrix")
	}
	f.waitDepth(t, 0)
	if got := texts(mqtt.room("chat/lobby")); len(got) != 1 {
		t.Errorf("MQTT got %q, want only the message (no fallback for a read marker)", got)
	}
}
