package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

const (
	room = "chat/lobby"
	wait = 10 * time.Second
)

// fakeInbound stands in for the router: it records accepted events and can
// be told to fail or stall.
type fakeInbound struct {
	mu     sync.Mutex
	calls  int
	accept func(call int, ev bridge.Event) error // nil accepts everything
	events chan *bridge.Message
	online chan string
}

func newFakeInbound() *fakeInbound {
	return &fakeInbound{events: make(chan *bridge.Message, 1000), online: make(chan string, 100)}
}

func (f *fakeInbound) Accept(ctx context.Context, ev bridge.Event) error {
	f.mu.Lock()
	f.calls++
	n, fn := f.calls, f.accept
	f.mu.Unlock()
	if fn != nil {
		if err := fn(n, ev); err != nil {
			return err
		}
	}
	m, ok := ev.(*bridge.Message)
	if !ok {
		return fmt.Errorf("unexpected event %T", ev)
	}
	f.events <- m
	return nil
}

func (f *fakeInbound) Online(network string) { f.online <- network }

func (f *fakeInbound) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeInbound) next(t *testing.T) *bridge.Message {
	t.Helper()
	select {
	case m := <-f.events:
		return m
	case <-time.After(wait):
		t.Fatal("no inbound event")
		return nil
	}
}

func (f *fakeInbound) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-f.events:
		t.Fatalf("unexpected inbound event %q from %s", m.Text, m.Sender.ID)
	case <-time.After(d):
	}
}

func (f *fakeInbound) waitOnline(t *testing.T) {
	t.Helper()
	select {
	case n := <-f.online:
		if n != "mq" {
			t.Fatalf("Online(%q), want mq", n)
		}
	case <-time.After(wait):
		t.Fatal("adapter did not come online")
	}
}

type testInbound interface {
	bridge.Inbound
	waitOnline(t *testing.T)
}

// committer is a fakeInbound that commits ahead of the disk sync, as the
// router does: each commit's durable fails until synced is closed.
type committer struct {
	*fakeInbound
	synced chan struct{}
}

func (c *committer) Commit(ctx context.Context, ev bridge.Event) (func(bool) error, error) {
	if err := c.Accept(ctx, ev); err != nil {
		return nil, err
	}
	return func(now bool) error {
		if now {
			return errors.New("the acknowledgements wait for a shared sync")
		}
		select {
		case <-c.synced:
			return nil
		case <-time.After(50 * time.Millisecond):
			return errors.New("disk sync failed")
		}
	}, nil
}

// Messages are committed one after another without waiting for the
// disk, and each is acknowledged once its commit is on disk: until then
// the broker keeps them all.
func TestAckAfterTheDiskSyncs(t *testing.T) {
	for _, synced := range []bool{true, false} {
		t.Run(fmt.Sprintf("synced=%v", synced), func(t *testing.T) {
			b := testenv.Mosquitto(t)
			id := testenv.UniqueClientID("sb")
			in := &committer{newFakeInbound(), make(chan struct{})}
			a, _ := startAdapter(t, b, in, setup{clientID: id})
			dev := b.Client(t, "")
			for i := range 3 {
				testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, fmt.Sprintf("m%d", i))
			}
			for i := range 3 {
				if m := in.next(t); m.Text != fmt.Sprintf("m%d", i) {
					t.Fatalf("commit %d: %q", i, m.Text)
				}
			}
			time.Sleep(200 * time.Millisecond)
			if n := a.acked.Load(); n != 0 {
				t.Fatalf("%d acks before the disk synced", n)
			}
			if synced {
				close(in.synced)
				eventually(t, "acks", func() bool { return a.acked.Load() == 3 })
			}
			stop(t, a)
			b.WaitClientGone(t, id)

			// Acknowledged messages are gone from the session; the others
			// come again, in order.
			again := newFakeInbound()
			startAdapter(t, b, again, setup{clientID: id})
			testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, "marker")
			want := []string{"m0", "m1", "m2", "marker"}
			if synced {
				want = want[3:]
			}
			for _, w := range want {
				if m := again.next(t); m.Text != w {
					t.Fatalf("after restart got %q, want %q", m.Text, w)
				}
			}
			again.quiet(t, 300*time.Millisecond)
		})
	}
}

type setup struct {
	clientID   string
	maxPayload int
	tweak      func(*Adapter)
}

func newAdapter(t *testing.T, brokerURL string, s setup) (*Adapter, *testenv.Log) {
	t.Helper()
	logs := testenv.NewLog(t)
	log := logs.Logger()
	n := &config.Network{Type: "mqtt", Section: &Config{Broker: brokerURL, ClientID: s.clientID, MaxPayload: s.maxPayload}}
	ad, err := adapters.New("mq", n, log)
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	a.timeouts.connectRetryMin = 50 * time.Millisecond
	a.timeouts.connectRetryMax = time.Second
	a.timeouts.acceptRetryMin = 20 * time.Millisecond
	a.timeouts.acceptRetryMax = 200 * time.Millisecond
	if s.tweak != nil {
		s.tweak(a)
	}
	t.Cleanup(func() { stop(t, a) })
	return a, logs
}

// startAdapter starts an adapter, joins room and waits until it is online.
func startAdapter(t *testing.T, b *testenv.MQTTBroker, in testInbound, s setup) (*Adapter, *testenv.Log) {
	t.Helper()
	if s.clientID == "" {
		s.clientID = testenv.UniqueClientID("sb")
	}
	a, logs := newAdapter(t, b.URL, s)
	if err := a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	in.waitOnline(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	return a, logs
}

func stop(t *testing.T, a *Adapter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInbound(t *testing.T) {
	b := testenv.Mosquitto(t)
	in := newFakeInbound()
	a, _ := startAdapter(t, b, in, setup{})
	dev := b.Client(t, "")

	testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, "hello from dev1")
	m := in.next(t)
	want := bridge.Sender{Network: "mq", ID: "dev1", Name: "dev1", Authenticated: true}
	if m.Sender != want || m.Text != "hello from dev1" {
		t.Errorf("got sender %+v text %q", m.Sender, m.Text)
	}
	if m.Origin != (bridge.Origin{Network: "mq", Room: room}) {
		t.Errorf("origin %+v", m.Origin)
	}
	if m.ID == "" || m.Time.IsZero() || !m.ReplyTo.IsZero() {
		t.Errorf("header %+v reply %+v", m.Header, m.ReplyTo)
	}

	testenv.MQTTPublish(t, dev, room+"/in/sensor-7", 1, false,
		`{"text":"door open","name":"Front Door","reply_to":"0190-event","id":"42"}`)
	m = in.next(t)
	want = bridge.Sender{Network: "mq", ID: "sensor-7", Name: "Front Door", Authenticated: true}
	if m.Sender != want || m.Text != "door open" || m.ReplyTo != (bridge.Ref{Event: "0190-event"}) {
		t.Errorf("got sender %+v text %q reply %+v", m.Sender, m.Text, m.ReplyTo)
	}
	if m.Origin.RemoteID != "sensor-7/42" {
		t.Errorf("remote id %q, want sensor-7/42", m.Origin.RemoteID)
	}

	// A room whose root contains "/in/" still parses from the right.
	odd := "a/in/b"
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.Join(ctx, odd); err != nil {
		t.Fatal(err)
	}
	testenv.MQTTPublish(t, dev, odd+"/in/x", 1, false, "odd")
	if m := in.next(t); m.Origin.Room != odd || m.Sender.ID != "x" {
		t.Errorf("odd room: origin %+v sender %+v", m.Origin, m.Sender)
	}
	eventually(t, "acks", func() bool { return a.acked.Load() == 3 })
}

func TestInboundDrops(t *testing.T) {
	b := testenv.Mosquitto(t)
	dev := b.Client(t, "")
	// Retained before we subscribe: the broker replays it with the retain
	// flag set on our subscribe.
	testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, true, "old retained state")

	in := newFakeInbound()
	a, logs := startAdapter(t, b, in, setup{maxPayload: 100})
	eventually(t, "retained drop", func() bool { return a.Dropped()[DropRetained] == 1 })

	for _, p := range []struct {
		topic, payload string
	}{
		{room + "/in/dev1", "invalid \xff\xfe UTF-8"},
		{room + "/in/dev1", `{"name":"no text"}`},
		{room + "/in/dev1", `{"text":5}`},
		{room + "/in/", "empty device"},
		{room + "/in/dev1", strings.Repeat("A", 101) + "SECRET-PAYLOAD"},
		{room + "/in/dev1", `{"text":"SECRET-PAYLOAD","via":"switchboard"}`},
		{room + "/in/dev1", "still working"},
	} {
		testenv.MQTTPublish(t, dev, p.topic, 1, false, p.payload)
	}
	m := in.next(t)
	if m.Text != "still working" {
		t.Fatalf("first accepted event is %q", m.Text)
	}
	in.quiet(t, 200*time.Millisecond)
	want := map[string]uint64{DropMalformed: 4, DropOversize: 1, DropLoop: 1, DropRetained: 1}
	if got := a.Dropped(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Dropped() = %v, want %v", got, want)
	}
	// Dropped messages are acknowledged too, or the broker would resend them.
	eventually(t, "acks", func() bool { return a.acked.Load() == 8 })
	log := logs.String()
	if strings.Contains(log, "SECRET-PAYLOAD") {
		t.Errorf("log contains a payload:\n%s", log)
	}
	for _, reason := range []string{"reason=oversize", "reason=loop", "reason=malformed", "topic=chat/lobby/in/dev1"} {
		if !strings.Contains(log, reason) {
			t.Errorf("log lacks %q:\n%s", reason, log)
		}
	}
}

func TestOutbound(t *testing.T) {
	b := testenv.Mosquitto(t)
	sub := b.Subscribe(t, room+"/out/#", 1)
	a, _ := startAdapter(t, b, newFakeInbound(), setup{})

	ts := time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	h := func(id bridge.EventID) bridge.Header {
		return bridge.Header{ID: id, Origin: bridge.Origin{Network: "libera", Room: "#lobby", RemoteID: "irc-" + string(id)},
			Sender: bridge.Sender{Network: "libera", ID: "alice", Name: "Alice"}, Time: ts}
	}
	target := bridge.Ref{Event: "E1", Remote: "E1"}
	const head = `"network":"libera","room":"#lobby","sender":{"id":"alice","name":"Alice"},`
	const tail = `,"via":"switchboard","ts":"2025-01-02T03:04:05.678Z"}`
	ctx := context.Background()
	ret := func(_ string, err error) error { return err }
	cases := []struct {
		name string
		ev   bridge.Event
		send func(*bridge.Delivery) error
		want string
	}{
		{"message", &bridge.Message{Header: h("E1"), Text: "hello", HTML: "<b>hello</b>",
			Attachments: []bridge.Attachment{{URL: "https://example.org/x.png", Name: "x.png", Mime: "image/png", Size: 3}}},
			func(d *bridge.Delivery) error { return ret(a.Send(ctx, d)) },
			`{"id":"E1","type":"message",` + head + `"text":"hello","html":"<b>hello</b>","attachments":[{"url":"https://example.org/x.png","name":"x.png","mime":"image/png","size":3}]` + tail},
		{"reply", &bridge.Message{Header: h("E2"), Text: "waves", Emote: true, ReplyTo: bridge.Ref{Event: "E1"}},
			func(d *bridge.Delivery) error { return ret(a.SendReply(ctx, d)) },
			`{"id":"E2","type":"message",` + head + `"text":"waves","emote":true,"reply_to":"E1"` + tail},
		{"notice", &bridge.Message{Header: h("E3"), Text: "build ok", Notice: true},
			func(d *bridge.Delivery) error { return ret(a.Send(ctx, d)) },
			`{"id":"E3","type":"message",` + head + `"text":"build ok","notice":true` + tail},
		{"edit", &bridge.Edit{Header: h("E4"), Target: target, Text: "hello!"},
			func(d *bridge.Delivery) error { return ret(a.SendEdit(ctx, d)) },
			`{"id":"E4","type":"edit",` + head + `"text":"hello!","edit_of":"E1"` + tail},
		{"delete", &bridge.Delete{Header: h("E5"), Target: target},
			func(d *bridge.Delivery) error { return a.SendDelete(ctx, d) },
			`{"id":"E5","type":"delete",` + head + `"target":"E1"` + tail},
		{"reaction", &bridge.Reaction{Header: h("E6"), Target: target, Key: "👍"},
			func(d *bridge.Delivery) error { return ret(a.SendReaction(ctx, d)) },
			`{"id":"E6","type":"reaction",` + head + `"target":"E1","key":"👍"` + tail},
		{"unreaction", &bridge.Reaction{Header: h("E7"), Target: target, Key: "👍", Remove: true},
			func(d *bridge.Delivery) error { return ret(a.SendReaction(ctx, d)) },
			`{"id":"E7","type":"reaction",` + head + `"target":"E1","key":"👍","remove":true` + tail},
		{"join", &bridge.Join{Header: h("E8")},
			func(d *bridge.Delivery) error { return a.SendMembership(ctx, d) },
			`{"id":"E8","type":"join",` + strings.TrimSuffix(head, ",") + tail},
		{"leave", &bridge.Leave{Header: h("E9"), Reason: "bye"},
			func(d *bridge.Delivery) error { return a.SendMembership(ctx, d) },
			`{"id":"E9","type":"leave",` + head + `"reason":"bye"` + tail},
		{"rename", &bridge.Rename{Header: h("E10"), Previous: "Al"},
			func(d *bridge.Delivery) error { return a.SendMembership(ctx, d) },
			`{"id":"E10","type":"rename",` + head + `"previous":"Al"` + tail},
		{"topic", &bridge.Topic{Header: h("E11"), Topic: "news & notes"},
			func(d *bridge.Delivery) error { return a.SendTopic(ctx, d) },
			`{"id":"E11","type":"topic",` + head + `"topic":"news & notes"` + tail},
		{"topic cleared", &bridge.Topic{Header: h("E12")},
			func(d *bridge.Delivery) error { return a.SendTopic(ctx, d) },
			`{"id":"E12","type":"topic",` + head + `"topic":""` + tail},
		{"typing", &bridge.Typing{Header: h("E13"), Active: true},
			func(d *bridge.Delivery) error { return a.SendTyping(ctx, d) },
			`{"id":"E13","type":"typing",` + head + `"active":true` + tail},
		{"typing stopped", &bridge.Typing{Header: h("E14")},
			func(d *bridge.Delivery) error { return a.SendTyping(ctx, d) },
			`{"id":"E14","type":"typing",` + head + `"active":false` + tail},
		{"presence", &bridge.Presence{Header: h("E15"), Status: "away", Message: "lunch"},
			func(d *bridge.Delivery) error { return a.SendPresence(ctx, d) },
			`{"id":"E15","type":"presence",` + head + `"status":"away","message":"lunch"` + tail},
	}
	for _, c := range cases {
		d := &bridge.Delivery{Link: "lobby", Room: room, Event: c.ev}
		if err := c.send(d); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m := sub.Next(t, wait)
		if m.Topic != room+"/out/libera/alice" {
			t.Errorf("%s: topic %q", c.name, m.Topic)
		}
		if string(m.Payload) != c.want {
			t.Errorf("%s: payload\n got %s\nwant %s", c.name, m.Payload, c.want)
		}
		if m.QoS != 1 || m.Retained {
			t.Errorf("%s: qos %d retained %v", c.name, m.QoS, m.Retained)
		}
	}

	// The remote id is the event id, and a retry publishes the same bytes.
	msg := &bridge.Message{Header: h("E16"), Text: "again"}
	msg.Sender.ID = "we/ird+#id"
	d := &bridge.Delivery{Room: room, Event: msg}
	var payloads []string
	for range 2 {
		id, err := a.Send(ctx, d)
		if err != nil || id != "E16" {
			t.Fatalf("Send = %q, %v; want E16", id, err)
		}
		m := sub.Next(t, wait)
		if m.Topic != room+"/out/libera/we%2Fird%2B%23id" {
			t.Errorf("escaped topic %q", m.Topic)
		}
		payloads = append(payloads, string(m.Payload))
	}
	if payloads[0] != payloads[1] {
		t.Errorf("retry changed the payload:\n%s\n%s", payloads[0], payloads[1])
	}

	msg.Sender.ID = ""
	if _, err := a.Send(ctx, d); err != nil {
		t.Fatal(err)
	}
	if m := sub.Next(t, wait); m.Topic != room+"/out/libera/%" {
		t.Errorf("empty sender topic %q", m.Topic)
	}

	_, err := a.Send(ctx, &bridge.Delivery{Room: "bad/#", Event: msg})
	if !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("Send to an invalid room: %v, want a permanent error", err)
	}
}

// Our own output must never come back in: it goes to R/out/, and a bridge's
// JSON that is published to R/in/ anyway is recognised as a loop.
func TestNoEcho(t *testing.T) {
	b := testenv.Mosquitto(t)
	in := newFakeInbound()
	a, _ := startAdapter(t, b, in, setup{})
	msg := &bridge.Message{Header: bridge.Header{ID: "E1", Origin: bridge.Origin{Network: "libera", Room: "#x"},
		Sender: bridge.Sender{Network: "libera", ID: "bob"}, Time: time.Now()}, Text: "hi"}
	if _, err := a.Send(context.Background(), &bridge.Delivery{Room: room, Event: msg}); err != nil {
		t.Fatal(err)
	}
	_, payload, _ := Encode(room, msg)
	testenv.MQTTPublish(t, b.Client(t, ""), room+"/in/bob", 1, false, payload)
	eventually(t, "loop drop", func() bool { return a.Dropped()[DropLoop] == 1 })
	in.quiet(t, 200*time.Millisecond)
}

func TestAcceptRetryAcksOnce(t *testing.T) {
	b := testenv.Mosquitto(t)
	in := newFakeInbound()
	in.accept = func(call int, _ bridge.Event) error {
		if call <= 3 {
			return errors.New("store briefly down")
		}
		return nil
	}
	id := testenv.UniqueClientID("sb")
	a, _ := startAdapter(t, b, in, setup{clientID: id})
	dev := b.Client(t, "")
	testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, "only once")
	if m := in.next(t); m.Text != "only once" {
		t.Fatalf("got %q", m.Text)
	}
	in.quiet(t, 300*time.Millisecond)
	if n := in.Calls(); n != 4 {
		t.Errorf("Accept called %d times, want 4", n)
	}
	if n := a.acked.Load(); n != 1 {
		t.Errorf("%d acks, want 1", n)
	}

	// The broker got that ack: the session has nothing to resend.
	stop(t, a)
	b.WaitClientGone(t, id)
	in2 := newFakeInbound()
	startAdapter(t, b, in2, setup{clientID: id})
	testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, "marker")
	if m := in2.next(t); m.Text != "marker" {
		t.Fatalf("after restart got %q first, want marker", m.Text)
	}
	in2.quiet(t, 300*time.Millisecond)
}

func TestPersistentSession(t *testing.T) {
	b := testenv.Mosquitto(t)
	id := testenv.UniqueClientID("sb")
	a, _ := startAdapter(t, b, newFakeInbound(), setup{clientID: id})
	stop(t, a)
	b.WaitClientGone(t, id)
	if a.Connected() {
		t.Error("Connected() after Stop")
	}

	dev := b.Client(t, "")
	const n = 50
	for i := range n {
		testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, fmt.Sprintf(`{"text":"m%02d","id":"%d"}`, i, i))
	}

	// The queued messages may arrive before Join; they are accepted all the
	// same, for the room their topic names.
	in := newFakeInbound()
	startAdapter(t, b, in, setup{clientID: id})
	for i := range n {
		m := in.next(t)
		if want := fmt.Sprintf("m%02d", i); m.Text != want || m.Origin.Room != room {
			t.Fatalf("message %d: %q in %q, want %q in %q", i, m.Text, m.Origin.Room, want, room)
		}
	}
	in.quiet(t, 500*time.Millisecond)
}

func TestStoppedAdapterDoesNotAck(t *testing.T) {
	b := testenv.Mosquitto(t)
	id := testenv.UniqueClientID("sb")
	failing := newFakeInbound()
	failing.accept = func(int, bridge.Event) error { return errors.New("store down") }
	a, _ := startAdapter(t, b, failing, setup{clientID: id})
	dev := b.Client(t, "")
	testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, "keep me")
	eventually(t, "an Accept attempt", func() bool { return failing.Calls() >= 2 })
	stop(t, a)
	b.WaitClientGone(t, id)
	if n := a.acked.Load(); n != 0 {
		t.Fatalf("%d acks from a failing Accept", n)
	}

	in := newFakeInbound()
	startAdapter(t, b, in, setup{clientID: id})
	if m := in.next(t); m.Text != "keep me" {
		t.Fatalf("got %q", m.Text)
	}
	in.quiet(t, 300*time.Millisecond)
}

func TestBrokerRestart(t *testing.T) {
	b := testenv.Mosquitto(t)
	in := newFakeInbound()
	a, _ := startAdapter(t, b, in, setup{})
	if !a.Connected() {
		t.Fatal("not connected")
	}

	b.Stop()
	eventually(t, "disconnect", func() bool { return !a.Connected() })
	msg := &bridge.Message{Header: bridge.Header{ID: "E1", Origin: bridge.Origin{Network: "libera", Room: "#x"},
		Sender: bridge.Sender{Network: "libera", ID: "bob", Name: "Bob"}, Time: time.Now()}, Text: "after restart"}
	d := &bridge.Delivery{Room: room, Event: msg}
	if _, err := a.Send(context.Background(), d); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send while the broker is down: %v, want ErrNotConnected", err)
	}

	b.Start(t)
	in.waitOnline(t)
	if !a.Connected() {
		t.Fatal("Online but not Connected")
	}

	testenv.MQTTPublish(t, b.Client(t, ""), room+"/in/dev1", 1, false, "back again")
	if m := in.next(t); m.Text != "back again" {
		t.Fatalf("got %q", m.Text)
	}
	sub := b.Subscribe(t, room+"/out/#", 1)
	if _, err := a.Send(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if m := sub.Next(t, wait); !bytes.Contains(m.Payload, []byte(`"after restart"`)) {
		t.Fatalf("got %s", m.Payload)
	}
}

// A publish whose PUBACK never comes because the broker died fails at
// once, so the outbox retries it on the next connection instead of
// waiting out the publish timeout; the retry is delivered.
func TestPublishInFlightWhenBrokerDies(t *testing.T) {
	b := testenv.Mosquitto(t)
	in := newFakeInbound()
	a, _ := startAdapter(t, b, in, setup{})
	msg := &bridge.Message{Header: bridge.Header{ID: "E1", Origin: bridge.Origin{Network: "libera", Room: "#x"},
		Sender: bridge.Sender{Network: "libera", ID: "bob", Name: "Bob"}, Time: time.Now()}, Text: "in flight"}
	d := &bridge.Delivery{Room: room, Event: msg}

	// A stopped broker reads nothing and acknowledges nothing.
	if err := syscall.Kill(b.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { _, err := a.Send(context.Background(), d); sent <- err }()
	select {
	case err := <-sent:
		t.Fatalf("Send returned %v without a PUBACK", err)
	case <-time.After(300 * time.Millisecond):
	}
	began := time.Now()
	b.Kill()
	select {
	case err := <-sent:
		if !errors.Is(err, ErrNotConnected) {
			t.Fatalf("Send on a dead connection: %v, want ErrNotConnected", err)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Fatalf("Send took %v to notice the dead connection", took)
		}
	case <-time.After(wait):
		t.Fatal("Send still waiting after the broker died")
	}

	b.Start(t)
	in.waitOnline(t)
	sub := b.Subscribe(t, room+"/out/#", 1)
	if _, err := a.Send(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if m := sub.Next(t, wait); !bytes.Contains(m.Payload, []byte(`"in flight"`)) {
		t.Fatalf("got %s", m.Payload)
	}
	sub.Quiet(t, 300*time.Millisecond)
}

// A slow Accept must not stall paho: our publishes still get their PUBACKs
// and the keepalive still sees its PINGRESPs, so the connection stays up.
func TestSlowAcceptKeepsConnection(t *testing.T) {
	b := testenv.Mosquitto(t)
	release := make(chan struct{})
	in := newFakeInbound()
	in.accept = func(int, bridge.Event) error {
		select {
		case <-release:
		case <-time.After(wait):
		}
		return nil
	}
	a, _ := startAdapter(t, b, in, setup{tweak: func(a *Adapter) {
		a.timeouts.keepAlive = time.Second
		a.timeouts.pingTimeout = time.Second
	}})
	sub := b.Subscribe(t, room+"/out/#", 1)
	dev := b.Client(t, "")
	testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, "slow")
	eventually(t, "Accept to start", func() bool { return in.Calls() == 1 })
	// Had the first message blocked paho's dispatcher, these would fill
	// the three hand-offs between it and the connection reader and then
	// block the reader, and with it every PUBACK and PINGRESP.
	next := []string{"next1", "next2", "next3", "next4"}
	for _, text := range next {
		testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, text)
	}

	msg := &bridge.Message{Header: bridge.Header{ID: "E1", Origin: bridge.Origin{Network: "libera", Room: "#x"},
		Sender: bridge.Sender{Network: "libera", ID: "bob"}, Time: time.Now()}, Text: "while blocked"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := a.Send(ctx, &bridge.Delivery{Room: room, Event: msg}); err != nil {
		t.Fatalf("Send during a slow Accept: %v", err)
	}
	sub.Next(t, wait)

	time.Sleep(3 * time.Second) // several keepalive periods plus the ping timeout
	if !a.Connected() {
		t.Fatal("connection dropped during a slow Accept")
	}
	select {
	case <-in.online:
		t.Fatal("adapter reconnected during a slow Accept")
	default:
	}
	close(release)
	for _, want := range append([]string{"slow"}, next...) {
		if m := in.next(t); m.Text != want {
			t.Fatalf("got %q, want %q", m.Text, want)
		}
	}
	eventually(t, "acks", func() bool { return a.acked.Load() == 5 })
}

func TestNoBroker(t *testing.T) {
	port := testenv.FreePort(t)
	a, _ := newAdapter(t, fmt.Sprintf("tcp://127.0.0.1:%d", port), setup{clientID: "sb-none"})
	in := newFakeInbound()
	if err := a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.Join(ctx, room); err != nil {
		t.Fatalf("Join while disconnected: %v", err)
	}
	msg := &bridge.Message{Header: bridge.Header{ID: "E1"}, Text: "x"}
	if _, err := a.Send(ctx, &bridge.Delivery{Room: room, Event: msg}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send: %v, want ErrNotConnected", err)
	}
	time.Sleep(300 * time.Millisecond) // let the connect loop fail a few times
	start := time.Now()
	stop(t, a)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if a.Connected() {
		t.Error("Connected() without a broker")
	}
}

func TestNew(t *testing.T) {
	if !slices.Contains(adapters.Types(), "mqtt") {
		t.Fatalf("mqtt not registered: %v", adapters.Types())
	}
	ad, err := New("home", &config.Network{Type: "mqtt", Section: &Config{Broker: "tcp://127.0.0.1:1883"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	if a.clientID != "switchboard-home" || a.maxPayload != 65536 || a.Network() != "home" {
		t.Errorf("defaults: client id %q, max payload %d, network %q", a.clientID, a.maxPayload, a.Network())
	}
	for _, m := range []*Config{
		nil,
		{},
		{Broker: "http://127.0.0.1:1883"},
		{Broker: "tcp://"},
		{Broker: "tcp://user:hunter2@[::1"},
		{Broker: "tcp://127.0.0.1:1883", MaxPayload: -1},
	} {
		_, err := New("home", &config.Network{Type: "mqtt", Section: m}, nil)
		if err == nil {
			t.Errorf("New(%+v): no error", m)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
	ctx := context.Background()
	long := &bridge.Message{Header: bridge.Header{ID: "E1", Sender: bridge.Sender{ID: strings.Repeat("x", 70000)}}, Text: "x"}
	if _, err := a.Send(ctx, &bridge.Delivery{Room: room, Event: long}); !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("Send with a 70 kB topic: %v, want a permanent error", err)
	}
	if err := a.Join(ctx, "bad/+"); err == nil {
		t.Error("Join of a wildcard room: no error")
	}
	if err := a.Stop(ctx); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
}

// A connection that drops while Accept is busy takes the unacknowledged
// messages with it; the broker resends them on the next connection. Those
// queued from the dead connection are skipped rather than accepted out of
// order and then again.
func TestReconnectDuringAccept(t *testing.T) {
	b := testenv.Mosquitto(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	in := newFakeInbound()
	in.accept = func(call int, ev bridge.Event) error {
		mu.Lock()
		seen = append(seen, ev.(*bridge.Message).Text)
		mu.Unlock()
		if call == 1 {
			<-release
		}
		return nil
	}
	a, _ := startAdapter(t, b, in, setup{})
	dev := b.Client(t, "")
	testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, "m1")
	testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, "m2")
	eventually(t, "m1 in Accept and m2 queued", func() bool {
		a.qmu.Lock()
		defer a.qmu.Unlock()
		return in.Calls() == 1 && len(a.queue) == 1
	})

	b.Restart()
	in.waitOnline(t)
	close(release)
	for range 3 {
		in.next(t)
	}
	in.quiet(t, 300*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	// m1's ack died with its connection, so m1 comes twice; a device that
	// sets "id" has the store drop the copy.
	if want := []string{"m1", "m1", "m2"}; !slices.Equal(seen, want) {
		t.Errorf("Accept saw %q, want %q", seen, want)
	}
}

// QoS 0 is not flow-controlled by the broker, so while Accept is stuck the
// queue would grow without bound; past a limit QoS 0 messages are dropped.
func TestQoS0Overflow(t *testing.T) {
	b := testenv.Mosquitto(t)
	release := make(chan struct{})
	in := newFakeInbound()
	in.accept = func(call int, _ bridge.Event) error {
		if call == 1 {
			<-release
		}
		return nil
	}
	a, _ := startAdapter(t, b, in, setup{tweak: func(a *Adapter) { a.maxQoS0 = 5 }})
	dev := b.Client(t, "")
	testenv.MQTTPublish(t, dev, room+"/in/dev1", 0, false, "first")
	eventually(t, "Accept to start", func() bool { return in.Calls() == 1 })
	for i := range 7 {
		testenv.MQTTPublish(t, dev, room+"/in/dev1", 0, false, fmt.Sprint(i))
	}
	eventually(t, "overflow", func() bool { return a.Dropped()[DropOverflow] == 2 })
	close(release)
	for _, want := range []string{"first", "0", "1", "2", "3", "4"} {
		if m := in.next(t); m.Text != want {
			t.Fatalf("got %q, want %q", m.Text, want)
		}
	}
	in.quiet(t, 200*time.Millisecond)
}
