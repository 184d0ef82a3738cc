package xmpp

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

const waitFor = 20 * time.Second

// testUsers are registered on every test server.
var testUsers = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "mallory": "mallory-pw", "relaybot": "relay-pw", "human": "human-pw"}

func newServer(t *testing.T) *testenv.XMPPServer {
	return testenv.ProsodyWith(t, testenv.XMPPServerConfig{Users: testUsers})
}

var roomSeq atomic.Uint64

// newRoomName is a room no other test uses.
func newRoomName(srv *testenv.XMPPServer, prefix string) string {
	return fmt.Sprintf("%s%d@%s", prefix, roomSeq.Add(1), srv.MUC)
}

type setup struct {
	mode     string // puppet (component) or relay (client account)
	relayVia string // "component" to relay through the component
	nick     string
	max      int
	timing   *timing
}

func netConfig(srv *testenv.XMPPServer, s setup) *config.Network {
	n := &config.Network{Type: "xmpp", Mode: s.mode, Section: &Config{Nick: s.nick, MaxStanza: 256 * 1024}}
	if n.Mode == "" {
		n.Mode = "puppet"
	}
	n.Puppets.Max = s.max
	if s.mode == "relay" && s.relayVia != "component" {
		n.Section.(*Config).Server = srv.C2SAddr
		n.Section.(*Config).JID = "relaybot@" + srv.Domain
		n.Section.(*Config).Password = testUsers["relaybot"]
		n.Section.(*Config).InsecurePlaintext = true
	} else {
		n.Section.(*Config).Server = srv.ComponentAddr
		n.Section.(*Config).Component = &Component{Domain: srv.Component, Secret: srv.ComponentSecret}
	}
	return n
}

// testTiming shortens the timeouts so that failures show quickly.
var testTiming = timing{
	connect:     10 * time.Second,
	write:       10 * time.Second,
	join:        10 * time.Second,
	reflect:     10 * time.Second,
	ping:        2 * time.Second,
	pingTimeout: 5 * time.Second,
	minBackoff:  100 * time.Millisecond,
	maxBackoff:  time.Second,
	rejoin:      500 * time.Millisecond,
}

func newTestAdapter(t testing.TB, srv *testenv.XMPPServer, s setup) (*Adapter, *testenv.Log) {
	t.Helper()
	log := testenv.NewLog(t)
	a, err := New("jabber", netConfig(srv, s), log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	x := a.(*Adapter)
	x.t = testTiming
	if s.timing != nil {
		x.t = *s.timing
	}
	return x, log
}

// start starts an adapter, joins rooms and waits until it is connected.
func start(t testing.TB, a *Adapter, rooms ...string) *adapterstest.Recorder {
	t.Helper()
	rec := adapterstest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
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
	for _, r := range rooms {
		if err := a.Join(ctx, r); err != nil {
			t.Fatalf("join %s: %v", r, err)
		}
	}
	adapterstest.WaitConnected(t, a)
	waitJoined(t, a, rooms...)
	return rec
}

func waitJoined(t testing.TB, a *Adapter, rooms ...string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for _, room := range rooms {
		for {
			a.mu.Lock()
			r := a.rooms[jid.MustParse(room).String()]
			joined := r != nil && r.joined
			a.mu.Unlock()
			if joined {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("bot not in %s after %v", room, waitFor)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func foreign(network, id, name string) bridge.Sender {
	return bridge.Sender{Network: network, ID: id, Name: name}
}

func message(from bridge.Sender, text string) *bridge.Message {
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

// deliver calls fn until it succeeds, as the router's retries would.
func deliver(t testing.TB, fn func(ctx context.Context) (string, error)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	for {
		id, err := fn(ctx)
		if err == nil {
			return id
		}
		if ctx.Err() != nil || errorsIsPermanent(err) {
			t.Fatalf("delivery failed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func send(t testing.TB, a *Adapter, room string, ev bridge.Event) string {
	t.Helper()
	return deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Link: "test", Room: room, Event: ev})
	})
}

func errorsIsPermanent(err error) bool {
	return err != nil && strings.Contains(err.Error(), bridge.ErrPermanent.Error())
}

// human is a person on XMPP in one room.
type human struct {
	t    testing.TB
	c    *testenv.XMPPClient
	room jid.JID
	nick string
}

func joinHuman(t testing.TB, srv *testenv.XMPPServer, user, room, nick string) *human {
	t.Helper()
	c := srv.Client(t, user, testUsers[user])
	r := jid.MustParse(room)
	if err := c.Join(r, nick); err != nil {
		t.Fatal(err)
	}
	return &human{t: t, c: c, room: r, nick: nick}
}

func (h *human) say(body string, extra ...string) string {
	h.t.Helper()
	id, err := h.c.Say(h.room, body, extra...)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// waitMessage waits for a groupchat message in the human's room.
func (h *human) waitMessage(match func(testenv.XMPPStanza) bool) testenv.XMPPStanza {
	h.t.Helper()
	return h.c.WaitMessage(waitFor, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && strings.HasPrefix(s.From(), h.room.String()+"/") && match(s)
	})
}

// ownEcho waits for the room's reflection of the human's message id and
// returns its stanza-id.
func (h *human) stanzaIDOf(id string) string {
	h.t.Helper()
	s := h.waitMessage(func(s testenv.XMPPStanza) bool { return s.ID() == id })
	sid := s.StanzaID(h.room.String())
	if sid == "" {
		h.t.Fatalf("reflection without a stanza-id: %s", s.Raw)
	}
	return sid
}

func waitEvent[T bridge.Event](t testing.TB, rec *adapterstest.Recorder, match func(T) bool) T {
	t.Helper()
	return rec.WaitEvent(t, func(ev bridge.Event) bool {
		e, ok := ev.(T)
		return ok && match(e)
	}).(T)
}

func eventsOf[T bridge.Event](rec *adapterstest.Recorder) []T {
	var out []T
	for _, ev := range rec.Events() {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}
