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

// Lines an adapter catches up on (Header.CatchUp) were said while
// Switchboard was away, however recently: the limit does not apply, and
// they take no tokens from the sender's live messages.
func TestLimiterExemptsCatchUp(t *testing.T) {
	var lim limiter
	lim.rates = map[string]RateLimit{"irc": {PerSecond: 1, Burst: 2}}
	lim.senders = map[limitKey]*senderLimit{}
	lim.dropped = map[string]uint64{}
	room := RoomAddr{Network: "irc", Room: "#x"}
	now := time.Now()
	msg := func(catchUp bool) *Message {
		return &Message{Header: Header{Origin: Origin{Network: "irc", Room: "#x"}, Sender: Sender{Network: "irc", ID: "carol"}, Time: now, CatchUp: catchUp}}
	}
	for i := range 40 {
		if ok, _, _ := lim.allow(room, msg(true), now); !ok {
			t.Fatalf("caught-up line %d dropped", i+1)
		}
	}
	for i := range 2 {
		if ok, _, _ := lim.allow(room, msg(false), now); !ok {
			t.Fatalf("live line %d dropped after the catch-up", i+1)
		}
	}
	if ok, _, _ := lim.allow(room, msg(false), now); ok {
		t.Error("a third live line at once let through, want the limit to hold for live lines")
	}
}
