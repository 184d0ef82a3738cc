package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// lanesNet is a network whose deliveries can be held per sender, as an
// IRC puppet waits on its own flood bucket: a held sender's Send blocks
// without holding up anyone else's.
type lanesNet struct {
	mu       sync.Mutex
	held     map[string]chan struct{} // sender id → closed when released
	fail     map[string]error         // sender id → the error their deliveries get
	got      []*bridge.Delivery
	attempts map[string]int // by message text
	seen     chan struct{}
}

func newLanesNet() *lanesNet {
	return &lanesNet{held: map[string]chan struct{}{}, fail: map[string]error{}, attempts: map[string]int{}, seen: make(chan struct{}, 10000)}
}

func (n *lanesNet) hold(sender string) {
	n.mu.Lock()
	n.held[sender] = make(chan struct{})
	n.mu.Unlock()
}

func (n *lanesNet) release(sender string) {
	n.mu.Lock()
	close(n.held[sender])
	delete(n.held, sender)
	n.mu.Unlock()
}

func (n *lanesNet) setFail(sender string, err error) {
	n.mu.Lock()
	if err == nil {
		delete(n.fail, sender)
	} else {
		n.fail[sender] = err
	}
	n.mu.Unlock()
}

func (n *lanesNet) Send(ctx context.Context, d *bridge.Delivery) (string, error) {
	sender := d.Event.Head().Sender.ID
	n.mu.Lock()
	gate := n.held[sender]
	n.attempts[label(d)]++
	n.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.fail[sender]; err != nil {
		return "", err
	}
	n.got = append(n.got, d)
	n.seen <- struct{}{}
	return fmt.Sprintf("r%d", len(n.got)), nil
}

func (n *lanesNet) SendReaction(ctx context.Context, d *bridge.Delivery) (string, error) {
	return n.Send(ctx, d)
}

func label(d *bridge.Delivery) string {
	switch e := d.Event.(type) {
	case *bridge.Message:
		return e.Text
	case *bridge.Reaction:
		return "react:" + e.Key + ":" + d.Target
	}
	return string(d.Event.Kind())
}

// wait returns what the network received once it has n deliveries.
func (n *lanesNet) wait(t *testing.T, count int) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		n.mu.Lock()
		if len(n.got) >= count {
			out := make([]string, len(n.got))
			for i, d := range n.got {
				out[i] = d.Event.Head().Sender.ID + ":" + label(d)
			}
			n.mu.Unlock()
			return out
		}
		have := len(n.got)
		n.mu.Unlock()
		select {
		case <-n.seen:
		case <-deadline:
			t.Fatalf("got %d deliveries, want %d", have, count)
		}
	}
}

func (n *lanesNet) attemptsOf(text string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attempts[text]
}

// of keeps the deliveries of one sender, in the order they came.
func of(got []string, sender string) []string {
	var out []string
	for _, g := range got {
		if s, text, _ := strings.Cut(g, ":"); s == sender {
			out = append(out, text)
		}
	}
	return out
}

func flood(t *testing.T, r *bridge.Router, sender string, n int) []string {
	t.Helper()
	var want []string
	for i := range n {
		text := fmt.Sprintf("%s %03d", sender, i)
		want = append(want, text)
		accept(t, r, msg("irc", "#ops", sender, "", text))
	}
	return want
}

// One sender's backlog, stuck at their own flood limit, holds up no one
// else: another's message overtakes it, and each keeps their own order.
func TestLaneOvertakesAnothersBacklog(t *testing.T) {
	mqtt := newLanesNet()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": mqtt})
	mqtt.hold("flooder")
	want := flood(t, f.router, "flooder", 150)
	accept(t, f.router, msg("irc", "#ops", "calm", "", "calm 1"))
	accept(t, f.router, msg("irc", "#ops", "calm", "", "calm 2"))
	if got := mqtt.wait(t, 2); !slices.Equal(got, []string{"calm:calm 1", "calm:calm 2"}) {
		t.Fatalf("while the flooder waits, the room got %q", got)
	}
	mqtt.release("flooder")
	got := mqtt.wait(t, 152)
	if f := of(got, "flooder"); !slices.Equal(f, want) {
		t.Errorf("the flooder's order changed:\n got %q\nwant %q", f, want)
	}
	f.waitDepth(t, 0)
}

// A lane whose deliveries fail is retried on its own; the others go on,
// and only what failed is sent again.
func TestFailingLaneDoesNotBlockAnother(t *testing.T) {
	mqtt := newLanesNet()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": mqtt})
	mqtt.setFail("alice", errors.New("puppet cannot connect"))
	alice := flood(t, f.router, "alice", 5)
	bob := flood(t, f.router, "bob", 5)
	if got := mqtt.wait(t, 5); !slices.Equal(of(got, "bob"), bob) {
		t.Fatalf("while alice's lane fails, the room got %q", got)
	}
	for mqtt.attemptsOf("alice 000") < 3 {
		time.Sleep(5 * time.Millisecond) // retried meanwhile
	}
	mqtt.setFail("alice", nil)
	f.router.Online("mqtt")
	got := mqtt.wait(t, 10)
	if a := of(got, "alice"); !slices.Equal(a, alice) {
		t.Errorf("alice's order changed: %q", a)
	}
	// alice's first message was retried; nothing behind it, and none of
	// bob's, was sent more than once.
	for _, text := range append(alice[1:], bob...) {
		if n := mqtt.attemptsOf(text); n != 1 {
			t.Errorf("%q sent %d times, want once", text, n)
		}
	}
	f.waitDepth(t, 0)
}

// Every lane resumes from the store after a restart, each in its order.
func TestLanesResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	down := newLanesNet()
	for _, s := range []string{"a", "b", "c"} {
		down.setFail(s, errors.New("down"))
	}
	f := newFixture(t, dir, map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": down})
	want := map[string][]string{}
	for i := range 20 {
		s := []string{"a", "b", "c"}[i%3]
		text := fmt.Sprintf("%s %02d", s, i)
		want[s] = append(want[s], text)
		accept(t, f.router, msg("irc", "#ops", s, "", text))
	}
	f.stop()

	up := newLanesNet()
	g := newFixture(t, dir, map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": up})
	got := up.wait(t, 20)
	for s, w := range want {
		if o := of(got, s); !slices.Equal(o, w) {
			t.Errorf("%s after the restart: %q, want %q", s, o, w)
		}
	}
	g.waitDepth(t, 0)
}

// A reaction to a message still waiting in the flooder's lane waits for
// it, so that it can point at it; the reactor's own later messages stay
// behind the reaction.
func TestReferenceWaitsForItsTarget(t *testing.T) {
	mqtt := newLanesNet()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": newPlain(), "mqtt": mqtt})
	mqtt.hold("flooder")
	accept(t, f.router, msg("irc", "#ops", "flooder", "f1", "flooder 1"))
	accept(t, f.router, &bridge.Reaction{
		Header: bridge.Header{Origin: bridge.Origin{Network: "irc", Room: "#ops"}, Sender: bridge.Sender{Network: "irc", ID: "fan"}},
		Target: bridge.Ref{Remote: "f1"}, Key: "👍",
	})
	accept(t, f.router, msg("irc", "#ops", "fan", "", "fan 2"))
	accept(t, f.router, msg("irc", "#ops", "other", "", "other 1"))
	if got := mqtt.wait(t, 1); !slices.Equal(got, []string{"other:other 1"}) {
		t.Fatalf("while the flooder waits: %q", got)
	}
	time.Sleep(50 * time.Millisecond)
	mqtt.release("flooder")
	got := mqtt.wait(t, 4)
	want := []string{"other:other 1", "flooder:flooder 1", "fan:react:👍:r2", "fan:fan 2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// botNet records what its bot says, as BotSender.
type botNet struct {
	*plain
	mu   sync.Mutex
	said []string // room|user|text
}

func (b *botNet) SendAsBot(_ context.Context, room, user, text string) error {
	b.mu.Lock()
	b.said = append(b.said, room+"|"+user+"|"+text)
	b.mu.Unlock()
	return nil
}

func (b *botNet) told() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.said)
}

// A sender over their limit in a room loses what is over it, before it is
// stored; the bot tells them once (in the room, on a network without
// direct messages); other senders and history replayed are not limited.
func TestRateLimitPerSenderPerRoom(t *testing.T) {
	irc, mqtt := newPlain(), &botNet{plain: newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	f.router.SetRate("mqtt", bridge.RateLimit{PerSecond: 0.001, Burst: 3})
	send := func(sender, text string, at time.Time) {
		m := msg("mqtt", "chat/ops", sender, "", text)
		m.Time = at
		accept(t, f.router, m)
	}
	for i := range 10 {
		send("spammer", fmt.Sprintf("s%d", i), time.Time{})
	}
	send("calm", "c0", time.Time{})
	// A join is no message; a message stamped long ago is history.
	accept(t, f.router, &bridge.Join{Header: bridge.Header{Origin: bridge.Origin{Network: "mqtt", Room: "chat/ops"}, Sender: bridge.Sender{Network: "mqtt", ID: "spammer"}}})
	send("spammer", "old", time.Now().Add(-time.Hour))
	irc.waitRoom(t, "#ops", 5)
	time.Sleep(50 * time.Millisecond)
	// Each sender in their own order; the senders' lanes may interleave.
	var spammer, calm []string
	for _, d := range irc.room("#ops") {
		if d.Event.Head().Sender.ID == "spammer" {
			spammer = append(spammer, texts([]*bridge.Delivery{d})...)
		} else {
			calm = append(calm, texts([]*bridge.Delivery{d})...)
		}
	}
	if want := []string{"s0", "s1", "s2", "old"}; !slices.Equal(spammer, want) {
		t.Errorf("the IRC channel got %q from the spammer, want %q", spammer, want)
	}
	if want := []string{"c0"}; !slices.Equal(calm, want) {
		t.Errorf("the IRC channel got %q from calm, want %q", calm, want)
	}
	if d := f.router.Dropped(); d["mqtt"][bridge.DropRateLimited] != 7 || len(d) != 1 {
		t.Errorf("Dropped() = %v, want mqtt: 7 rate_limited", d)
	}
	// In the room: MQTT has no direct messages.
	deadline := time.Now().Add(5 * time.Second)
	for len(mqtt.told()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	said := mqtt.told()
	if len(said) != 1 || !strings.HasPrefix(said[0], "chat/ops|spammer|spammer: You are sending faster") {
		t.Errorf("the bot said %q, want one notice to spammer in chat/ops", said)
	}
	// The same sender in another room has a bucket of their own; another
	// network has no limit.
	m := msg("mqtt", "chat/lobby", "spammer", "", "elsewhere")
	accept(t, f.router, m)
	for i := range 5 {
		accept(t, f.router, msg("irc", "#ops", "ircer", "", fmt.Sprintf("i%d", i)))
	}
	irc.waitRoom(t, "#lobby", 1)
	mqtt.waitRoom(t, "chat/ops", 5)
	if n := f.router.Dropped()["mqtt"][bridge.DropRateLimited]; n != 7 {
		t.Errorf("dropped %d, want still 7", n)
	}
}

// A reaction to a message the room shows but whose send has not been
// answered yet (its id not recorded) waits for the answer instead of
// being dropped as about an unknown message.
func TestReferenceToAMessageOnItsWayWaitsForItsID(t *testing.T) {
	irc, mqtt := rich{newPlain()}, newLanesNet()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt})
	mqtt.hold("bob")
	accept(t, f.router, msg("irc", "#ops", "bob", "b1", "hello"))
	for mqtt.attemptsOf("hello") == 0 {
		time.Sleep(5 * time.Millisecond) // the room has it; its id is not back
	}
	reacted := make(chan struct{})
	go func() {
		defer close(reacted)
		accept(t, f.router, &bridge.Reaction{
			Header: bridge.Header{Origin: bridge.Origin{Network: "mqtt", Room: "chat/ops"}, Sender: bridge.Sender{Network: "mqtt", ID: "fan"}},
			Target: bridge.Ref{Remote: "r1"}, Key: "👍",
		})
	}()
	time.Sleep(50 * time.Millisecond)
	mqtt.release("bob")
	<-reacted
	got := irc.waitRoom(t, "#ops", 1)
	if r, ok := got[0].Event.(*bridge.Reaction); !ok || got[0].Target != "b1" || r.Key != "👍" {
		t.Errorf("#ops got %s with target %q, want the reaction on b1", got[0].Event.Kind(), got[0].Target)
	}
}
