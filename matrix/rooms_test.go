package matrix

import (
	"context"
	"fmt"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// A link naming a portal alias gets its room when a Matrix user first
// joins the alias.
func TestPortalAlias(t *testing.T) {
	s := newServer(t)
	alias := "#sb_lobby:" + s.Domain
	_, rec := startAdapter(t, s, alias)
	alice := s.Client(t, "alice")
	rid := alice.Join(alias)
	if v, ok, _ := s.state.Get(t.Context(), "portal:"+alias); !ok || v != string(rid) {
		t.Errorf("state portal = %q %v, want %s", v, ok, rid)
	}
	// The bot is in it and bridges it under the configured address.
	for i := 0; ; i++ {
		text := fmt.Sprintf("in the portal %d", i)
		alice.Text(rid, text)
		if m := rec.WaitMessageFor(t.Context(), waitFor/10, func(m *bridge.Message) bool { return m.Text == text }); m != nil {
			if m.Origin.Room != alias {
				t.Errorf("origin room %q, want %q", m.Origin.Room, alias)
			}
			break
		}
		if i == 9 {
			t.Fatal("nothing bridged from the portal room")
		}
	}
	// Joining again finds the same room.
	bob := s.Client(t, "bob")
	if again := bob.Join(alias); again != rid {
		t.Errorf("second join: %s, want %s", again, rid)
	}
}

func TestDirectMessages(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	_, a, rec := roomWithBot(t, s, alice)
	carol := foreign("carol", "Carol")

	// Outbound: carol writes to alice; her ghost opens a DM room.
	m := &bridge.Message{Header: header(carol), Text: "psst, alice"}
	m.To = &bridge.Sender{Network: "matrix", ID: string(alice.UserID)}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Link: bridge.DirectLink, Event: m})
	})
	ctx, cancel := contextWithTimeout(waitFor)
	defer cancel()
	dm, err := alice.WaitInvite(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.Join(string(dm))
	got := waitEvent(t, alice, "carol's direct message", bodyIs(dm, "psst, alice"))
	ghost := s.UserID("sb_elsewhere_carol")
	if got.Sender != ghost {
		t.Errorf("from %s, want %s", got.Sender, ghost)
	}
	// A second one uses the same room.
	m2 := &bridge.Message{Header: header(carol), Text: "again"}
	m2.To = m.To
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Link: bridge.DirectLink, Event: m2})
	})
	waitEvent(t, alice, "the second direct message", bodyIs(dm, "again"))

	// Inbound: alice answers in that room: a direct message to carol.
	alice.Text(dm, "hi carol")
	in := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "hi carol" })
	if in.To == nil || in.To.Network != "elsewhere" || in.To.ID != "carol" || in.Sender.ID != string(alice.UserID) {
		t.Errorf("inbound direct message: to %+v from %+v", in.To, in.Sender)
	}

	// Inbound, a room alice opens herself: bob invites the ghost.
	bob := s.Client(t, "bob")
	cctx, ccancel := contextWithTimeout(waitFor)
	defer ccancel()
	resp, err := bob.CreateRoom(cctx, &mautrixCreate{Preset: "trusted_private_chat", Invite: []id.UserID{ghost}, IsDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, bob, "the ghost joining bob's DM", func(e *event.Event) bool {
		return e.RoomID == resp.RoomID && e.Type == event.StateMember && e.StateKey != nil && *e.StateKey == string(ghost) && e.Content.AsMember().Membership == event.MembershipJoin
	})
	bob.Text(resp.RoomID, "hello carol, bob here")
	in2 := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "hello carol, bob here" })
	if in2.To == nil || in2.To.ID != "carol" {
		t.Errorf("bob's direct message to %+v", in2.To)
	}
}

// Dendrite restarts in the middle of a stream of messages; the sends are
// retried as the router's outbox would, and every message arrives once,
// in order.
func TestHomeserverRestart(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	const n = 15
	for i := range n {
		if i == 6 {
			// Dendrite's JetStream is in memory: what its sync API has not
			// taken in yet would be lost, so let it catch up first.
			waitEvent(t, alice, "message 5", bodyIs(rid, "stream 05"))
			s.Restart(t)
		}
		m := &bridge.Message{Header: header(foreign([]string{"x", "y"}[i%2], "Sender")), Text: fmt.Sprintf("stream %02d", i)}
		deliver(t, func(ctx context.Context) (string, error) {
			return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
		})
	}
	waitEvent(t, alice, "the last message", bodyIs(rid, fmt.Sprintf("stream %02d", n-1)))
	var got []string
	for _, e := range alice.Events() {
		if e.RoomID == rid && e.Type == event.EventMessage {
			if b := e.Content.AsMessage().Body; len(b) > 7 && b[:7] == "stream " {
				got = append(got, b)
			}
		}
	}
	if len(got) != n {
		t.Fatalf("alice saw %d messages, want %d: %q", len(got), n, got)
	}
	for i, b := range got {
		if want := fmt.Sprintf("stream %02d", i); b != want {
			t.Fatalf("message %d = %q, want %q", i, b, want)
		}
	}
}
