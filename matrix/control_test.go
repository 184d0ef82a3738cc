package matrix

import (
	"context"
	"errors"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// hostileText is what a user may type that must stay text.
const hostileText = `<b>&amp;</b> ]]>`

func membership(rid id.RoomID, u id.UserID, m event.Membership) func(*event.Event) bool {
	return func(e *event.Event) bool {
		return e.RoomID == rid && e.Type == event.StateMember && e.StateKey != nil && *e.StateKey == string(u) && e.Content.AsMember().Membership == m
	}
}

// waitFrom waits for an event at index from or later.
func waitFrom(t *testing.T, c *testenv.MatrixClient, from int, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	evt, _, err := c.WaitFor(ctx, from, match)
	if err != nil {
		t.Fatalf("never saw %s: %v", what, err)
	}
	return evt
}

// After Leave the room sees the ghost and the bot go, and what happens
// there no longer reaches the bridge, even pushed by the homeserver; a
// delivery still queued for it fails for good. After Join it is bridged
// again.
func TestLeaveAndRejoin(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, a, rec := roomWithBot(t, s, alice)
	bob := foreign("bob", "Bob")
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(bob), Text: "hi before"}})
	})
	ghost := s.UserID("sb_elsewhere_bob")
	waitEvent(t, alice, "bob's ghost speaking", func(e *event.Event) bool { return bodyIs(rid, "hi before")(e) && e.Sender == ghost })

	from := len(alice.Events())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.Leave(ctx, string(rid)); err != nil {
		t.Fatal(err)
	}
	waitFrom(t, alice, from, "the ghost leaving", membership(rid, ghost, event.MembershipLeave))
	waitFrom(t, alice, from, "the bot leaving", membership(rid, a.botID, event.MembershipLeave))
	alice.Text(rid, "said after leave")
	if code := putTxn(t, s, s.cfg.HSToken, "after-leave", textEvent(rid, alice.UserID, "$afterleave", "pushed after leave")); code != 200 {
		t.Errorf("transaction answered %d", code)
	}
	_, err := a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(bob), Text: "queued"}})
	if !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("send to a left room: %v, want a permanent error", err)
	}

	from = len(alice.Events())
	if err := a.Join(ctx, string(rid)); err != nil {
		t.Fatal(err)
	}
	waitFrom(t, alice, from, "the bot back", membership(rid, a.botID, event.MembershipJoin))
	alice.Text(rid, "said after rejoin")
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "said after rejoin" })
	for _, m := range rec.Messages() {
		if m.Text == "said after leave" || m.Text == "pushed after leave" {
			t.Errorf("%q of the left room reached the bridge", m.Text)
		}
	}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(bob), Text: "hi again"}})
	})
	waitEvent(t, alice, "bob's ghost back", func(e *event.Event) bool { return bodyIs(rid, "hi again")(e) && e.Sender == ghost })
}

// The bot's own words are a notice with the literal text; a relayed
// delivery comes from the bot as "<name> text" and brings no ghost in.
func TestSendAsBot(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, a, rec := roomWithBot(t, s, alice)
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendAsBot(ctx, string(rid), "", hostileText)
	})
	got := waitEvent(t, alice, "the bot's notice", bodyIs(rid, hostileText))
	c := got.Content.AsMessage()
	if got.Sender != a.botID || c.MsgType != event.MsgNotice || c.FormattedBody != "" {
		t.Errorf("from %s, %s, formatted %q", got.Sender, c.MsgType, c.FormattedBody)
	}

	bob := foreign("bob", "Bob")
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(bob), Text: "relayed hi"}, Relay: true})
	})
	got = waitEvent(t, alice, "the relayed message", bodyContains(rid, "relayed hi"))
	if got.Sender != a.botID || got.Content.AsMessage().Body != "<Bob (elsewhere)> relayed hi" {
		t.Errorf("relayed %q from %s", got.Content.AsMessage().Body, got.Sender)
	}
	ghost := s.UserID("sb_elsewhere_bob")
	for _, e := range alice.Events() {
		if e.Sender == ghost || e.StateKey != nil && *e.StateKey == string(ghost) {
			t.Errorf("a ghost acted for a relayed delivery: %s", e.Type.Type)
		}
	}
	alice.Text(rid, "marker")
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "marker" })
	if n := len(rec.Messages()); n != 1 {
		t.Errorf("%d messages reached the bridge, want only the marker", n)
	}
}

// A Matrix user who opens a direct chat with the bot writes to
// Switchboard itself, and the bot answers there; to a user without one,
// the bot opens a direct chat, once.
func TestBotDirectMessages(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	_, a, rec := roomWithBot(t, s, alice)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := alice.CreateRoom(ctx, &mautrixCreate{Preset: "trusted_private_chat", Invite: []id.UserID{a.botID}, IsDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	dm := resp.RoomID
	waitEvent(t, alice, "the bot joining the direct chat", membership(dm, a.botID, event.MembershipJoin))
	alice.Notice(dm, "a notice is not a command")
	alice.Text(dm, "!sb status")
	m := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "!sb status" })
	if !bridge.ToBot(m) || *m.To != (bridge.Sender{Network: "matrix", ID: string(a.botID)}) {
		t.Errorf("to %+v, want the bot", m.To)
	}
	if m.Sender.ID != string(alice.UserID) || m.Origin.Room != "" {
		t.Errorf("sender %+v origin %+v", m.Sender, m.Origin)
	}
	for _, m := range rec.Messages() {
		if m.Notice {
			t.Errorf("a notice reached the bot: %q", m.Text)
		}
	}
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendAsBot(ctx, "", m.Sender.ID, hostileText)
	})
	got := waitEvent(t, alice, "the bot's answer", bodyIs(dm, hostileText))
	if got.Sender != a.botID {
		t.Errorf("answer from %s", got.Sender)
	}

	// bob never wrote to the bot: it opens a direct chat, and keeps it.
	bob := s.Client(t, "bob")
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendAsBot(ctx, "", string(bob.UserID), "first")
	})
	bdm, err := bob.WaitInvite(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob.Join(string(bdm))
	waitEvent(t, bob, "the bot's first message", bodyIs(bdm, "first"))
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendAsBot(ctx, "", string(bob.UserID), "second")
	})
	waitEvent(t, bob, "the bot's second message", bodyIs(bdm, "second"))
	bob.Text(bdm, "thanks")
	in := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "thanks" })
	if !bridge.ToBot(in) || in.Sender.ID != string(bob.UserID) {
		t.Errorf("bob's answer: to %+v from %+v", in.To, in.Sender)
	}
}

// A portal room is left like any other, and found again by a later Join.
func TestLeavePortal(t *testing.T) {
	s := newServer(t)
	alias := "#sb_leaving:" + s.Domain
	a, rec := startAdapter(t, s, alias)
	alice := s.Client(t, "alice")
	rid := alice.Join(alias)
	bob := foreign("bob", "Bob")
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: alias, Event: &bridge.Message{Header: header(bob), Text: "in the portal"}})
	})
	ghost := s.UserID("sb_elsewhere_bob")
	waitEvent(t, alice, "bob's ghost in the portal", func(e *event.Event) bool { return bodyIs(rid, "in the portal")(e) && e.Sender == ghost })

	from := len(alice.Events())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.Leave(ctx, alias); err != nil {
		t.Fatal(err)
	}
	waitFrom(t, alice, from, "the ghost leaving", membership(rid, ghost, event.MembershipLeave))
	waitFrom(t, alice, from, "the bot leaving", membership(rid, a.botID, event.MembershipLeave))

	from = len(alice.Events())
	if err := a.Join(ctx, alias); err != nil {
		t.Fatal(err)
	}
	waitFrom(t, alice, from, "the bot back", membership(rid, a.botID, event.MembershipJoin))
	alice.Text(rid, "portal again")
	m := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "portal again" })
	if m.Origin.Room != alias {
		t.Errorf("origin room %q, want %q", m.Origin.Room, alias)
	}
}
