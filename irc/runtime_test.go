package irc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// partOf matches nick's PART of channel.
func partOf(nick, channel string) func(testenv.IRCLine) bool {
	return func(l testenv.IRCLine) bool {
		return l.Command == "PART" && strings.EqualFold(l.Nick(), nick) && strings.EqualFold(l.Target(), channel)
	}
}

func joinOf(nick, channel string) func(testenv.IRCLine) bool {
	return func(l testenv.IRCLine) bool {
		return l.Command == "JOIN" && strings.EqualFold(l.Nick(), nick) && strings.EqualFold(l.Target(), channel)
	}
}

// TestLeave: the bot and the puppets part a left channel, what is said
// there is no longer reported, a reconnect does not join it again, and
// joining it again brings everything back.
func TestLeave(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	alice.Join("#other")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby", "#other")
	ctx := context.Background()

	// s1 speaks in #lobby only, s2 in both.
	a.send(t, message("d", "s1", "s1", "one"), "#lobby")
	a.send(t, message("d", "s2", "s2", "two"), "#lobby")
	a.send(t, message("d", "s2", "s2", "two elsewhere"), "#other")
	alice.WaitText(waitFor, "#other", "s2[d]", "two elsewhere")
	a.mu.Lock()
	s1 := a.puppets[puppetKey(bridge.Sender{Network: "d", ID: "s1"})]
	a.mu.Unlock()

	mark := alice.Len()
	if err := a.Leave(ctx, "#LOBBY"); err != nil { // the server's casemapping applies
		t.Fatal(err)
	}
	for _, nick := range []string{"bridge", "s1[d]", "s2[d]"} {
		if _, err := alice.WaitFrom(mark, waitFor, partOf(nick, "#lobby")); err != nil {
			t.Errorf("%s did not part #lobby: %v", nick, err)
		}
	}
	// s1 had nothing left to do; s2 still speaks in #other.
	select {
	case <-s1.k.finished:
	case <-time.After(waitFor):
		t.Error("a puppet in no channel any more is still connected")
	}
	if !a.bot.isUp() || a.puppetCount() != 1 {
		t.Errorf("bot up %v, %d puppets, want 1", a.bot.isUp(), a.puppetCount())
	}

	// Lines of one connection arrive in order: the marker in #other comes
	// after the line in #lobby, which must not be reported.
	bob := srv.Client(t, "bob")
	bob.Join("#lobby")
	bob.Say("#lobby", "after leave")
	bob.Join("#other")
	bob.Say("#other", "marker")
	a.rec.wait(t, "the marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	for _, ev := range a.rec.all() {
		if ev.Head().Origin.Room == "#lobby" && ev.Head().Sender.Name == "bob" {
			t.Errorf("event from the left channel: %s %+v", ev.Kind(), ev)
		}
	}

	// A reconnect joins #other again, not #lobby.
	online := a.rec.onlineCount()
	srv.Restart()
	a.rec.until(t, "online again", func() bool { return a.rec.onlineCount() > online })
	if !a.bot.inChannel("#other") || a.bot.inChannel("#lobby") {
		t.Errorf("after reconnect: in #other %v (want true), in #lobby %v (want false)", a.bot.inChannel("#other"), a.bot.inChannel("#lobby"))
	}

	carol := srv.Client(t, "carol")
	carol.Join("#lobby")
	mark = carol.Len()
	if err := a.Join(ctx, "#lobby"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.WaitFrom(mark, waitFor, joinOf("bridge", "#lobby")); err != nil {
		t.Fatal("bot did not join again:", err)
	}
	carol.Say("#lobby", "back again")
	a.rec.wait(t, "a line after joining again", func(ev bridge.Event) bool {
		return textOfEvent(ev) == "back again" && ev.Head().Origin.Room == "#lobby"
	})
	a.send(t, message("d", "s1", "s1", "puppet back"), "#lobby")
	carol.WaitText(waitFor, "#lobby", "s1[d]", "puppet back")

	if err := a.Leave(ctx, "no-prefix"); err == nil {
		t.Error("left an invalid channel")
	}
}

// TestSendAsBot: bot notices to a channel and to a user, one line per
// line of text, never anything but NOTICE on the wire.
func TestSendAsBot(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")
	ctx := context.Background()

	mark := alice.Len()
	if err := a.SendAsBot(ctx, "#lobby", "", "\r\nQUIT :x\x00"); err != nil {
		t.Fatal(err)
	}
	if err := a.SendAsBot(ctx, "", "alice", "status: ok\nlinks: 2\r\n\r\nNICK y"); err != nil {
		t.Fatal(err)
	}
	alice.WaitText(waitFor, "alice", "bridge", "NICK y")
	var got []string
	for _, l := range alice.Lines()[mark:] {
		// The bot's JOIN may reach alice after it reported online.
		if !strings.EqualFold(l.Nick(), "bridge") || l.Command == "JOIN" {
			continue
		}
		if l.Command != "NOTICE" || strings.ContainsAny(l.Raw, "\x00") {
			t.Errorf("bot sent %q", l.Raw)
		}
		got = append(got, l.Target()+" "+l.Text())
	}
	want := []string{"#lobby QUIT :x", "alice status: ok", "alice links: 2", "alice NICK y"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("alice saw %q, want %q", got, want)
	}
	if !a.bot.isUp() || !a.bot.inChannel("#lobby") {
		t.Error("bot disconnected or out of the channel")
	}
	// Nothing the bot says is reported.
	alice.Say("#lobby", "marker")
	a.rec.wait(t, "marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	for _, ev := range a.rec.all() {
		if ev.Head().Sender.Name != "alice" {
			t.Errorf("event %+v", ev)
		}
	}

	for _, c := range [][2]string{{"", ""}, {"no-prefix", ""}, {"", "alice,bob"}, {"", "alice\r\nQUIT"}, {"", "#lobby"}} {
		if err := a.SendAsBot(ctx, c[0], c[1], "x"); !errors.Is(err, bridge.ErrPermanent) {
			t.Errorf("room %q user %q: %v, want a permanent error", c[0], c[1], err)
		}
	}
}

// TestRelayDelivery: a delivery for a relayed room goes through the bot
// even in puppet mode.
func TestRelayDelivery(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")
	ctx := context.Background()

	d := delivery(message("d", "s1", "sensor one", "relayed"), "#lobby")
	d.Relay = true
	if _, err := a.Send(ctx, d); err != nil {
		t.Fatal(err)
	}
	alice.WaitText(waitFor, "#lobby", "bridge", "<sensor one> relayed")
	em := message("d", "s1", "sensor one", "waves")
	em.Emote = true
	d = delivery(em, "#lobby")
	d.Relay = true
	if _, err := a.Send(ctx, d); err != nil {
		t.Fatal(err)
	}
	alice.WaitText(waitFor, "#lobby", "bridge", "* sensor one waves")
	// Relay mode brings no puppet into the room.
	h := bridge.Header{ID: bridge.NewEventID(), Sender: em.Sender}
	d = delivery(&bridge.Join{Header: h}, "#lobby")
	d.Relay = true
	if err := a.SendMembership(ctx, d); err != nil {
		t.Fatal(err)
	}
	if a.puppetCount() != 0 {
		t.Fatalf("%d puppets for a relayed room", a.puppetCount())
	}
	a.send(t, message("d", "s1", "sensor one", "puppeted"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "sensor_one[d]", "puppeted")
}

// TestMessageToBot: a private message to the bot is a direct message to
// Switchboard itself; every inbound event carries the sender's mask.
func TestMessageToBot(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "relay"), nil, "#lobby")

	alice.Say("#lobby", "in the channel")
	alice.Notice("bridge", "a notice is no command")
	alice.Say("BRIDGE", "!sb status")
	m := a.rec.wait(t, "the command", func(ev bridge.Event) bool { return textOfEvent(ev) == "!sb status" }).(*bridge.Message)
	if !bridge.ToBot(m) || *m.To != (bridge.Sender{Network: "libera", ID: "bridge"}) {
		t.Errorf("to %+v: want the bot", m.To)
	}
	if m.Origin.Network != "libera" || m.Origin.Room != "" || m.Sender.ID != "alice" || m.Sender.Network != "libera" {
		t.Errorf("header %+v", m.Header)
	}
	checkMask := func(ev bridge.Event, nick string) {
		t.Helper()
		s := ev.Head().Sender
		if !strings.HasPrefix(s.Mask, nick+"!") || !strings.Contains(s.Mask, "@") {
			t.Errorf("%s from %s: mask %q", ev.Kind(), nick, s.Mask)
		}
	}
	checkMask(m, "alice")
	for _, ev := range a.rec.all() {
		switch textOfEvent(ev) {
		case "in the channel":
			checkMask(ev, "alice")
			if bridge.ToBot(ev) || ev.Head().To != nil {
				t.Errorf("channel line made direct: %+v", ev)
			}
		case "a notice is no command":
			t.Errorf("notice to the bot reported: %+v", ev)
		}
	}

	bob := srv.Client(t, "bob")
	bob.Join("#lobby")
	checkMask(a.rec.wait(t, "bob's join", func(ev bridge.Event) bool { return ev.Kind() == bridge.KindJoin }), "bob")
	bob.SetNick("robert")
	checkMask(a.rec.wait(t, "the rename", func(ev bridge.Event) bool { return ev.Kind() == bridge.KindRename }), "robert")
	alice.Send("KICK", "#lobby", "robert", "out")
	kick := a.rec.wait(t, "the kick", func(ev bridge.Event) bool { return ev.Kind() == bridge.KindLeave })
	if s := kick.Head().Sender; s.Name != "robert" || s.Mask != "" {
		t.Errorf("kick: sender %+v: want robert with no mask (the line is alice's)", s)
	}
}
