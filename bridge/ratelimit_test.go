package bridge

import (
	"fmt"
	"testing"
	"time"
)

// Buckets of senders gone quiet are forgotten once full again (a full
// bucket is the same as a new one); a sender still at it keeps theirs.
func TestLimiterForgetsIdleSenders(t *testing.T) {
	var lim limiter
	lim.rates = map[string]RateLimit{"irc": {PerSecond: 1, Burst: 2}}
	lim.senders = map[limitKey]*senderLimit{}
	lim.dropped = map[string]uint64{}
	room := RoomAddr{Network: "irc", Room: "#x"}
	now := time.Now()
	lim.swept = now
	for i := range 1000 {
		ev := &Message{Header: Header{Origin: Origin{Network: "irc", Room: "#x"}, Sender: Sender{Network: "irc", ID: fmt.Sprint("s", i)}}}
		if ok, _, _ := lim.allow(room, ev, now); !ok {
			t.Fatalf("sender %d's first message dropped", i)
		}
	}
	loud := &Message{Header: Header{Origin: Origin{Network: "irc", Room: "#x"}, Sender: Sender{Network: "irc", ID: "loud"}}}
	var told int
	for range 5 {
		if _, tell, _ := lim.allow(room, loud, now); tell {
			told++
		}
	}
	if told != 1 || lim.dropped["irc"] != 3 {
		t.Fatalf("told %d times, dropped %d; want once, 3", told, lim.dropped["irc"])
	}
	// loud keeps at it; a minute on, the next message sweeps: only the
	// quiet senders' buckets go.
	for range 3 {
		lim.allow(room, loud, now.Add(sweepEvery-time.Second))
	}
	if n := len(lim.senders); n != 1001 || lim.dropped["irc"] != 4 {
		t.Fatalf("%d buckets before the sweep, %d dropped", n, lim.dropped["irc"])
	}
	if ok, _, _ := lim.allow(room, loud, now.Add(sweepEvery)); !ok {
		t.Errorf("loud's message a second on dropped, want the token refilled since let through")
	}
	// loud's own bucket, empty again, not a new one.
	s, ok := lim.senders[limitKey{room, "loud"}]
	if !ok || len(lim.senders) != 1 || s.bucket.TokensAt(now.Add(sweepEvery)) >= 1 {
		t.Errorf("%d buckets after the sweep, want loud's alone, kept", len(lim.senders))
	}
}

// Lines an adapter fetched when catching up are exempt from the sender's
// limit, however recent; the mark is never decoded from JSON.
func TestLimiterExemptsCatchUp(t *testing.T) {
	var lim limiter
	lim.rates = map[string]RateLimit{"xmpp": {PerSecond: 1, Burst: 2}}
	lim.senders = map[limitKey]*senderLimit{}
	lim.dropped = map[string]uint64{}
	room := RoomAddr{Network: "xmpp", Room: "lobby@muc"}
	now := time.Now()
	msg := func(catchUp bool) *Message {
		return &Message{Header: Header{Origin: Origin{Network: "xmpp", Room: "lobby@muc"}, Sender: Sender{Network: "xmpp", ID: "alice"},
			Time: now.Add(-time.Second), CatchUp: catchUp}}
	}
	for i := range 15 {
		if ok, _, _ := lim.allow(room, msg(true), now); !ok {
			t.Fatalf("caught-up line %d dropped", i)
		}
	}
	var passed int
	for range 5 {
		if ok, _, _ := lim.allow(room, msg(false), now); ok {
			passed++
		}
	}
	if passed != 2 {
		t.Errorf("%d of 5 live lines let through, want the burst of 2", passed)
	}
	ev, err := Decode(KindMessage, []byte(`{"id":"x","ts":"2026-01-01T00:00:00Z","CatchUp":true,"catch_up":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Head().CatchUp {
		t.Error("CatchUp decoded from JSON")
	}
}
