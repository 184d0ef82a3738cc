package irc

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// tagOf is a line's tag value ("" when absent).
func tagOf(l testenv.IRCLine, name string) string {
	_, v := l.GetTag(name)
	return v
}

// tagmsg matches a TAGMSG from nick with the tag name set to value.
func tagmsg(nick, name, value string) func(testenv.IRCLine) bool {
	return func(l testenv.IRCLine) bool {
		return l.Command == "TAGMSG" && strings.EqualFold(l.Nick(), nick) && l.HasTag(name) && tagOf(l, name) == value
	}
}

func reaction(sender bridge.Sender, key string, remove bool) *bridge.Reaction {
	return &bridge.Reaction{Header: bridge.Header{ID: bridge.NewEventID(), Sender: sender, Time: time.Now()}, Key: key, Remove: remove}
}

func typing(sender bridge.Sender, active bool) *bridge.Typing {
	return &bridge.Typing{Header: bridge.Header{ID: bridge.NewEventID(), Sender: sender, Time: time.Now()}, Active: active}
}

// ircv3Lobby starts InspIRCd, alice (an IRCv3 client) in #lobby, and
// a puppet-mode adapter (tweaked) bridging it.
func ircv3Lobby(t *testing.T, tweak func(*Adapter)) (testAdapter, *testenv.IRCClient) {
	t.Helper()
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	return startAdapter(t, netConfig(srv, "puppet"), tweak, "#lobby"), alice
}

// aliceSays has alice say text in #lobby and returns its msgid, as the
// adapter read it.
func aliceSays(t *testing.T, a testAdapter, alice *testenv.IRCClient, text string) string {
	t.Helper()
	alice.Say("#lobby", text)
	m := a.rec.wait(t, text, func(ev bridge.Event) bool { return textOfEvent(ev) == text })
	if m.Head().Origin.RemoteID == "" {
		t.Fatalf("%q has no msgid", text)
	}
	return m.Head().Origin.RemoteID
}

// linesFrom are the PRIVMSGs and TAGMSGs alice got from nick, once nick's
// next message (marker, sent through the same connection) reached her.
func linesFrom(t *testing.T, a testAdapter, alice *testenv.IRCClient, sender bridge.Sender, nick, marker string) []testenv.IRCLine {
	t.Helper()
	m := message(sender.Network, sender.ID, sender.Name, marker)
	a.send(t, m, "#lobby")
	alice.WaitText(waitFor, "#lobby", nick, marker)
	var out []testenv.IRCLine
	for _, l := range alice.Lines() {
		if (l.Command == "PRIVMSG" || l.Command == "TAGMSG") && strings.EqualFold(l.Nick(), nick) {
			out = append(out, l)
		}
	}
	return out
}

// TestTagsOut: where the server has message-tags, a reply carries
// +draft/reply after the quote line, a reaction is a TAGMSG with the
// action line after it, a removed one a TAGMSG alone, and typing a
// TAGMSG from a puppet in the channel, rate-limited.
func TestTagsOut(t *testing.T) {
	old := typingEvery
	typingEvery = time.Second
	t.Cleanup(func() { typingEvery = old })
	a, alice := ircv3Lobby(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	bob := bridge.Sender{Network: "mx", ID: "@bob:hs", Name: "bob"}
	const puppet = "bob[mx]"

	lunch := aliceSays(t, a, alice, "lunch at noon")
	quote := &bridge.Quote{RemoteID: lunch, SenderName: "alice", Text: "lunch at noon"}

	t.Run("reply", func(t *testing.T) {
		from := alice.Len()
		id, err := a.SendReply(ctx, &bridge.Delivery{Room: "#lobby", Event: message("mx", bob.ID, bob.Name, "or later"), Reply: quote})
		if err != nil {
			t.Fatal(err)
		}
		q := alice.WaitText(waitFor, "#lobby", puppet, "> alice: lunch at noon")
		r := alice.WaitText(waitFor, "#lobby", puppet, "or later")
		if q.HasTag(tagReply) {
			t.Errorf("the quote line is tagged as the reply: %s", q.Raw)
		}
		if got := tagOf(r, tagReply); got != lunch {
			t.Errorf("reply's +draft/reply %q, want alice's msgid %q: %s", got, lunch, r.Raw)
		}
		if got := tagOf(r, "msgid"); id != got || id == "" {
			t.Errorf("remote id %q, want the reply line's msgid %q", id, got)
		}
		if i := slices.IndexFunc(alice.Lines()[from:], func(l testenv.IRCLine) bool { return l.Raw == q.Raw }); i < 0 {
			t.Error("quote line not after the send began")
		}
	})

	t.Run("reaction", func(t *testing.T) {
		from := alice.Len()
		if _, err := a.SendReaction(ctx, &bridge.Delivery{Room: "#lobby", Event: reaction(bob, "👍", false), Target: lunch, Reply: quote}); err != nil {
			t.Fatal(err)
		}
		tm, err := alice.WaitFrom(from, waitFor, tagmsg(puppet, tagReact, "👍"))
		if err != nil {
			t.Fatalf("no +draft/react TAGMSG: %v", err)
		}
		if got := tagOf(tm, tagReply); got != lunch {
			t.Errorf("reaction's +draft/reply %q, want %q", got, lunch)
		}
		alice.WaitText(waitFor, "#lobby", puppet, "\x01ACTION reacted 👍 to \"lunch at noon\"\x01")

		// Tag values are escaped (ircmsg) and come back whole; a line
		// break cannot be in one.
		from = alice.Len()
		if _, err := a.SendReaction(ctx, &bridge.Delivery{Room: "#lobby", Event: reaction(bob, "a;b c\\d\r\ne\x00", false), Target: lunch, Reply: quote}); err != nil {
			t.Fatal(err)
		}
		tm, err = alice.WaitFrom(from, waitFor, tagmsg(puppet, tagReact, `a;b c\d e`))
		if err != nil {
			t.Fatalf("escaped key did not arrive whole: %v", err)
		}
		if !strings.Contains(tm.Raw, `+draft/react=a\:b\sc\\d\se`) {
			t.Errorf("key not escaped as the spec says: %s", tm.Raw)
		}

		from = alice.Len()
		if _, err := a.SendReaction(ctx, &bridge.Delivery{Room: "#lobby", Event: reaction(bob, "👍", true), Target: lunch, Reply: quote}); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.WaitFrom(from, waitFor, tagmsg(puppet, tagUnreact, "👍")); err != nil {
			t.Fatalf("no +draft/unreact TAGMSG: %v", err)
		}
		lines := linesFrom(t, a, alice, bob, puppet, "after unreact")
		for _, l := range lines[len(lines)-2:] {
			if l.Command == "PRIVMSG" && l.Text() != "after unreact" {
				t.Errorf("a removed reaction sent a line: %s", l.Raw)
			}
		}
	})

	t.Run("typing", func(t *testing.T) {
		from := alice.Len()
		for _, active := range []bool{true, true, false, false} {
			if err := a.SendTyping(ctx, &bridge.Delivery{Room: "#lobby", Event: typing(bob, active)}); err != nil {
				t.Fatal(err)
			}
		}
		// carol has no puppet: typing connects none.
		carol := bridge.Sender{Network: "mx", ID: "@carol:hs", Name: "carol"}
		if err := a.SendTyping(ctx, &bridge.Delivery{Room: "#lobby", Event: typing(carol, true)}); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.WaitFrom(from, waitFor, tagmsg(puppet, tagTyping, "done")); err != nil {
			t.Fatalf("no +typing=done: %v", err)
		}
		var states []string
		for _, l := range linesFrom(t, a, alice, bob, puppet, "after typing") {
			if l.HasTag(tagTyping) {
				states = append(states, tagOf(l, tagTyping))
			}
		}
		// The second active came within 3 s of the first; done once.
		if !slices.Equal(states, []string{"active", "done"}) {
			t.Errorf("typing states sent %q, want active, done", states)
		}
		if n := a.puppetCount(); n != 1 {
			t.Errorf("%d puppets: typing connected one", n)
		}
	})

	t.Run("typing renewed", func(t *testing.T) {
		from := alice.Len()
		if err := a.SendTyping(ctx, &bridge.Delivery{Room: "#lobby", Event: typing(bob, true)}); err != nil {
			t.Fatal(err)
		}
		// Said once, renewed every typingEvery until done: IRC clients
		// drop an "active" after 6 s.
		var times []time.Time
		for len(times) < 3 {
			i, l, err := alice.WaitIndex(from, waitFor, tagmsg(puppet, tagTyping, "active"))
			if err != nil {
				t.Fatalf("typing not renewed: %v", err)
			}
			times, from = append(times, l.Time), i+1
		}
		if err := a.SendTyping(ctx, &bridge.Delivery{Room: "#lobby", Event: typing(bob, false)}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(times); i++ {
			if d := times[i].Sub(times[i-1]); d < typingEvery*8/10 {
				t.Errorf("active renewed after %v, more often than every %v", d, typingEvery)
			}
		}
		if _, err := alice.WaitFrom(from, waitFor, tagmsg(puppet, tagTyping, "done")); err != nil {
			t.Fatalf("no done: %v", err)
		}
		// No renewal after done, however long one waits.
		time.Sleep(typingEvery * 3 / 2)
		lines := linesFrom(t, a, alice, bob, puppet, "after renewals")
		if last := lines[len(lines)-2]; tagOf(last, tagTyping) != "done" {
			t.Errorf("after done: %s", last.Raw)
		}
	})

	t.Run("no msgid to name", func(t *testing.T) {
		noID := &bridge.Quote{SenderName: "alice", Text: "lunch at noon"}
		start := alice.Len()
		if _, err := a.SendReply(ctx, &bridge.Delivery{Room: "#lobby", Event: message("mx", bob.ID, bob.Name, "plain reply"), Reply: noID}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SendReaction(ctx, &bridge.Delivery{Room: "#lobby", Event: reaction(bob, "🎉", false), Reply: noID}); err != nil {
			t.Fatal(err)
		}
		alice.WaitText(waitFor, "#lobby", puppet, "\x01ACTION reacted 🎉 to \"lunch at noon\"\x01")
		for _, l := range alice.Lines()[start:] {
			if l.Command == "TAGMSG" || l.HasTag(tagReply) {
				t.Errorf("tags without a msgid: %s", l.Raw)
			}
		}
		var texts []string
		for _, l := range alice.Messages(from(puppet)) {
			texts = append(texts, l.Text())
		}
		if !slices.Contains(texts, "plain reply") {
			t.Errorf("fallback reply missing: %q", texts)
		}
	})

	// Our own TAGMSGs are no events.
	for _, ev := range a.rec.all() {
		if k := ev.Kind(); k == bridge.KindReaction || k == bridge.KindTyping {
			t.Errorf("own %s became an event: %+v", k, ev)
		}
	}
}

// TestTagsOnly: tags_only sends a reply's text with its tag, and a
// reaction's TAGMSG, without the lines for plain clients.
func TestTagsOnly(t *testing.T) {
	a, alice := ircv3Lobby(t, func(a *Adapter) { a.cfg.TagsOnly = true })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	bob := bridge.Sender{Network: "mx", ID: "@bob:hs", Name: "bob"}

	lunch := aliceSays(t, a, alice, "lunch at noon")
	quote := &bridge.Quote{RemoteID: lunch, SenderName: "alice", Text: "lunch at noon"}
	if _, err := a.SendReply(ctx, &bridge.Delivery{Room: "#lobby", Event: message("mx", bob.ID, bob.Name, "or later"), Reply: quote}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendReaction(ctx, &bridge.Delivery{Room: "#lobby", Event: reaction(bob, "👍", false), Target: lunch, Reply: quote}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range linesFrom(t, a, alice, bob, "bob[mx]", "marker") {
		got = append(got, l.Command+" "+l.Text()+" "+tagOf(l, tagReply))
	}
	want := []string{"PRIVMSG or later " + lunch, "TAGMSG #lobby " + lunch, "PRIVMSG marker "}
	if !slices.Equal(got, want) {
		t.Errorf("lines from bob[mx]:\n%q\nwant\n%q", got, want)
	}
}

// TestTagsWithoutMessageTags: on a server without message-tags the reply
// and the reaction are today's fallback lines, a removal and typing
// nothing.
func TestTagsWithoutMessageTags(t *testing.T) {
	noTags := func(caps []string) []string {
		return slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == "message-tags" })
	}
	a, alice := ircv3Lobby(t, func(a *Adapter) {
		a.botCaps, a.puppetCaps = noTags(a.botCaps), noTags(a.puppetCaps)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	bob := bridge.Sender{Network: "mx", ID: "@bob:hs", Name: "bob"}
	quote := &bridge.Quote{RemoteID: "some-msgid", SenderName: "alice", Text: "lunch at noon"}
	if _, err := a.SendReply(ctx, &bridge.Delivery{Room: "#lobby", Event: message("mx", bob.ID, bob.Name, "or later"), Reply: quote}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []bridge.Event{reaction(bob, "👍", false), reaction(bob, "👍", true)} {
		if _, err := a.SendReaction(ctx, &bridge.Delivery{Room: "#lobby", Event: ev, Target: "some-msgid", Reply: quote}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SendTyping(ctx, &bridge.Delivery{Room: "#lobby", Event: typing(bob, true)}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range linesFrom(t, a, alice, bob, "bob[mx]", "marker") {
		got = append(got, l.Command+" "+l.Text())
		if l.HasTag(tagReply) {
			t.Errorf("tagged without message-tags: %s", l.Raw)
		}
	}
	want := []string{"PRIVMSG > alice: lunch at noon", "PRIVMSG or later", "PRIVMSG \x01ACTION reacted 👍 to \"lunch at noon\"\x01", "PRIVMSG marker"}
	if !slices.Equal(got, want) {
		t.Errorf("lines from bob[mx]:\n%q\nwant\n%q", got, want)
	}
}

// TestTagsIn: an IRCv3 client's reply, reactions and typing become the
// model's.
func TestTagsIn(t *testing.T) {
	old := typingActiveTTL
	typingActiveTTL = time.Second
	t.Cleanup(func() { typingActiveTTL = old })
	a, alice := ircv3Lobby(t, nil)
	target := a.send(t, message("mx", "@bob:hs", "bob", "lunch at noon"), "#lobby")
	if target == "" {
		t.Fatal("no msgid for bob's message")
	}
	tag := func(tags map[string]string, command string, params ...string) {
		t.Helper()
		if err := alice.Conn.SendWithTags(tags, command, params...); err != nil {
			t.Fatal(err)
		}
	}
	fromAlice := func(kind bridge.Kind, match func(bridge.Event) bool) func(bridge.Event) bool {
		return func(ev bridge.Event) bool {
			return ev.Kind() == kind && ev.Head().Sender.Name == "alice" && match(ev)
		}
	}
	count := func(kind bridge.Kind) int {
		n := 0
		for _, ev := range a.rec.all() {
			if ev.Kind() == kind && ev.Head().Sender.Name == "alice" {
				n++
			}
		}
		return n
	}

	tag(map[string]string{tagReply: target}, "PRIVMSG", "#lobby", "yes, noon")
	m := a.rec.wait(t, "reply", fromAlice(bridge.KindMessage, func(ev bridge.Event) bool { return textOfEvent(ev) == "yes, noon" })).(*bridge.Message)
	if m.ReplyTo != (bridge.Ref{Remote: target}) {
		t.Errorf("reply to %+v, want remote %q", m.ReplyTo, target)
	}

	tag(map[string]string{tagReact: "🎉", tagReply: target}, "TAGMSG", "#lobby")
	r := a.rec.wait(t, "reaction", fromAlice(bridge.KindReaction, func(bridge.Event) bool { return true })).(*bridge.Reaction)
	if r.Key != "🎉" || r.Target != (bridge.Ref{Remote: target}) || r.Remove || r.Origin.Room != "#lobby" {
		t.Errorf("reaction %+v", r)
	}
	tag(map[string]string{tagUnreact: "🎉", tagReply: target}, "TAGMSG", "#lobby")
	a.rec.wait(t, "unreact", fromAlice(bridge.KindReaction, func(ev bridge.Event) bool {
		r := ev.(*bridge.Reaction)
		return r.Remove && r.Key == "🎉" && r.Target.Remote == target
	}))

	active := func(want bool) func(bridge.Event) bool {
		return func(ev bridge.Event) bool { return ev.(*bridge.Typing).Active == want }
	}
	t.Run("typing", func(t *testing.T) {
		tag(map[string]string{tagTyping: "active"}, "TAGMSG", "#lobby")
		tag(map[string]string{tagTyping: "active"}, "TAGMSG", "#lobby")
		tag(map[string]string{tagTyping: "done"}, "TAGMSG", "#lobby")
		a.rec.wait(t, "typing done", fromAlice(bridge.KindTyping, active(false)))
		if n := count(bridge.KindTyping); n != 2 {
			t.Errorf("%d typing events, want active and done: %s", n, dumpEvents(a.rec.all()))
		}
	})
	t.Run("expires", func(t *testing.T) {
		before := count(bridge.KindTyping)
		tag(map[string]string{tagTyping: "active"}, "TAGMSG", "#lobby")
		a.rec.until(t, "typing expired", func() bool { return count(bridge.KindTyping) == before+2 })
		ev := a.rec.all()
		if last := ev[len(ev)-1]; last.Kind() != bridge.KindTyping || last.(*bridge.Typing).Active {
			t.Errorf("last event %+v, want typing ended", last)
		}
	})
	t.Run("ended by a message", func(t *testing.T) {
		before := count(bridge.KindTyping)
		tag(map[string]string{tagTyping: "active"}, "TAGMSG", "#lobby")
		alice.Say("#lobby", "typed it")
		a.rec.until(t, "typing ended", func() bool { return count(bridge.KindTyping) == before+2 })
		ev := a.rec.all()
		if last := ev[len(ev)-1]; last.Kind() != bridge.KindTyping || last.(*bridge.Typing).Active || textOfEvent(ev[len(ev)-2]) != "typed it" {
			t.Errorf("events end with %+v, %+v; want the message, then typing ended", ev[len(ev)-2], last)
		}
	})
}

// TestTagsPersonalTyping: a person with an IRC account of their own
// types from their own connection, in a relayed room too, where no
// puppet would.
func TestTagsPersonalTyping(t *testing.T) {
	s := testenv.Atheme(t)
	s.RegisterAccount(t, "alice", "alice-pw")
	bob := s.IRC.Client(t, "bob")
	bob.Join("#lobby")
	a := startAdapter(t, netConfig(s.IRC, "relay"), aliceInLobby("alice-pw"), "#lobby")
	if _, err := bob.Wait(waitFor, func(l testenv.IRCLine) bool { return l.Command == "JOIN" && l.Nick() == "alice" }); err != nil {
		t.Fatalf("alice's connection never joined: %v", err)
	}
	// bob may see her JOIN before her own connection has taken it in:
	// typing goes only from a connection in the channel.
	testwait.For(t, "alice's connection in #lobby", func() bool {
		k := a.people.Up("alice")
		return k != nil && k.inChannel("#lobby")
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	alice := personMessage("").Sender
	for _, active := range []bool{true, false} {
		if err := a.SendTyping(ctx, &bridge.Delivery{Room: "#lobby", Event: typing(alice, active)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, state := range []string{"active", "done"} {
		if _, err := bob.Wait(waitFor, tagmsg("alice", tagTyping, state)); err != nil {
			t.Fatalf("bob never saw alice's +typing=%s: %v", state, err)
		}
	}
}
