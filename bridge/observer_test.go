package bridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
	"github.com/switchboard-chat/switchboard/store"
)

// counting records what the router reports, as "what network/kind".
type counting struct {
	mu     sync.Mutex
	counts map[string]int
	late   bool // a delivery was reported with no accept time
}

func (c *counting) add(what string, a bridge.RoomAddr, k bridge.Kind) {
	c.mu.Lock()
	c.counts[what+" "+a.Network+"/"+string(k)]++
	c.mu.Unlock()
}

func (c *counting) Accepted(from bridge.RoomAddr, k bridge.Kind) { c.add("accepted", from, k) }
func (c *counting) Delivered(to bridge.RoomAddr, k bridge.Kind, at time.Time) {
	c.mu.Lock()
	c.late = c.late || at.IsZero()
	c.mu.Unlock()
	c.add("delivered", to, k)
}
func (c *counting) Retried(to bridge.RoomAddr, k bridge.Kind)   { c.add("retried", to, k) }
func (c *counting) Failed(to bridge.RoomAddr, k bridge.Kind)    { c.add("failed", to, k) }
func (c *counting) Refused(from bridge.RoomAddr, k bridge.Kind) { c.add("refused", from, k) }
func (c *counting) Stored(op string, took time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && took > 0 {
		c.counts["stored "+op]++
	}
}

func (c *counting) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

func TestObserverSeesAcceptDeliverRetryFail(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite", t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	links, err := mapping.NewLinks(map[string][]bridge.RoomAddr{
		"ops": {{Network: "irc", Room: "#ops"}, {Network: "mqtt", Room: "chat/ops"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	irc, mqtt := newPlain(), newPlain()
	var once sync.Once
	mqtt.setFail(func(d *bridge.Delivery) error {
		switch d.Event.(*bridge.Message).Text {
		case "poison":
			return bridge.Permanent(errors.New("refused"))
		case "flaky":
			var err error
			once.Do(func() { err = errors.New("try again") })
			return err
		}
		return nil
	})
	obs := &counting{counts: map[string]int{}}
	r := bridge.NewRouter(st, links, quiet)
	r.MinBackoff, r.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	r.Observer = obs
	r.AddNetwork("irc", irc)
	r.AddNetwork("mqtt", mqtt)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	accept(t, r, msg("irc", "#ops", "alice", "", "poison"))
	accept(t, r, msg("irc", "#ops", "alice", "", "flaky"))
	accept(t, r, msg("irc", "#ops", "alice", "fine-1", "fine"))
	accept(t, r, &bridge.Delete{Header: msg("irc", "#ops", "mallory", "", "").Header, Target: bridge.Ref{Remote: "fine-1"}})
	mqtt.waitRoom(t, "chat/ops", 2)
	deadline := time.Now().Add(10 * time.Second)
	for obs.get("delivered mqtt/message") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	want := map[string]int{
		"accepted irc/message":   3,
		"delivered mqtt/message": 2,
		"retried mqtt/message":   1,
		"failed mqtt/message":    1,
		"stored accept":          3,
		"stored failed":          1,
		"refused irc/delete":     1,
	}
	for key, n := range want {
		if got := obs.get(key); got != n {
			t.Errorf("%s: %d, want %d", key, got, n)
		}
	}
	if n := obs.get("stored delivered"); n < 2 {
		t.Errorf("stored delivered: %d, want 2 or more", n)
	}
	if obs.late {
		t.Error("a delivery was reported without the event's time")
	}
}
