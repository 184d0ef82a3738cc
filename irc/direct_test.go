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

// direct is a direct message from a foreign sender to an IRC user; it is
// delivered with no room.
func direct(network, id, name, to, text string) *bridge.Message {
	m := message(network, id, name, text)
	m.To = &bridge.Sender{Network: "libera", ID: to}
	return m
}

// One server, one adapter and one IRC user for every case: each
// connection costs a registration, about a second.
func TestDirectMessages(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")
	const puppetNick = "sensor-1[devices]"
	sensor := bridge.Sender{Network: "devices", ID: "sensor-1", Name: "sensor-1"}
	isPrivate := func(l testenv.IRCLine) bool { return strings.EqualFold(l.Target(), "alice") }

	t.Run("outbound through the puppet", func(t *testing.T) {
		id := a.send(t, direct("devices", "sensor-1", "sensor-1", "alice", "psst, alice"), "")
		l := alice.WaitText(waitFor, "alice", puppetNick, "psst, alice")
		if _, msgid := l.GetTag("msgid"); id == "" || id != msgid {
			t.Errorf("remote id %q, alice saw msgid %q", id, msgid)
		}
		a.mu.Lock()
		p := a.puppets[puppetKey(sensor)]
		a.mu.Unlock()
		if p == nil || p.k.channelCount() != 0 {
			t.Fatal("no puppet, or it joined a channel for a private message")
		}
		em := direct("devices", "sensor-1", "sensor-1", "ALICE", "blinks")
		em.Emote = true
		a.send(t, em, "")
		alice.WaitText(waitFor, "alice", puppetNick, "\x01ACTION blinks\x01")
		no := direct("devices", "sensor-1", "sensor-1", "alice", "battery low")
		no.Notice = true
		a.send(t, no, "")
		if l := alice.WaitText(waitFor, "alice", puppetNick, "battery low"); l.Command != "NOTICE" {
			t.Errorf("notice sent as %s", l.Command)
		}
	})

	t.Run("long and hostile text", func(t *testing.T) {
		from := alice.Len()
		long := strings.Repeat("lorem ipsum dolor 日本語 ", 60)
		long = strings.TrimSpace(long)
		a.send(t, direct("devices", "sensor-1", "sensor-1", "alice", long), "")
		var got []string
		for len(strings.Join(got, " ")) < len(long) {
			i, l, err := alice.WaitIndex(from, waitFor, func(l testenv.IRCLine) bool {
				return l.Command == "PRIVMSG" && isPrivate(l) && strings.EqualFold(l.Nick(), puppetNick)
			})
			if err != nil {
				t.Fatalf("after %d lines: %v", len(got), err)
			}
			from = i + 1
			if n := len(body(l.Raw)) + 2; n > 512 {
				t.Errorf("line of %d bytes", n)
			}
			got = append(got, l.Text())
		}
		if len(got) < 3 || strings.Join(got, " ") != long {
			t.Errorf("%d lines reassemble to %q", len(got), strings.Join(got, " "))
		}

		mark := alice.Len()
		a.send(t, direct("devices", "sensor-1", "sensor-1", "alice",
			"hello\r\nQUIT :x\x00 world\nPRIVMSG #lobby :\x01VERSION\x01\rNICK y"), "")
		alice.WaitText(waitFor, "alice", puppetNick, "NICK y")
		var lines []string
		for _, l := range alice.Lines()[mark:] {
			if !strings.EqualFold(l.Nick(), puppetNick) {
				continue
			}
			if l.Command != "PRIVMSG" || !isPrivate(l) {
				t.Errorf("puppet did more than talk to alice: %q", l.Raw)
			}
			lines = append(lines, l.Text())
		}
		want := []string{"hello", "QUIT :x world", "PRIVMSG #lobby :VERSION", "NICK y"}
		if strings.Join(lines, "|") != strings.Join(want, "|") {
			t.Errorf("lines %q, want %q", lines, want)
		}
		if a.puppetCount() != 1 {
			t.Errorf("%d puppets", a.puppetCount())
		}
		for _, to := range []string{"#lobby", "alice,bridge", "alice bridge", "alice\r\nQUIT", "", "$*", "@#lobby"} {
			_, err := a.Send(context.Background(), delivery(direct("devices", "sensor-1", "sensor-1", to, "x"), ""))
			if !errors.Is(err, bridge.ErrPermanent) {
				t.Errorf("to %q: %v, want a permanent error", to, err)
			}
		}
		m := direct("devices", "sensor-1", "sensor-1", "alice", "x")
		m.To.Network = "other"
		if _, err := a.Send(context.Background(), delivery(m, "")); !errors.Is(err, bridge.ErrPermanent) {
			t.Errorf("to another network: %v, want a permanent error", err)
		}
	})

	t.Run("relayed", func(t *testing.T) {
		a.mode = "relay"
		defer func() { a.mode = "puppet" }()
		id := a.send(t, direct("matrix", "x\r\nQUIT", "x\r\nQUIT :y", "alice", "a\rb"), "")
		l := alice.WaitText(waitFor, "alice", "bridge", "<x QUIT :y> a")
		if _, msgid := l.GetTag("msgid"); id != msgid {
			t.Errorf("remote id %q, alice saw msgid %q", id, msgid)
		}
		alice.WaitText(waitFor, "alice", "bridge", "<x QUIT :y> b")
		if !a.bot.isUp() {
			t.Error("bot disconnected")
		}
		// At the puppet limit the bot relays in puppet mode too.
		a.mode = "puppet"
		a.maxPuppets = 1
		defer func() { a.maxPuppets = 50 }()
		a.send(t, direct("devices", "sensor-2", "sensor-2", "alice", "no room for me"), "")
		alice.WaitText(waitFor, "alice", "bridge", "<sensor-2> no room for me")
	})

	// Retrying would deliver to whoever takes the nick next.
	t.Run("to a nick that is not online", func(t *testing.T) {
		for _, mode := range []string{"puppet", "relay"} {
			a.mode = mode
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			_, err := a.Send(ctx, delivery(direct("devices", "sensor-1", "sensor-1", "nobody-here", "hello?"), ""))
			cancel()
			if !errors.Is(err, bridge.ErrPermanent) || !strings.Contains(err.Error(), "nobody-here is not online") {
				t.Errorf("%s: %v, want a permanent error saying nobody-here is not online", mode, err)
			}
		}
		a.mode = "puppet"
		// The connections are fine afterwards.
		a.send(t, direct("devices", "sensor-1", "sensor-1", "alice", "still here"), "")
		alice.WaitText(waitFor, "alice", puppetNick, "still here")
	})

	t.Run("to an account", func(t *testing.T) {
		// No services here to log alice in: tell the adapter she is.
		a.mu.Lock()
		a.roomLocked("#lobby").members["alice"].account = "alice-account"
		a.mu.Unlock()
		a.send(t, direct("devices", "sensor-1", "sensor-1", "alice-account", "by account"), "")
		alice.WaitText(waitFor, "alice", puppetNick, "by account")
	})

	t.Run("inbound to the puppet", func(t *testing.T) {
		a.mu.Lock()
		p := a.puppets[puppetKey(sensor)]
		before := p.last
		a.mu.Unlock()
		a.rec.failures.Store(1) // accepted on the retry
		alice.Say(puppetNick, "hi \x02back\x02")
		m := a.rec.wait(t, "alice's private message", func(ev bridge.Event) bool {
			return textOfEvent(ev) == "hi back"
		}).(*bridge.Message)
		if m.To == nil || *m.To != sensor {
			t.Errorf("to %+v, want %+v", m.To, sensor)
		}
		// Known by the account the bot saw, as in her channel messages.
		// An account the server reported is one the network vouches for.
		if s := m.Sender; s.Network != "libera" || s.ID != "alice-account" || s.Name != "alice" || !strings.HasPrefix(s.Mask, "alice!") || !s.Authenticated {
			t.Errorf("sender %+v", m.Sender)
		}
		if m.Origin.Network != "libera" || m.Origin.Room != "" || m.Origin.RemoteID == "" {
			t.Errorf("origin %+v: want the msgid and no room", m.Origin)
		}
		if m.HTML != "hi <b>back</b>" || m.Emote || m.Notice {
			t.Errorf("message %+v", m)
		}

		// Talking to the puppet keeps it from being idle.
		a.mu.Lock()
		last := p.last
		a.mu.Unlock()
		if !last.After(before) {
			t.Errorf("a private message did not count as activity")
		}
		a.reapPuppets(last.Add(a.idle - time.Millisecond))
		if a.puppetCount() != 1 {
			t.Fatal("puppet reaped while its conversation is active")
		}

		alice.Action(puppetNick, "waves")
		alice.Notice(puppetNick, "fyi")
		alice.Say(puppetNick, "\x01VERSION\x01")
		alice.Say("bridge", "for the bot")
		// The puppet speaks in #lobby too: what alice says there is seen
		// by both connections, and must be reported once.
		a.send(t, message("devices", "sensor-1", "sensor-1", "in the channel"), "#lobby")
		alice.WaitText(waitFor, "#lobby", puppetNick, "in the channel")
		alice.Say("#lobby", "marker")
		alice.Say(puppetNick, "after the marker")
		// Each connection's lines arrive in order, the two connections'
		// in any: wait for the last of each.
		a.rec.wait(t, "the marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
		a.rec.wait(t, "the last private message", func(ev bridge.Event) bool {
			return textOfEvent(ev) == "after the marker"
		})
		var emote, notice bool
		markers := 0
		for _, ev := range a.rec.all() {
			m, _ := ev.(*bridge.Message)
			switch {
			case m == nil:
			case m.Text == "marker":
				markers++
				if m.To != nil {
					t.Errorf("channel line made direct: %+v", m)
				}
			case m.Text == "waves":
				emote = m.Emote && m.To != nil
			case m.Text == "fyi":
				notice = m.Notice && m.To != nil
			case m.Text == "for the bot":
				// Switchboard's own, not a puppet's.
				if !bridge.ToBot(m) {
					t.Errorf("message to the bot not addressed to it: %+v", m)
				}
			case strings.Contains(m.Text, "VERSION"):
				t.Errorf("bridged %+v", m)
			case m.Sender.Network != "libera" || m.Sender.Name != "alice":
				t.Errorf("event from %+v", m.Sender)
			}
		}
		if !emote || !notice || markers != 1 {
			t.Errorf("emote %v, notice %v, %d markers", emote, notice, markers)
		}
	})

	t.Run("channel-less, renamed, idle", func(t *testing.T) {
		// Leaving its last channel does not end a private conversation;
		// only being idle does.
		ctx := context.Background()
		h := bridge.Header{ID: bridge.NewEventID(), Sender: sensor, Time: time.Now()}
		if err := a.SendMembership(ctx, delivery(&bridge.Leave{Header: h}, "#lobby")); err != nil {
			t.Fatal(err)
		}
		if a.puppetCount() != 1 {
			t.Fatal("puppet retired with its last channel")
		}
		// Renamed where the bot cannot see it, it is still known as ours.
		renamed := sensor
		renamed.Name = "sensor-one"
		h.Sender = renamed
		if err := a.SendMembership(ctx, delivery(&bridge.Rename{Header: h, Previous: sensor.Name}, "#lobby")); err != nil {
			t.Fatal(err)
		}
		const newNick = "sensor-one[devices]"
		for deadline := time.Now().Add(waitFor); !a.isOwn(newNick); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("renamed puppet not taken for ours")
			}
		}
		a.send(t, message("devices", "sensor-1", "sensor-one", "back in"), "#lobby")
		alice.WaitText(waitFor, "#lobby", newNick, "back in")
		alice.Say("#lobby", "second marker")
		a.rec.wait(t, "second marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "second marker" })

		a.mu.Lock()
		p := a.puppets[puppetKey(sensor)]
		last := p.last
		a.mu.Unlock()
		a.reapPuppets(last.Add(a.idle))
		select {
		case <-p.k.finished:
		case <-time.After(waitFor):
			t.Fatal("idle puppet still connected")
		}
		// Its nick is gone: the server says so, and nothing is bridged.
		mark := alice.Len()
		alice.Say(newNick, "anyone there?")
		if _, err := alice.WaitFrom(mark, waitFor, func(l testenv.IRCLine) bool { return l.Command == "401" }); err != nil {
			t.Errorf("no 401 for the old puppet nick: %v", err)
		}
		alice.Say("#lobby", "third marker")
		a.rec.wait(t, "third marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "third marker" })
		for _, ev := range a.rec.all() {
			if ev.Head().Sender.Name != "alice" || textOfEvent(ev) == "anyone there?" {
				t.Errorf("bridged %s %+v", ev.Kind(), ev)
			}
		}
	})
}
