package xmpp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// hostileText is what a user may type that must stay text.
const hostileText = `<b>&amp;</b> ]]>`

// modes are the two ways the adapter runs: a component with puppets, and
// a client account relaying.
var modes = []struct {
	name string
	s    setup
}{
	{"component", setup{}},
	{"relay", setup{mode: "relay", nick: "relay"}},
}

// botAddr is the JID users write to to reach Switchboard itself.
func botAddr(srv *testenv.XMPPServer, s setup) string {
	if s.mode == "relay" {
		return "relaybot@" + srv.Domain
	}
	return srv.Component
}

func presenceOf(room, nick, typ string) func(testenv.XMPPStanza) bool {
	return func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.From() == room+"/"+nick && s.Type() == typ
	}
}

// TestLeaveAndRejoin: after Leave the room sees the puppets and the bot
// go, nothing said there reaches the bridge and the bot does not come back
// by itself; a delivery still queued for the room fails for good. After
// Join it is bridged again.
func TestLeaveAndRejoin(t *testing.T) {
	srv := newServer(t)
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			room := newRoomName(srv, "leave")
			a, _ := newTestAdapter(t, srv, mode.s)
			rec := start(t, a, room)
			alice := joinHuman(t, srv, "alice", room, "Alice")
			bob := foreign("libera", "bob", "bob")
			send(t, a, room, message(bob, "hi before"))
			alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.Contains(s.Body(), "hi before") })
			ours := []string{a.cfg.Nick}
			if !a.relay {
				ours = append(ours, "bob (libera)")
			}

			from := alice.c.Len()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if err := a.Leave(ctx, room); err != nil {
				t.Fatal(err)
			}
			for _, nick := range ours {
				if _, err := alice.c.WaitFrom(from, waitFor, presenceOf(room, nick, "unavailable")); err != nil {
					t.Fatalf("%s did not leave: %v", nick, err)
				}
			}
			alice.stanzaIDOf(alice.say("said after leave"))
			// A self-ping round passes: the bot stays out.
			time.Sleep(a.t.ping + time.Second)
			for _, st := range alice.c.Stanzas()[from:] {
				if presenceOf(room, a.cfg.Nick, "")(st) {
					t.Fatalf("the bot came back by itself: %s", st.Raw)
				}
			}
			_, err := a.Send(ctx, &bridge.Delivery{Link: "test", Room: room, Event: message(bob, "queued")})
			if !errors.Is(err, bridge.ErrPermanent) {
				t.Errorf("send to a left room: %v, want a permanent error", err)
			}

			if err := a.Join(ctx, room); err != nil {
				t.Fatal(err)
			}
			waitJoined(t, a, room)
			alice.say("said after rejoin")
			rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "said after rejoin" })
			for _, m := range rec.Messages() {
				if m.Text == "said after leave" {
					t.Error("a message of the left room reached the bridge")
				}
			}
			send(t, a, room, message(bob, "hi again"))
			st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.Contains(s.Body(), "hi again") })
			if st.Nick() != ours[len(ours)-1] {
				t.Errorf("after rejoin, from %q", st.Nick())
			}
		})
	}
}

// TestSendAsBot: Switchboard's own words come from the bot's occupant as
// literal text, and a relayed delivery comes from the bot as "<name>
// text" even where puppets are the rule; neither comes back as an event.
func TestSendAsBot(t *testing.T) {
	srv := newServer(t)
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			room := newRoomName(srv, "asbot")
			a, _ := newTestAdapter(t, srv, mode.s)
			rec := start(t, a, room)
			alice := joinHuman(t, srv, "alice", room, "Alice")
			deliver(t, func(ctx context.Context) (string, error) {
				return "", a.SendAsBot(ctx, room, "", hostileText)
			})
			st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == hostileText })
			if st.Nick() != a.cfg.Nick {
				t.Errorf("bot text from %q, want %q", st.Nick(), a.cfg.Nick)
			}
			if st.Child("", "b") != nil || strings.Contains(st.Raw, "CDATA") {
				t.Errorf("markup got through: %s", st.Raw)
			}

			m := message(foreign("libera", "bob", "Bob"), "relayed hi")
			deliver(t, func(ctx context.Context) (string, error) {
				return a.Send(ctx, &bridge.Delivery{Link: "test", Room: room, Event: m, Relay: true})
			})
			st = alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.Contains(s.Body(), "relayed hi") })
			if st.Body() != "<Bob> relayed hi" || st.Nick() != a.cfg.Nick {
				t.Errorf("relayed %q from %q", st.Body(), st.Nick())
			}
			for _, s := range alice.c.Stanzas() {
				if s.Kind() == "presence" && strings.Contains(s.Nick(), "Bob") {
					t.Errorf("a puppet joined for a relayed delivery: %s", s.Raw)
				}
			}
			alice.say("marker")
			rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "marker" })
			if n := len(rec.Messages()); n != 1 {
				t.Errorf("%d messages reached the bridge, want only the marker: %+v", n, rec.Messages())
			}
		})
	}
}

// TestBotDirect: a chat message to the component's domain (or the relay
// account) is a message to Switchboard itself, which answers privately
// from the same address.
func TestBotDirect(t *testing.T) {
	srv := newServer(t)
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			a, _ := newTestAdapter(t, srv, mode.s)
			rec := start(t, a)
			bot := botAddr(srv, mode.s)
			alice := srv.Client(t, "alice", testUsers["alice"])
			id, err := alice.Chat(jid.MustParse(bot), "!sb status")
			if err != nil {
				t.Fatal(err)
			}
			m := waitEvent(t, rec, func(m *bridge.Message) bool { return m.Text == "!sb status" })
			if !bridge.ToBot(m) || *m.To != (bridge.Sender{Network: "jabber", ID: bot}) {
				t.Errorf("to %+v, want the bot %s", m.To, bot)
			}
			if m.Sender.ID != "alice@localhost" || m.Sender.Name != "alice" || m.Origin != (bridge.Origin{Network: "jabber", RemoteID: id}) {
				t.Errorf("sender %+v origin %+v", m.Sender, m.Origin)
			}

			deliver(t, func(ctx context.Context) (string, error) {
				return "", a.SendAsBot(ctx, "", m.Sender.ID, hostileText)
			})
			st := alice.WaitMessage(waitFor, func(s testenv.XMPPStanza) bool { return s.Body() == hostileText })
			from, err := jid.Parse(st.From())
			if err != nil || from.Bare().String() != bot || st.Type() != "chat" {
				t.Errorf("answer %s, want a chat from %s", st.Raw, bot)
			}
			if n := len(rec.Messages()); n != 1 {
				t.Errorf("%d messages reached the bridge, want 1", n)
			}
		})
	}
}

// TestLeaveDuringJoin: a Leave that overtakes a join ends the join at once
// and leaves the bot out of the room.
func TestLeaveDuringJoin(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "overtaken")
	a, _ := newTestAdapter(t, srv, setup{})
	start(t, a)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	// The room is slow to answer the bot's join.
	answered := make(chan struct{}, 1)
	a.mu.Lock()
	a.testDropPresence = func(st *stanza) bool {
		if st.from.Resourcepart() == a.cfg.Nick && st.typ == "" {
			select {
			case answered <- struct{}{}:
			default:
			}
			return true
		}
		return false
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	joined := make(chan error, 1)
	go func() { joined <- a.Join(ctx, room) }()
	select {
	case <-answered:
	case <-ctx.Done():
		t.Fatal("the bot never joined")
	}
	if err := a.Leave(ctx, room); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	select {
	case err := <-joined:
		if err != nil && !errors.Is(err, errLeft) {
			t.Errorf("join: %v", err)
		}
	case <-time.After(a.t.join / 2):
		t.Fatal("the overtaken join is still waiting")
	}
	t.Logf("join ended %v after the leave", time.Since(began))
	a.mu.Lock()
	a.testDropPresence = nil
	a.mu.Unlock()
	if _, err := alice.c.WaitFor(waitFor, presenceOf(room, a.cfg.Nick, "unavailable")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(a.t.ping + time.Second)
	last := ""
	for _, st := range alice.c.Stanzas() {
		if presenceOf(room, a.cfg.Nick, "")(st) || presenceOf(room, a.cfg.Nick, "unavailable")(st) {
			last = st.Type()
		}
	}
	if last != "unavailable" {
		t.Errorf("the bot's last presence in the room is %q", last)
	}
}
