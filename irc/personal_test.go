package irc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// personMessage is a message alice wrote on Matrix, as the core hands it
// over once it knows she is the person alice.
func personMessage(text string) *bridge.Message {
	m := message("matrix", "@alice:localhost", "Alice", text)
	m.Sender.Person, m.Sender.Home = "alice", "matrix"
	return m
}

// alicePeople is the adapter tweak that gives alice her personal account.
func alicePeople(password string) func(*Adapter) {
	return func(a *Adapter) {
		a.UsePeople([]PersonalAccount{{Person: "alice", Home: "matrix", ID: "alice", Password: password}})
	}
}

// aliceInLobby is alicePeople with alice taking part in the link of
// #lobby, as the core tells the adapter: her connection joins it as soon
// as it is up.
func aliceInLobby(password string) func(*Adapter) {
	return func(a *Adapter) {
		alicePeople(password)(a)
		a.PersonalRooms("alice", []string{"#lobby"})
	}
}

// waitStatus waits until alice's personal connection is in a state that
// starts with prefix, and returns it.
func waitStatus(t *testing.T, a testAdapter, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		st := a.PersonalStatus()["alice"]
		if strings.HasPrefix(st, prefix) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's personal connection is %q, want %s…", st, prefix)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// whoisAccount is the account WHOIS says nick is logged in to ("" for
// none).
func whoisAccount(t *testing.T, c *testenv.IRCClient, nick string) string {
	t.Helper()
	from := c.Len()
	c.Send("WHOIS", nick)
	l, err := c.WaitFrom(from, waitFor, func(l testenv.IRCLine) bool { return l.Command == "330" || l.Command == "318" })
	if err != nil {
		t.Fatalf("WHOIS %s: %v", nick, err)
	}
	if l.Command == "330" && len(l.Params) >= 3 {
		return l.Params[2]
	}
	return ""
}

// joinersOf are the nicks c saw join channel.
func joinersOf(c *testenv.IRCClient, channel string) []string {
	var out []string
	for _, l := range c.Lines() {
		if l.Command == "JOIN" && strings.EqualFold(l.Target(), channel) {
			out = append(out, l.Nick())
		}
	}
	return out
}

// TestPersonalConnectionSpeaksAsAccount (issue 21, test 1 at the
// adapter): a message whose sender is alice reaches the channel from nick
// alice, logged in to account alice, and no puppet of hers ever joins.
// Her own line is not bridged back; a line from another client logged in
// to her account is bridged once, as from her.
func TestPersonalConnectionSpeaksAsAccount(t *testing.T) {
	s := testenv.Atheme(t)
	s.RegisterAccount(t, "alice", "alice-pw")
	bob := s.IRC.Client(t, "bob")
	bob.Join("#lobby")
	a := startAdapter(t, netConfig(s.IRC, "puppet"), nil, "#lobby")

	// Sent as soon as she is known: the message waits for her
	// connection rather than going out through a puppet.
	alicePeople("alice-pw")(a.Adapter)
	a.send(t, personMessage("hello from matrix"), "#lobby")
	l := bob.WaitText(waitFor, "#lobby", "alice", "hello from matrix")
	if ok, acc := l.GetTag("account"); !ok || acc != "alice" {
		t.Errorf("the line carries account %q (tag present: %v), want alice: %s", acc, ok, l.Raw)
	}
	if acc := whoisAccount(t, bob, "alice"); acc != "alice" {
		t.Errorf("WHOIS alice: logged in to %q, want alice", acc)
	}
	if st := a.PersonalStatus()["alice"]; st != adapters.PersonalConnected {
		t.Errorf("status %q, want %s", st, adapters.PersonalConnected)
	}

	// Her phone, a second client logged in to her account: InspIRCd with
	// Atheme lets it in under another nick, and its lines carry her
	// account tag.
	phone := s.Login(t, "alice_phone", "alice", "alice-pw")
	phone.Join("#lobby")
	phone.Say("#lobby", "from my phone")
	ev := a.rec.wait(t, "the phone's line", func(ev bridge.Event) bool { return textOfEvent(ev) == "from my phone" })
	// The router makes an authenticated account a person (bridge's
	// person tests); the adapter vouches for the account.
	if got := ev.Head().Sender; !got.Authenticated || got.ID != "alice" {
		t.Errorf("the phone's line is from %+v, want account alice, authenticated", got)
	}

	bob.Say("#lobby", "marker")
	a.rec.wait(t, "marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	n := 0
	for _, ev := range a.rec.all() {
		switch textOfEvent(ev) {
		case "hello from matrix":
			t.Errorf("what alice's connection said was bridged back: %+v", ev)
		case "from my phone":
			n++
		}
	}
	if n != 1 {
		t.Errorf("the phone's line was bridged %d times, want once", n)
	}
	for _, nick := range joinersOf(bob, "#lobby") {
		if nick != "bob" && nick != "bridge" && nick != "alice" && nick != "alice_phone" {
			t.Errorf("%s joined #lobby; no puppet should", nick)
		}
	}
	if n := a.puppetCount(); n != 0 {
		t.Errorf("%d puppets connected, want none", n)
	}

	// Her connection is in the channels of the links she takes part in
	// (the core says which: PersonalRooms), and no other: a channel
	// bridged later is joined once she takes part in its link, parted
	// when she no longer does, and parted when it is no longer bridged.
	bob.Join("#later")
	if err := a.Join(t.Context(), "#later"); err != nil {
		t.Fatal(err)
	}
	if inChannel(t, bob, "#later", "alice") {
		t.Errorf("alice's connection joined #later, a link she takes no part in")
	}
	aliceDoes := func(what, command string) {
		t.Helper()
		if _, err := bob.WaitFrom(bob.Len(), waitFor, func(l testenv.IRCLine) bool {
			return l.Command == command && l.Nick() == "alice" && l.Target() == "#later"
		}); err != nil {
			t.Errorf("alice's connection did not %s: %v", what, err)
		}
	}
	a.PersonalRooms("alice", []string{"#lobby", "#later"})
	aliceDoes("join #later once she takes part in its link", "JOIN")
	a.PersonalRooms("alice", []string{"#lobby"})
	aliceDoes("part #later once she no longer takes part in its link", "PART")
	if !inChannel(t, bob, "#lobby", "alice") {
		t.Errorf("alice's connection left #lobby too")
	}
	a.PersonalRooms("alice", []string{"#lobby", "#later"})
	aliceDoes("join #later again", "JOIN")
	from := bob.Len()
	if err := a.Leave(t.Context(), "#later"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitFrom(from, waitFor, func(l testenv.IRCLine) bool {
		return l.Command == "PART" && l.Nick() == "alice" && l.Target() == "#later"
	}); err != nil {
		t.Errorf("alice's connection did not part a channel no longer bridged: %v", err)
	}
}

// inChannel reports whether NAMES, as c asks for it, lists nick in
// channel.
func inChannel(t *testing.T, c *testenv.IRCClient, channel, nick string) bool {
	t.Helper()
	return slices.Contains(c.Names(waitFor, channel), nick)
}

// capturedLog is the adapter's log, kept to count lines in, and sent to
// the test log too.
type capturedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capturedLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capturedLog) count(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Count(c.buf.String(), s)
}

// TestPersonalWrongPassword (issue 21, test 5 at the adapter): a refused
// login marks alice's account failed with the reason, once in the log;
// her message goes out through her puppet, none is lost, and the login
// is not tried again at once.
func TestPersonalWrongPassword(t *testing.T) {
	s := testenv.Atheme(t)
	s.RegisterAccount(t, "alice", "alice-pw")
	bob := s.IRC.Client(t, "bob")
	bob.Join("#lobby")
	logs := &capturedLog{}
	a := startAdapter(t, netConfig(s.IRC, "puppet"), func(a *Adapter) {
		a.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		alicePeople("wrong")(a)
	}, "#lobby")

	st := waitStatus(t, a, "failed: ")
	if !strings.Contains(st, "SASL") || !strings.Contains(st, "904") {
		t.Errorf("status %q does not name the refused SASL login", st)
	}
	if strings.Contains(st, "wrong") {
		t.Errorf("status %q shows the password", st)
	}
	for i := range 3 {
		a.send(t, personMessage("via the puppet "+string(rune('a'+i))), "#lobby")
	}
	var got []string
	for i := range 3 {
		l := bob.WaitText(waitFor, "#lobby", "", "via the puppet "+string(rune('a'+i)))
		if strings.EqualFold(l.Nick(), "alice") {
			t.Errorf("the message came from nick alice: %s", l.Raw)
		}
		got = append(got, l.Nick())
	}
	if got[0] != got[1] || got[1] != got[2] || !strings.HasPrefix(got[0], "Alice") {
		t.Errorf("messages came from %v, want alice's puppet each time", got)
	}
	// Two seconds is two reconnects at the usual backoff: a refused
	// login must wait much longer.
	time.Sleep(2 * time.Second)
	if n := logs.count(`msg="SASL authentication failed; disconnecting"`); n != 1 {
		t.Errorf("%d SASL attempts, want 1", n)
	}
	if n := logs.count("cannot log in"); n != 1 {
		t.Errorf("%d log lines about the refused login, want 1", n)
	}
	if strings.Contains(logs.buf.String(), "wrong") {
		t.Error("the log shows the password")
	}
}

// TestPersonalNickSpoofed (issue 21, test 6 at the adapter): while
// alice's personal connection is down, someone else takes the nick
// alice; what they say is bridged as an ordinary IRC user, never as
// alice, and alice's messages do not go out as them.
func TestPersonalNickSpoofed(t *testing.T) {
	old := personalRegain
	personalRegain = 300 * time.Millisecond
	t.Cleanup(func() { personalRegain = old })
	s := testenv.Atheme(t)
	s.RegisterAccount(t, "alice", "alice-pw")
	bob := s.IRC.Client(t, "bob")
	bob.Join("#lobby")
	a := startAdapter(t, netConfig(s.IRC, "puppet"), aliceInLobby("alice-pw"), "#lobby")
	waitStatus(t, a, adapters.PersonalConnected)
	if _, err := bob.Wait(waitFor, func(l testenv.IRCLine) bool { return l.Command == "JOIN" && l.Nick() == "alice" }); err != nil {
		t.Fatalf("alice's connection never joined #lobby: %v", err)
	}

	// Her password changed on the services but not here: her connection
	// goes, and the new one is refused.
	from := bob.Len()
	a.UsePeople([]PersonalAccount{{Person: "alice", ID: "alice", Password: "stale"}})
	if _, err := bob.WaitFrom(from, waitFor, func(l testenv.IRCLine) bool { return l.Command == "QUIT" && l.Nick() == "alice" }); err != nil {
		t.Fatalf("alice's connection did not quit: %v", err)
	}
	waitStatus(t, a, "failed: ")

	mallory := s.IRC.Client(t, "alice")
	if mallory.Nick() != "alice" {
		t.Fatalf("mallory got nick %s", mallory.Nick())
	}
	mallory.Join("#lobby")
	mallory.Say("#lobby", "I am alice, trust me")
	ev := a.rec.wait(t, "mallory's line", func(ev bridge.Event) bool { return textOfEvent(ev) == "I am alice, trust me" })
	if got := ev.Head().Sender; got.Authenticated || got.Name != "alice" {
		t.Errorf("mallory's line is from %+v, want the ordinary user alice, not vouched for", got)
	}
	a.rec.wait(t, "mallory's join", func(ev bridge.Event) bool {
		j, ok := ev.(*bridge.Join)
		return ok && j.Sender.Name == "alice" && !j.Sender.Authenticated
	})

	a.send(t, personMessage("the real alice"), "#lobby")
	l := bob.WaitText(waitFor, "#lobby", "", "the real alice")
	if strings.EqualFold(l.Nick(), "alice") {
		t.Errorf("alice's message went out as nick alice, which is not hers now: %s", l.Raw)
	}

	// The right password again: her connection logs in under another
	// nick, which is not her to the channel, so the puppet still speaks.
	a.UsePeople([]PersonalAccount{{Person: "alice", ID: "alice", Password: "alice-pw"}})
	st := waitStatus(t, a, "failed: nick alice is in use")
	a.send(t, personMessage("while the nick is taken"), "#lobby")
	l = bob.WaitText(waitFor, "#lobby", "", "while the nick is taken")
	if !strings.HasPrefix(l.Nick(), "Alice[") {
		t.Errorf("with her nick taken (%s), her message came from %s, want her puppet", st, l.Nick())
	}
	// Once the nick is free, her connection takes it back and speaks.
	mallory.Quit()
	waitStatus(t, a, adapters.PersonalConnected)
	a.send(t, personMessage("my nick again"), "#lobby")
	l = bob.WaitText(waitFor, "#lobby", "alice", "my nick again")
	if ok, acc := l.GetTag("account"); !ok || acc != "alice" {
		t.Errorf("the line carries account %q, want alice: %s", acc, l.Raw)
	}
}

// TestPersonalWaitsThenPuppet: while a person's connection is still
// logging in, their message waits for it up to personalWait, then goes
// out through their puppet.
func TestPersonalWaitsThenPuppet(t *testing.T) {
	old := personalWait
	personalWait = 700 * time.Millisecond
	t.Cleanup(func() { personalWait = old })
	srv := newFakeServer(t, false)
	srv.offerSASL, srv.saslUser, srv.saslPass = true, "botacct", "hunter2"
	srv.hangSASL = "alice"
	srv.start()
	n := fakeNetwork(srv.ln.Addr().String(), false, false)
	n.Mode = "puppet"
	a, rec, _ := startFake(t, n)
	rec.until(t, "online", func() bool { return rec.onlineCount() > 0 })
	a.UsePeople([]PersonalAccount{{Person: "alice", ID: "alice", Password: "alice-s3cret"}})

	start := time.Now()
	if _, err := a.Send(t.Context(), delivery(personMessage("waited"), "#lobby")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if d := time.Since(start); d < personalWait || d > personalWait+5*time.Second {
		t.Errorf("sent after %v, want after waiting %v for her connection", d, personalWait)
	}
	// Written is all the confirmation this server gives: the server
	// reads the line a moment later.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(strings.Join(srv.received(), "\n"), "PRIVMSG #lobby waited"); {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not get the message:\n%s", strings.Join(srv.received(), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Her next message does not wait again while she is still not up.
	start = time.Now()
	if _, err := a.Send(t.Context(), delivery(personMessage("at once"), "#lobby")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if d := time.Since(start); d >= personalWait {
		t.Errorf("the second message waited %v too", d)
	}
	if n := a.puppetCount(); n != 1 {
		t.Errorf("%d puppets, want alice's", n)
	}
	if st := a.PersonalStatus()["alice"]; st != adapters.PersonalConnecting {
		t.Errorf("status %q, want %s", st, adapters.PersonalConnecting)
	}
}

// TestPersonalBannedNeverPuppet: a channel that bans a person's own
// connection keeps them out: the +b matching it is reported at once as a
// ban of the person (not of the account they happen to write from), their
// message fails as blocked, and no puppet of theirs gets in instead. The
// -b lets them in again.
func TestPersonalBannedNeverPuppet(t *testing.T) {
	s := testenv.Atheme(t)
	s.RegisterAccount(t, "alice", "alice-pw")
	bob := s.IRC.Client(t, "bob")
	bob.Join("#lobby") // first in: an operator
	a := startAdapter(t, netConfig(s.IRC, "puppet"), aliceInLobby("alice-pw"), "#lobby")
	if _, err := bob.Wait(waitFor, func(l testenv.IRCLine) bool { return l.Command == "JOIN" && l.Nick() == "alice" }); err != nil {
		t.Fatalf("alice's connection never joined #lobby: %v", err)
	}
	from := bob.Len()
	bob.Send("MODE", "#lobby", "+b", "alice!*@*")
	bob.Send("KICK", "#lobby", "alice", "go away")
	if _, err := bob.WaitFrom(from, waitFor, func(l testenv.IRCLine) bool { return l.Command == "KICK" }); err != nil {
		t.Fatalf("no kick: %v", err)
	}
	person := bridge.BlockKey{Room: bridge.RoomAddr{Network: "libera", Room: "#lobby"},
		Sender: bridge.SenderRef{Network: "matrix", ID: "person/alice"}, Source: bridge.BlockBan}
	if bl := a.rec.WaitBlocks(t, person.Room, 1); bl[0].Key() != person || bl[0].By != "bob" {
		t.Errorf("blocks %+v, want alice the person's ban, by bob", bl)
	}
	// Her connection reads its kick a moment after bob does.
	a.mu.Lock()
	k := a.people.UpConnsLocked()[0]
	a.mu.Unlock()
	for deadline := time.Now().Add(waitFor); k.inChannel("#lobby"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("her connection did not see its kick")
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, err := a.Send(ctx, delivery(personMessage("let me in"), "#lobby"))
	if !errors.Is(err, bridge.ErrBlocked) || !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("send: %v, want a permanent refusal as banned", err)
	}
	// Everything sent before bob's marker reached the adapter has
	// reached bob too.
	bob.Say("#lobby", "marker")
	a.rec.wait(t, "marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	if got := bob.Messages(func(l testenv.IRCLine) bool { return l.Text() == "let me in" }); len(got) > 0 {
		t.Errorf("the message reached the channel: %s", got[0].Raw)
	}
	for _, nick := range joinersOf(bob, "#lobby") {
		if strings.HasPrefix(nick, "Alice[") {
			t.Errorf("her puppet %s joined instead", nick)
		}
	}

	bob.Send("MODE", "#lobby", "-b", "alice!*@*")
	a.rec.WaitBlocks(t, person.Room, 0)
	if _, err := a.Send(ctx, delivery(personMessage("back again"), "#lobby")); err != nil {
		t.Fatalf("send after -b: %v", err)
	}
	if l := bob.WaitText(waitFor, "#lobby", "", "back again"); l.Nick() != "alice" {
		t.Errorf("after -b her message came from %s, want alice", l.Nick())
	}
}
