package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

var _ adapters.Relay = (*cluster.Relay)(nil)

// inbox records what a subscription got.
type inbox struct {
	mu  sync.Mutex
	got []string
}

func (b *inbox) add(data []byte) {
	b.mu.Lock()
	b.got = append(b.got, string(data))
	b.mu.Unlock()
}

func (b *inbox) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// count is how many times want was got.
func (b *inbox) count(want string) int {
	n := 0
	for _, g := range b.list() {
		if g == want {
			n++
		}
	}
	return n
}

func (b *inbox) wait(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for b.count(want) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%q not received within %v; got %q", want, within, b.list())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func subscribe(t *testing.T, r *cluster.Relay, topic string) (*inbox, func()) {
	t.Helper()
	b := &inbox{}
	unsub, err := r.Subscribe(topic, b.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsub)
	return b, unsub
}

func TestRelay(t *testing.T) {
	srv := testenv.NATS(t)
	ctx := context.Background()
	a, b := node(t, srv.URL, "a").Relay(), node(t, srv.URL, "b").Relay()

	// Topics that are no NATS subject: dots, wildcards, spaces, empty,
	// longer than a control line.
	long := string(make([]byte, 5000))
	topics := []string{"webrtc/web", "room.with.dots", "*", ">", "a b\r\n", "", long, "ünï"}
	boxes := map[string][2]*inbox{}
	for _, topic := range topics {
		ia, _ := subscribe(t, a, topic)
		ib, _ := subscribe(t, b, topic)
		boxes[topic] = [2]*inbox{ia, ib}
	}
	for i, topic := range topics {
		if err := a.Publish(ctx, topic, []byte(fmt.Sprint("data ", i))); err != nil {
			t.Fatalf("publish on %q: %v", topic, err)
		}
	}
	for i, topic := range topics {
		for _, box := range boxes[topic] {
			box.wait(t, fmt.Sprint("data ", i), 5*time.Second)
		}
	}
	time.Sleep(200 * time.Millisecond) // what else might come
	for i, topic := range topics {
		for j, box := range boxes[topic] {
			if got := box.list(); len(got) != 1 {
				t.Errorf("topic %d on node %d got %q, want only data %d", i, j, got, i)
			}
		}
	}

	// Unsubscribed: nothing more, while the other subscriber still gets it.
	ib, unsub := subscribe(t, b, "room")
	ia, _ := subscribe(t, a, "room")
	b.Publish(ctx, "room", []byte("before"))
	ib.wait(t, "before", 5*time.Second)
	unsub()
	b.Publish(ctx, "room", []byte("after"))
	ia.wait(t, "after", 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	if ib.count("after") != 0 {
		t.Errorf("an unsubscribed handler got %q", ib.list())
	}

	// NATS restarted: delivery resumes on the same subscriptions.
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ia.count("back") == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery 10s after NATS restarted; got %q", ia.list())
		}
		if i%20 == 0 {
			b.Publish(ctx, "room", []byte("back"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Publish(ctx, "room", []byte("once more"))
	ia.wait(t, "once more", 5*time.Second)
}
