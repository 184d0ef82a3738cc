package webrtc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func isMessage(text string) func(testenv.WebRTCFrame) bool {
	return func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == text }
}

// TestLeave: the peers of a left room are told and disconnected, nothing
// they say is accepted, the room takes no new peers, and joining it again
// serves it afresh.
func TestLeave(t *testing.T) {
	s := startServer(t, testConfig(), "lobby", "other")
	ctx := context.Background()
	alice := testenv.MustDialWebRTC(t, s.url, "lobby", "", "alice", "alice-1")
	bob := testenv.MustDialWebRTC(t, s.url, "other", "", "bob", "bob-1")

	if err := s.a.Leave(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	alice.Wait(t, wait, "room_closed", func(f testenv.WebRTCFrame) bool { return f.Type == "error" && f.Code == "room_closed" })
	alice.Say("after leave") // still connected for a moment: refused
	bob.Say("marker")
	s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "marker" })
	deadline := time.Now().Add(wait)
	for sessions(s.a) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := sessions(s.a); n != 1 {
		t.Fatalf("%d sessions, want bob's only", n)
	}
	for _, ev := range s.rec.Events() {
		if ev.Head().Origin.Room == "lobby" && ev.Kind() != bridge.KindJoin {
			t.Errorf("event from the left room: %s %+v", ev.Kind(), ev)
		}
	}
	if _, err := testenv.DialWebRTC(t, s.url, "lobby", ""); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("dial a left room: %v, want 404", err)
	}
	m := adapterstest.Message(bridge.Sender{Network: "irc", ID: "carol", Name: "carol"}, "to nobody")
	if _, err := s.a.Send(ctx, &bridge.Delivery{Room: "lobby", Event: m}); !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("send to a left room: %v, want a permanent error", err)
	}

	if err := s.a.Join(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	carol := testenv.MustDialWebRTC(t, s.url, "lobby", "", "carol", "carol-1")
	carol.Say("back")
	s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "back" && m.Origin.Room == "lobby" })
	carol.Wait(t, wait, "the echo", isMessage("back"))
	if err := s.a.Leave(ctx, "nowhere"); err != nil {
		t.Errorf("leaving a room never joined: %v", err)
	}
}

func sessions(a *Adapter) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sessions)
}

// TestSendAsBot: notices from Switchboard reach a room's peers, or one
// peer by its id, and are not events.
func TestSendAsBot(t *testing.T) {
	s := startServer(t, testConfig(), "lobby", "other")
	ctx := context.Background()
	alice := testenv.MustDialWebRTC(t, s.url, "lobby", "", "alice", "alice-1")
	bob := testenv.MustDialWebRTC(t, s.url, "lobby", "", "bob", "bob-1")
	carol := testenv.MustDialWebRTC(t, s.url, "other", "", "carol", "carol-1")

	isNotice := func(text string) func(testenv.WebRTCFrame) bool {
		return func(f testenv.WebRTCFrame) bool { return f.Type == "notice" && f.Text == text }
	}
	if err := s.a.SendAsBot(ctx, "lobby", "", "links: 2\r\nok\x00"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*testenv.WebRTCPeer{alice, bob} {
		f := p.Wait(t, wait, "the notice", isNotice("links: 2\nok"))
		if f.Sender.ID != "switchboard" || f.Sender.Name != "Switchboard" || f.Room != "lobby" || f.ID == "" {
			t.Errorf("notice %s", f.Raw)
		}
	}
	if err := s.a.SendAsBot(ctx, "", "carol-1", "just you"); err != nil {
		t.Fatal(err)
	}
	if f := carol.Wait(t, wait, "the private notice", isNotice("just you")); f.Room != "other" {
		t.Errorf("notice %s", f.Raw)
	}
	// A frame sent after them shows the others got nothing more.
	bob.Say("lobby marker")
	alice.Wait(t, wait, "bob's marker", isMessage("lobby marker"))
	for _, f := range append(alice.Frames(), carol.Frames()...) {
		if f.Type == "notice" && f.Text != "links: 2\nok" && f.Text != "just you" {
			t.Errorf("unexpected notice %s", f.Raw)
		}
	}
	for _, f := range alice.Frames() {
		if f.Text == "just you" {
			t.Errorf("alice got carol's notice")
		}
	}
	for _, f := range carol.Frames() {
		if f.Text == "links: 2\nok" {
			t.Errorf("carol got the lobby's notice")
		}
	}
	s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "lobby marker" })
	for _, m := range s.rec.Messages() {
		if strings.Contains(m.Text, "links") || m.Text == "just you" {
			t.Errorf("a notice became an event: %+v", m)
		}
	}
	if err := s.a.SendAsBot(ctx, "nowhere", "", "x"); !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("to a room not joined: %v, want a permanent error", err)
	}
	if err := s.a.SendAsBot(ctx, "", "nobody", "x"); !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("to no peer: %v, want a permanent error", err)
	}
}
