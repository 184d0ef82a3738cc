package bridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// A failed delivery is retried after 250 ms, then after waits that grow
// (each between half and all of its doubling step, never below 250 ms),
// and at once when the network reconnects.
func TestRetryBackoffAndOnline(t *testing.T) {
	f := newFixture(t, t.TempDir(), nil)           // for its store and links; its router has no networks
	r := bridge.NewRouter(f.store, f.links, quiet) // the documented 250 ms → 30 s
	mqtt := newPlain()
	var mu sync.Mutex
	var tries []time.Time
	mqtt.setFail(func(*bridge.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		tries = append(tries, time.Now())
		return errors.New("broker down")
	})
	r.AddNetwork("mqtt", mqtt)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	accept(t, r, msg("irc", "#ops", "alice", "", "kept"))

	// Attempts at 0, then after 250 ms, 250-500 ms and 500 ms-1 s.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(tries)
		mu.Unlock()
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts in 10 s, want 4", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	got := append([]time.Time(nil), tries...)
	mu.Unlock()
	const slack = 150 * time.Millisecond // scheduling on a busy machine
	bounds := [][2]time.Duration{{250 * time.Millisecond, 250 * time.Millisecond}, {250 * time.Millisecond, 500 * time.Millisecond}, {500 * time.Millisecond, time.Second}}
	for i, b := range bounds {
		gap := got[i+1].Sub(got[i])
		if gap < b[0] || gap > b[1]+slack {
			t.Errorf("wait before retry %d: %v, want %v to %v", i+1, gap, b[0], b[1])
		}
	}

	// The next wait is 1-2 s; the network coming back cuts it short.
	mqtt.setFail(nil)
	online := time.Now()
	r.Online("mqtt")
	mqtt.waitRoom(t, "chat/ops", 1)
	if d := time.Since(online); d > 500*time.Millisecond {
		t.Errorf("delivered %v after the network came back, want at once", d)
	}
}
