package service

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/mapping"
)

// statusNet is an adapter with personal states and a bot that records
// what it says directly to someone.
type statusNet struct {
	adapters.Adapter // not called
	mu               sync.Mutex
	states           map[string]string
	said             []string // user|text
	fail             error
	down             bool
}

func (n *statusNet) Connected() bool { n.mu.Lock(); defer n.mu.Unlock(); return !n.down }

func (n *statusNet) PersonalStatus() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]string{}
	for k, v := range n.states {
		out[k] = v
	}
	return out
}

func (n *statusNet) SendAsBot(_ context.Context, room, user, text string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return n.fail
	}
	n.said = append(n.said, room+"|"+user+"|"+text)
	return nil
}

// A failed account is told of once, on the home network, to the
// person's account there; again only once it has been up and failed
// anew; a home network that cannot take it now is tried again.
func TestFailureNoticeOncePerFailure(t *testing.T) {
	people, err := mapping.NewPeople([]mapping.Person{{ID: "alice", Name: "Alice", Home: "mx",
		Accounts: map[string]string{"libera": "alice", "mx": "@alice:localhost"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	libera := &statusNet{states: map[string]string{"alice": "connecting"}}
	mx := &statusNet{states: map[string]string{"alice": "connected"}, fail: context.DeadlineExceeded, down: true}
	f := &failureNotices{nets: &netSet{m: map[string]adapters.Adapter{"libera": libera, "mx": mx}}, people: people,
		log: slog.New(slog.DiscardHandler), told: map[[2]string]bool{}}
	ctx := context.Background()
	set := func(state string) { libera.mu.Lock(); libera.states["alice"] = state; libera.mu.Unlock() }

	f.poll(ctx)
	set("failed: SASL login as alice refused")
	f.poll(ctx) // mx is down: not told yet
	mx.mu.Lock()
	mx.down = false
	mx.mu.Unlock()
	f.poll(ctx) // mx cannot send now: not told yet
	mx.mu.Lock()
	mx.fail = nil
	mx.mu.Unlock()
	f.poll(ctx)
	f.poll(ctx)
	if len(mx.said) != 1 || !strings.HasPrefix(mx.said[0], "|@alice:localhost|") || !strings.Contains(mx.said[0], "alice on libera: SASL login as alice refused") {
		t.Fatalf("said %q, want one direct notice to @alice:localhost naming the account and the reason", mx.said)
	}
	set("connecting")
	f.poll(ctx)
	set("failed: SASL login as alice refused")
	f.poll(ctx)
	if len(mx.said) != 1 {
		t.Errorf("told again without having been up: %q", mx.said)
	}
	set("connected")
	f.poll(ctx)
	set("failed: nick alice is in use")
	f.poll(ctx)
	f.poll(ctx)
	if len(mx.said) != 2 || !strings.Contains(mx.said[1], "nick alice is in use") {
		t.Errorf("after being up and failing anew: %q, want a second notice", mx.said)
	}
	if len(libera.said) != 0 {
		t.Errorf("the failed network's bot spoke: %q", libera.said)
	}
}
