package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// pipeNet is a network that confirms messages asynchronously, as an XMPP
// room reflects them: a write is confirmed once the test lets the server
// confirm that many writes, and fails when the connection it went out on
// drops first.
type pipeNet struct {
	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	written   []string      // every write, in order
	delivered []string      // every confirmation, in order
	confirmed int           // writes the server may confirm (-1: all)
	conn      int           // the connection's generation
	down      bool
}

func newPipeNet(confirmed int) *pipeNet {
	return &pipeNet{changed: make(chan struct{}), confirmed: confirmed}
}

func (n *pipeNet) changeLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

func (n *pipeNet) Send(ctx context.Context, d *bridge.Delivery) (string, error) {
	confirm, err := n.SendPipelined(ctx, d)
	if err != nil {
		return "", err
	}
	return confirm(ctx)
}

var errDropped = errors.New("connection dropped")

func (n *pipeNet) SendPipelined(_ context.Context, d *bridge.Delivery) (bridge.Confirm, error) {
	text := d.Event.(*bridge.Message).Text
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return nil, errDropped
	}
	idx, conn := len(n.written), n.conn
	n.written = append(n.written, text)
	n.changeLocked()
	return func(ctx context.Context) (string, error) {
		n.mu.Lock()
		defer n.mu.Unlock()
		for {
			switch {
			case n.conn != conn:
				return "", errDropped
			case n.confirmed < 0 || idx < n.confirmed:
				n.delivered = append(n.delivered, text)
				n.changeLocked()
				return fmt.Sprint("r", idx), nil
			}
			changed := n.changed
			n.mu.Unlock()
			select {
			case <-changed:
			case <-ctx.Done():
				n.mu.Lock()
				return "", ctx.Err()
			}
			n.mu.Lock()
		}
	}, nil
}

// await waits until cond holds of the network's state.
func (n *pipeNet) await(t *testing.T, what string, cond func(n *pipeNet) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		n.mu.Lock()
		ok, changed := cond(n), n.changed
		written, delivered := len(n.written), len(n.delivered)
		n.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("never %s (%d written, %d confirmed)", what, written, delivered)
		}
	}
}

func (n *pipeNet) set(f func(n *pipeNet)) {
	n.mu.Lock()
	f(n)
	n.changeLocked()
	n.mu.Unlock()
}

// A sender's messages go out while the ones before them await their
// confirmation, and are recorded as delivered as they are confirmed, in
// order.
func TestPipelinedMessagesGoOutBeforeTheFirstIsConfirmed(t *testing.T) {
	room := newPipeNet(0)
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": room})
	want := flood(t, f.router, "alice", 40)
	room.await(t, "written 20 before a confirmation", func(n *pipeNet) bool { return len(n.written) >= 20 })
	room.set(func(n *pipeNet) { n.confirmed = 10 })
	room.await(t, "confirmed 10", func(n *pipeNet) bool { return len(n.delivered) == 10 })
	f.waitDepth(t, 30)
	room.set(func(n *pipeNet) { n.confirmed = -1 })
	f.waitDepth(t, 0)
	room.mu.Lock()
	defer room.mu.Unlock()
	if !slices.Equal(room.delivered, want) || !slices.Equal(room.written, want) {
		t.Errorf("the room got\n%q\nwritten as\n%q\nwant each once, in order: %q", room.delivered, room.written, want)
	}
}

// The connection drops mid-burst: what the server confirmed is never sent
// again, what it did not is sent again once it is back, in order, and
// nothing is lost.
func TestPipelineResumesAfterTheConnectionDrops(t *testing.T) {
	room := newPipeNet(30)
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": room})
	want := flood(t, f.router, "alice", 200)
	room.await(t, "confirmed 30 with more written", func(n *pipeNet) bool { return len(n.delivered) == 30 && len(n.written) > 40 })
	room.set(func(n *pipeNet) { n.conn++; n.down = true })
	time.Sleep(50 * time.Millisecond) // retries fail meanwhile
	room.set(func(n *pipeNet) { n.down, n.confirmed = false, -1 })
	f.router.Online("mqtt")
	f.waitDepth(t, 0)
	room.mu.Lock()
	defer room.mu.Unlock()
	if !slices.Equal(room.delivered, want) {
		t.Errorf("the room got\n%q\nwant each once, in order:\n%q", room.delivered, want)
	}
	if len(room.written) <= len(want) {
		t.Errorf("%d writes for %d messages: the writes lost with the connection were not sent again", len(room.written), len(want))
	}
}
