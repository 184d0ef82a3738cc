package irc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

const waitFor = 15 * time.Second

// recorder is a bridge.Inbound that keeps what it is given.
type recorder struct {
	mu                   sync.Mutex
	events               []bridge.Event
	online               int
	notify               chan struct{}
	adapterstest.Blocked // what moderation reports
	// failures makes the next Accept calls fail.
	failures atomic.Int32
	attempts atomic.Int32
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) Accept(ctx context.Context, ev bridge.Event) error {
	r.attempts.Add(1)
	if r.failures.Load() > 0 {
		r.failures.Add(-1)
		return fmt.Errorf("store unavailable")
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	close(r.notify)
	r.notify = make(chan struct{})
	r.mu.Unlock()
	return nil
}

func (r *recorder) Online(string) {
	r.mu.Lock()
	r.online++
	close(r.notify)
	r.notify = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) onlineCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.online
}

func (r *recorder) all() []bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Event(nil), r.events...)
}

// until waits for cond over the recorder's state.
func (r *recorder) until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.notify
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; events:\n%s", what, dumpEvents(r.all()))
		}
	}
}

// wait returns the first recorded event that matches.
func (r *recorder) wait(t testing.TB, what string, match func(bridge.Event) bool) bridge.Event {
	t.Helper()
	var found bridge.Event
	r.until(t, what, func() bool {
		for _, ev := range r.all() {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

func dumpEvents(evs []bridge.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s %+v\n", ev.Kind(), ev)
	}
	return b.String()
}

// logWriter sends adapter logs to the test log while the test runs.
type logWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	w := &logWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func netConfig(srv *testenv.IRCServer, mode string) *config.Network {
	return &config.Network{
		Type:    "irc",
		Mode:    mode,
		Puppets: config.Puppets{Max: 50, Idle: time.Minute},
		Section: &Config{
			Server: srv.Addr,
			Nick:   "bridge",
			Flood:  Flood{Burst: 100, Interval: 10 * time.Millisecond},
		},
	}
}

type testAdapter struct {
	*Adapter
	rec *recorder
}

// startAdapter starts an adapter on srv, joined to channels, and waits
// until it is online.
func startAdapter(t testing.TB, n *config.Network, tweak func(*Adapter), channels ...string) testAdapter {
	t.Helper()
	ad, err := New("libera", n, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	if tweak != nil {
		tweak(a)
	}
	rec := newRecorder()
	ctx := context.Background()
	for _, ch := range channels {
		if err := a.Join(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	rec.until(t, "online", func() bool { return rec.onlineCount() > 0 })
	if !a.Connected() {
		t.Fatal("online but not connected")
	}
	return testAdapter{a, rec}
}

func message(network, id, name, text string) *bridge.Message {
	return &bridge.Message{
		Header: bridge.Header{
			ID:     bridge.NewEventID(),
			Origin: bridge.Origin{Network: network, Room: "lobby"},
			Sender: bridge.Sender{Network: network, ID: id, Name: name},
			Time:   time.Now(),
		},
		Text: text,
	}
}

func delivery(ev bridge.Event, room string) *bridge.Delivery {
	return &bridge.Delivery{Link: "lobby", Room: room, Event: ev}
}

func (a testAdapter) send(t testing.TB, ev bridge.Event, room string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	id, err := a.Send(ctx, delivery(ev, room))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return id
}

// body is the non-tag part of a raw line, as the 512-byte limit counts it.
func body(raw string) string {
	if strings.HasPrefix(raw, "@") {
		if i := strings.IndexByte(raw, ' '); i >= 0 {
			return raw[i+1:]
		}
	}
	return raw
}

// from matches lines whose source nick is nick, case-insensitively.
func from(nick string) func(testenv.IRCLine) bool {
	return func(l testenv.IRCLine) bool { return strings.EqualFold(l.Nick(), nick) }
}

// textsFrom returns the texts alice saw from nick, once a line she says
// after them has reached the adapter: the server sent her everything
// before it by then.
func textsFrom(t testing.TB, a testAdapter, alice *testenv.IRCClient, nick string) []string {
	t.Helper()
	alice.Say("#lobby", "marker")
	a.rec.wait(t, "marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	var got []string
	for _, l := range alice.Messages(from(nick)) {
		got = append(got, l.Text())
	}
	return got
}
