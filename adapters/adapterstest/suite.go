// Package adapterstest is the conformance suite every adapter passes
// against its real server: receive, send, ordering, echo suppression,
// hostile text and reconnect, and, for adapters that implement them,
// leaving a room and speaking as Switchboard, each asserted on what a
// user of the network sees.
package adapterstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Harness is one adapter under test, wired to a real server.
type Harness struct {
	// Network is the network name the adapter is configured with.
	Network string
	// Room is a room the adapter joins and the human is in.
	Room string
	// New builds an adapter with the same config each time; the suite
	// starts and stops it.
	New func(t *testing.T) adapters.Adapter
	// Human connects an ordinary user of the network to Room.
	Human func(t *testing.T) Human
	// Restart restarts the server; nil skips the reconnect test.
	Restart func(t *testing.T)
}

// Human is a person on the adapter's network, in Harness.Room.
type Human interface {
	// Say posts text to the room.
	Say(text string) error
	// WaitFor waits for a line the human sees in the room that matches.
	WaitFor(ctx context.Context, match func(Line) bool) (Line, error)
}

// Line is one chat line as the human sees it: who it is from, as their
// client shows it, and the text.
type Line struct {
	From string
	Text string
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("Receive", func(t *testing.T) { testReceive(t, h) })
	t.Run("Send", func(t *testing.T) { testSend(t, h) })
	t.Run("Order", func(t *testing.T) { testOrder(t, h) })
	t.Run("HostileText", func(t *testing.T) { testHostile(t, h) })
	t.Run("Reconnect", func(t *testing.T) {
		if h.Restart == nil {
			t.Skip("harness cannot restart its server")
		}
		testReconnect(t, h)
	})
	t.Run("Leave", func(t *testing.T) { testLeave(t, h) })
	t.Run("SendAsBot", func(t *testing.T) { testSendAsBot(t, h) })
}

const wait = 30 * time.Second

func startAdapter(t *testing.T, h Harness) (adapters.Adapter, *Recorder) {
	t.Helper()
	a := h.New(t)
	rec := NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.Start(ctx, rec); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if err := a.Join(ctx, h.Room); err != nil {
		t.Fatalf("join %s: %v", h.Room, err)
	}
	WaitConnected(t, a)
	return a, rec
}

// WaitConnected waits until an adapter reports its connection up (when it
// can tell).
func WaitConnected(t testing.TB, a adapters.Adapter) {
	t.Helper()
	c, ok := a.(adapters.Connected)
	if !ok {
		return
	}
	deadline := time.Now().Add(wait)
	for !c.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not connected after %v", a.Network(), wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// foreign is a sender from another network.
func foreign(id string) bridge.Sender {
	return bridge.Sender{Network: "elsewhere", ID: id, Name: id}
}

// StopsFenced checks that a whose fence (adapters.Fenced) is closed
// stops at once, although it can write nothing (no QUIT, stream end or
// DISCONNECT): the service stops it as soon as its lease is lost.
func StopsFenced(t testing.TB, a adapters.Adapter) {
	t.Helper()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil || time.Since(began) > 2*time.Second {
		t.Errorf("stop while fenced: %v after %v", err, time.Since(began))
	}
}

// Message makes a message from a foreign sender, as the router would hand
// it over.
func Message(from bridge.Sender, text string) *bridge.Message {
	return &bridge.Message{
		Header: bridge.Header{
			ID:     bridge.NewEventID(),
			Origin: bridge.Origin{Network: from.Network, Room: "#origin"},
			Sender: from,
			Time:   time.Now().UTC(),
		},
		Text: text,
	}
}

// send delivers a message, retrying while the adapter says it cannot yet
// (as the router's outbox would).
func send(t *testing.T, a adapters.Adapter, room string, m *bridge.Message) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	for {
		id, err := a.Send(ctx, &bridge.Delivery{Link: "conformance", Room: room, Event: m})
		if err == nil {
			return id
		}
		if ctx.Err() != nil {
			t.Fatalf("send %q: %v", m.Text, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitLine(t *testing.T, hu Human, what string, match func(Line) bool) Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	l, err := hu.WaitFor(ctx, match)
	if err != nil {
		t.Fatalf("human never saw %s: %v", what, err)
	}
	return l
}

func testReceive(t *testing.T, h Harness) {
	_, rec := startAdapter(t, h)
	hu := h.Human(t)
	text := "conformance hello <&> ünïcode"
	if err := hu.Say(text); err != nil {
		t.Fatal(err)
	}
	m := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == text })
	if m.Origin.Network != h.Network || m.Origin.Room != h.Room {
		t.Errorf("origin = %s:%s, want %s:%s", m.Origin.Network, m.Origin.Room, h.Network, h.Room)
	}
	if m.Sender.Network != h.Network || m.Sender.ID == "" || m.Sender.Name == "" {
		t.Errorf("sender = %+v, want a sender of %s with id and name", m.Sender, h.Network)
	}
}

func testSend(t *testing.T, h Harness) {
	a, rec := startAdapter(t, h)
	hu := h.Human(t)
	m := Message(foreign("alice"), "hi from elsewhere")
	send(t, a, h.Room, m)
	l := waitLine(t, hu, "alice's message", func(l Line) bool { return strings.Contains(l.Text, "hi from elsewhere") })
	if !strings.Contains(l.From+" "+l.Text, "alice") {
		t.Errorf("line %+v does not show it is from alice", l)
	}
	// Our own message must not come back as an inbound event.
	marker := "after echo check"
	if err := hu.Say(marker); err != nil {
		t.Fatal(err)
	}
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == marker })
	for _, m := range rec.Messages() {
		if strings.Contains(m.Text, "hi from elsewhere") {
			t.Errorf("the adapter's own message came back as an event from %+v", m.Sender)
		}
	}
}

func testOrder(t *testing.T, h Harness) {
	a, rec := startAdapter(t, h)
	hu := h.Human(t)
	const n = 12
	for i := range n {
		from := foreign([]string{"alice", "bob"}[i%2])
		send(t, a, h.Room, Message(from, fmt.Sprintf("ordered %02d", i)))
	}
	for i := range n {
		want := fmt.Sprintf("ordered %02d", i)
		l := waitLine(t, hu, want, func(l Line) bool { return strings.Contains(l.Text, "ordered ") })
		if !strings.Contains(l.Text, want) {
			t.Fatalf("line %d: human saw %q, want %q", i, l.Text, want)
		}
	}
	for i := range n {
		if err := hu.Say(fmt.Sprintf("inbound %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == fmt.Sprintf("inbound %02d", n-1) })
	var got []string
	for _, m := range rec.Messages() {
		if strings.HasPrefix(m.Text, "inbound ") {
			got = append(got, m.Text)
		}
	}
	if len(got) != n {
		t.Fatalf("got %d inbound messages, want %d: %q", len(got), n, got)
	}
	for i, text := range got {
		if want := fmt.Sprintf("inbound %02d", i); text != want {
			t.Fatalf("inbound %d = %q, want %q", i, text, want)
		}
	}
}

func testHostile(t *testing.T, h Harness) {
	a, _ := startAdapter(t, h)
	hu := h.Human(t)
	send(t, a, h.Room, Message(foreign("mallory"), "before\r\nQUIT :x\x00after"))
	l := waitLine(t, hu, "the hostile text", func(l Line) bool { return strings.Contains(l.Text, "QUIT :x") })
	// Line breaks are legitimate where the network carries them; NUL never is.
	if strings.ContainsAny(l.Text, "\x00") || strings.Contains(l.Text, "\r\n") {
		t.Errorf("control characters reached the human: %q", l.Text)
	}
	send(t, a, h.Room, Message(foreign("mallory"), "<b>&amp;</b> ]]> '\""))
	waitLine(t, hu, "markup as literal text", func(l Line) bool { return strings.Contains(l.Text, "<b>&amp;</b> ]]> '\"") })
	send(t, a, h.Room, Message(foreign("mallory"), "still here"))
	waitLine(t, hu, "a message after the hostile ones", func(l Line) bool { return strings.Contains(l.Text, "still here") })
}

func testReconnect(t *testing.T, h Harness) {
	a, rec := startAdapter(t, h)
	h.Restart(t)
	hu := h.Human(t)
	send(t, a, h.Room, Message(foreign("alice"), "after restart"))
	waitLine(t, hu, "a message sent after the restart", func(l Line) bool { return strings.Contains(l.Text, "after restart") })
	WaitConnected(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// The adapter may still be rejoining: say it until it is heard.
	for i := 0; ; i++ {
		text := fmt.Sprintf("heard after restart %d", i)
		if err := hu.Say(text); err != nil {
			t.Fatal(err)
		}
		if rec.WaitMessageFor(ctx, time.Second, func(m *bridge.Message) bool { return m.Text == text }) != nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the adapter never received a message after the restart")
		}
	}
}

// quiet is how long a line that must not arrive is waited for.
const quiet = 2 * time.Second

// testLeave: after Leave nothing said in the room is accepted; after
// joining it again it is. Humans are made anew after the Join, since
// leaving may have closed the session of the first (WebRTC).
func testLeave(t *testing.T, h Harness) {
	a, rec := startAdapter(t, h)
	l, ok := a.(adapters.Leaver)
	if !ok {
		t.Skip("adapter does not implement adapters.Leaver")
	}
	hu := h.Human(t)
	if err := hu.Say("before leave"); err != nil {
		t.Fatal(err)
	}
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "before leave" })
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	if err := l.Leave(ctx, h.Room); err != nil {
		t.Fatalf("leave %s: %v", h.Room, err)
	}
	// The human may already be gone with the room: an error is no failure.
	_ = hu.Say("after leave")
	if m := rec.WaitMessageFor(ctx, quiet, func(m *bridge.Message) bool { return m.Text == "after leave" }); m != nil {
		t.Errorf("a message in the left room was accepted: %+v", m)
	}
	if err := a.Join(ctx, h.Room); err != nil {
		t.Fatalf("join %s again: %v", h.Room, err)
	}
	WaitConnected(t, a)
	hu = h.Human(t)
	// The adapter may still be rejoining: say it until it is heard.
	for i := 0; ; i++ {
		text := fmt.Sprintf("heard after joining again %d", i)
		if err := hu.Say(text); err != nil {
			t.Fatal(err)
		}
		if rec.WaitMessageFor(ctx, time.Second, func(m *bridge.Message) bool { return m.Text == text }) != nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the adapter never received a message after joining again")
		}
	}
	for _, m := range rec.Messages() {
		if m.Text == "after leave" {
			t.Errorf("a message in the left room was accepted: %+v", m)
		}
	}
}

// testSendAsBot: what Switchboard says reaches the human, hostile text
// included, is not taken for the human's traffic, and leaves the adapter
// working.
func testSendAsBot(t *testing.T, h Harness) {
	a, rec := startAdapter(t, h)
	bs, ok := a.(bridge.BotSender)
	if !ok {
		t.Skip("adapter does not implement bridge.BotSender")
	}
	hu := h.Human(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	// Retried while the adapter says it cannot yet, as for send.
	for {
		err := bs.SendAsBot(ctx, h.Room, "", "bot notice\r\nQUIT :x\x00")
		if err == nil {
			break
		}
		if errors.Is(err, bridge.ErrPermanent) || ctx.Err() != nil {
			t.Fatalf("send as bot: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// One line or two, as the network carries line breaks.
	l := waitLine(t, hu, "the bot's notice", func(l Line) bool { return strings.Contains(l.Text, "bot notice") })
	if !strings.Contains(l.Text, "QUIT :x") {
		l = waitLine(t, hu, "the notice's second line", func(l Line) bool { return strings.Contains(l.Text, "QUIT :x") })
	}
	if strings.ContainsAny(l.Text, "\x00") || strings.Contains(l.Text, "\r\n") {
		t.Errorf("control characters reached the human: %q", l.Text)
	}
	send(t, a, h.Room, Message(foreign("alice"), "after the bot"))
	waitLine(t, hu, "a message after the bot's", func(l Line) bool { return strings.Contains(l.Text, "after the bot") })
	marker := "after the bot's notice"
	if err := hu.Say(marker); err != nil {
		t.Fatal(err)
	}
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == marker })
	for _, m := range rec.Messages() {
		if strings.Contains(m.Text, "bot notice") {
			t.Errorf("the bot's notice came back as an event from %+v", m.Sender)
		}
	}
}

// Recorder is a bridge.Inbound that keeps what it is given.
type Recorder struct {
	Blocked // what the adapter's moderation reports
	mu      sync.Mutex
	events  []bridge.Event
	changed chan struct{}
	online  int
	// Fail, when set, is returned by Accept instead of recording; set it
	// with SetFail once the adapter runs.
	Fail func(bridge.Event) error
	// Durable, when set, is what Commit returns as its wait for the disk.
	Durable func(now bool) error
}

// SetFail sets Fail while the adapter may be handing events over.
func (r *Recorder) SetFail(f func(bridge.Event) error) {
	r.mu.Lock()
	r.Fail = f
	r.mu.Unlock()
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{changed: make(chan struct{})} }

func (r *Recorder) Accept(ctx context.Context, ev bridge.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Fail != nil {
		if err := r.Fail(ev); err != nil {
			return err
		}
	}
	r.events = append(r.events, ev)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// Commit implements bridge.Committer: it records as Accept does.
func (r *Recorder) Commit(ctx context.Context, ev bridge.Event) (func(now bool) error, error) {
	if err := r.Accept(ctx, ev); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Durable != nil {
		return r.Durable, nil
	}
	return bridge.Committed, nil
}

func (r *Recorder) Online(string) {
	r.mu.Lock()
	r.online++
	r.mu.Unlock()
}

// Events returns what was accepted so far.
func (r *Recorder) Events() []bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Event(nil), r.events...)
}

// Messages returns the accepted messages.
func (r *Recorder) Messages() []*bridge.Message {
	var ms []*bridge.Message
	for _, ev := range r.Events() {
		if m, ok := ev.(*bridge.Message); ok {
			ms = append(ms, m)
		}
	}
	return ms
}

// WaitEvent waits for an accepted event that matches.
func (r *Recorder) WaitEvent(t testing.TB, match func(bridge.Event) bool) bridge.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ev := r.waitFor(ctx, match)
	if ev == nil {
		t.Fatalf("no matching event after %v; have %d events", wait, len(r.Events()))
	}
	return ev
}

// WaitMessage waits for an accepted message that matches.
func (r *Recorder) WaitMessage(t testing.TB, match func(*bridge.Message) bool) *bridge.Message {
	t.Helper()
	return r.WaitEvent(t, isMessage(match)).(*bridge.Message)
}

// WaitMessageFor is WaitMessage that gives up after d (or ctx) and
// returns nil.
func (r *Recorder) WaitMessageFor(ctx context.Context, d time.Duration, match func(*bridge.Message) bool) *bridge.Message {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if ev := r.waitFor(ctx, isMessage(match)); ev != nil {
		return ev.(*bridge.Message)
	}
	return nil
}

func isMessage(match func(*bridge.Message) bool) func(bridge.Event) bool {
	return func(ev bridge.Event) bool {
		m, ok := ev.(*bridge.Message)
		return ok && match(m)
	}
}

// waitFor returns the first accepted event that matches, or nil when ctx
// ends first.
func (r *Recorder) waitFor(ctx context.Context, match func(bridge.Event) bool) bridge.Event {
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if match(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}
