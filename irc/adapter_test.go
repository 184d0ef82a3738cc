package irc

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mapping"
)

func TestNewDefaultsAndValidation(t *testing.T) {
	n := &config.Network{Type: "irc", Section: &Config{Server: "127.0.0.1:6667", Nick: "bridge"}}
	ad, err := adapters.New("libera", n, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	if a.mode != "puppet" || a.template != "{name}[{network}]" || a.maxPuppets != 50 || a.idle != 30*time.Minute {
		t.Errorf("puppet defaults: %q %q %d %v", a.mode, a.template, a.maxPuppets, a.idle)
	}
	c := a.cfg
	if c.Flood.Burst != 5 || c.Flood.Interval != 0 || c.Username != "bridge" || c.Realname != "Switchboard bridge" ||
		c.MaxLineBytes != 512 || c.ReconnectMax != 2*time.Minute {
		t.Errorf("irc defaults: %+v", c)
	}
	if a.Network() != "libera" {
		t.Errorf("network %q", a.Network())
	}
	for _, bad := range []*config.Network{
		{Type: "irc"},
		{Type: "irc", Section: &Config{Server: "nohost", Nick: "bridge"}},
		{Type: "irc", Section: &Config{Server: "h:1", Nick: "bad nick"}},
		{Type: "irc", Section: &Config{Server: "h:1", Nick: "b\r\nQUIT"}},
		{Type: "irc", Mode: "mirror", Section: &Config{Server: "h:1", Nick: "b"}},
		{Type: "irc", Section: &Config{Server: "h:1", Nick: "b", Password: "x\r\nQUIT"}},
	} {
		if _, err := New("x", bad, testLogger(t)); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestInboundEvents(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby") // first in: operator, may set the topic
	a := startAdapter(t, netConfig(srv, "relay"), nil, "#lobby")

	is := func(kind bridge.Kind, nick string) func(bridge.Event) bool {
		return func(ev bridge.Event) bool {
			return ev.Kind() == kind && ev.Head().Sender.Name == nick
		}
	}
	dave := srv.Client(t, "dave")
	dave.Join("#LOBBY") // the server's casemapping applies
	join := a.rec.wait(t, "dave's join", is(bridge.KindJoin, "dave"))
	// dave is not logged in: his id is a nick, which anyone may take.
	if h := join.Head(); h.Origin != (bridge.Origin{Network: "libera", Room: "#lobby"}) || h.Sender.ID != "dave" || h.Sender.Network != "libera" || h.Sender.Authenticated {
		t.Errorf("join header %+v", h)
	}

	alice.Say("#lobby", "hello \x02world\x02")
	ev := a.rec.wait(t, "message", is(bridge.KindMessage, "alice")).(*bridge.Message)
	if ev.Text != "hello world" || ev.HTML != "hello <b>world</b>" || ev.Emote || ev.Notice {
		t.Errorf("message %+v", ev)
	}
	if ev.Origin.RemoteID == "" || ev.Origin.Room != "#lobby" {
		t.Errorf("origin %+v: want the msgid", ev.Origin)
	}
	if d := time.Since(ev.Time); d < 0 || d > time.Minute {
		t.Errorf("time %v", ev.Time)
	}

	alice.Action("#lobby", "waves")
	alice.Notice("#lobby", "automated")
	a.rec.wait(t, "emote", func(ev bridge.Event) bool {
		m, ok := ev.(*bridge.Message)
		return ok && m.Emote && m.Text == "waves" && !m.Notice
	})
	a.rec.wait(t, "notice", func(ev bridge.Event) bool {
		m, ok := ev.(*bridge.Message)
		return ok && m.Notice && m.Text == "automated"
	})

	alice.Topic("#lobby", "new \x0304topic")
	top := a.rec.wait(t, "topic", is(bridge.KindTopic, "alice")).(*bridge.Topic)
	if top.Topic != "new topic" {
		t.Errorf("topic %q", top.Topic)
	}

	bob := srv.Client(t, "bob")
	bob.Join("#lobby")
	a.rec.wait(t, "bob's join", is(bridge.KindJoin, "bob"))
	bob.SetNick("robert")
	ren := a.rec.wait(t, "rename", is(bridge.KindRename, "robert")).(*bridge.Rename)
	if ren.Previous != "bob" || ren.Sender.ID != "robert" {
		t.Errorf("rename %+v", ren)
	}
	bob.Send("QUIT", "bye now")
	leave := a.rec.wait(t, "robert's quit", is(bridge.KindLeave, "robert")).(*bridge.Leave)
	if !strings.Contains(leave.Reason, "bye now") {
		t.Errorf("quit reason %q", leave.Reason)
	}

	// Our own line is not an event: send one, then a marker from alice.
	a.send(t, message("devices", "sensor-1", "sensor-1", "from the bridge"), "#lobby")
	alice.Part("#lobby", "gone")
	part := a.rec.wait(t, "alice's part", is(bridge.KindLeave, "alice")).(*bridge.Leave)
	if part.Reason != "gone" {
		t.Errorf("part reason %q", part.Reason)
	}
	for _, ev := range a.rec.all() {
		if n := ev.Head().Sender.Name; n == "bridge" || strings.Contains(textOfEvent(ev), "from the bridge") {
			t.Errorf("own line became an event: %+v", ev)
		}
	}

	// Other channels are not bridged; private messages to the bot are
	// for Switchboard itself (TestMessageToBot).
	carol := srv.Client(t, "carol")
	carol.Join("#elsewhere")
	carol.Say("#elsewhere", "not bridged")
	carol.Say("bridge", "private")
	carol.Join("#lobby")
	carol.Say("#lobby", "marker")
	a.rec.wait(t, "marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	for _, ev := range a.rec.all() {
		if s := textOfEvent(ev); s == "not bridged" || s == "private" && !bridge.ToBot(ev) {
			t.Errorf("unbridged line became an event: %+v", ev)
		}
	}
}

func textOfEvent(ev bridge.Event) string {
	if m, ok := ev.(*bridge.Message); ok {
		return m.Text
	}
	return ""
}

func TestInboundAcceptRetries(t *testing.T) {
	srv := testenv.InspIRCd(t)
	a := startAdapter(t, netConfig(srv, "relay"), nil, "#lobby")
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a.rec.wait(t, "join", func(ev bridge.Event) bool { return ev.Kind() == bridge.KindJoin })

	a.rec.failures.Store(3)
	for i := range 5 {
		alice.Say("#lobby", "line "+string(rune('a'+i)))
	}
	// While the router refuses events, the connection keeps working.
	a.send(t, message("devices", "s", "s", "still sending"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "bridge", "<s> still sending")

	a.rec.until(t, "all five lines", func() bool {
		n := 0
		for _, ev := range a.rec.all() {
			if strings.HasPrefix(textOfEvent(ev), "line ") {
				n++
			}
		}
		return n == 5
	})
	var got []string
	for _, ev := range a.rec.all() {
		if s := textOfEvent(ev); strings.HasPrefix(s, "line ") {
			got = append(got, s)
		}
	}
	if strings.Join(got, ",") != "line a,line b,line c,line d,line e" {
		t.Errorf("order %q", got)
	}
	if n := a.rec.attempts.Load(); n < 5+3 {
		t.Errorf("%d Accept calls, want retries", n)
	}
}

func TestRelaySend(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "relay"), nil, "#lobby")

	m := message("devices", "sensor-1", "sensor-1", "hello")
	id := a.send(t, m, "#lobby")
	l := alice.WaitText(waitFor, "#lobby", "bridge", "<sensor-1> hello")
	if _, msgid := l.GetTag("msgid"); id == "" || id != msgid {
		t.Errorf("remote id %q, alice saw msgid %q", id, msgid)
	}

	em := message("devices", "sensor-1", "sensor-1", "waves")
	em.Emote = true
	a.send(t, em, "#lobby")
	alice.WaitText(waitFor, "#lobby", "bridge", "* sensor-1 waves")

	no := message("devices", "sensor-1", "sensor-1", "beep")
	no.Notice = true
	a.send(t, no, "#lobby")
	l = alice.WaitText(waitFor, "#lobby", "bridge", "<sensor-1> beep")
	if l.Command != "NOTICE" {
		t.Errorf("notice sent as %s", l.Command)
	}

	rich := message("matrix", "@u:x", "Ursula", "*hi* there")
	rich.HTML = "<b>hi</b> <a href=\"https://x.org\">there</a>"
	a.send(t, rich, "#lobby")
	alice.WaitText(waitFor, "#lobby", "bridge", "<Ursula> \x02hi\x0f there (https://x.org)")

	if a.puppetCount() != 0 {
		t.Error("relay mode made puppets")
	}
	// A room the adapter was not told about is joined on first use.
	alice.Join("#new")
	a.send(t, message("devices", "sensor-1", "sensor-1", "elsewhere"), "#new")
	alice.WaitText(waitFor, "#new", "bridge", "<sensor-1> elsewhere")

	if _, err := a.Send(context.Background(), delivery(m, "no-prefix")); !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("bad channel: %v, want a permanent error", err)
	}
	if _, err := a.Send(context.Background(), delivery(&bridge.Typing{Header: m.Header}, "#lobby")); !errors.Is(err, bridge.ErrPermanent) {
		t.Errorf("typing event: %v, want a permanent error", err)
	}
}

// Lines Switchboard sends carry a client tag; a line carrying it (another
// Switchboard's puppet in the same channel) is not bridged again.
func TestHopMarker(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	other := srv.Client(t, "otherbridge")
	other.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")

	a.send(t, message("devices", "sensor-1", "sensor-1", "tagged"), "#lobby")
	l := alice.WaitText(waitFor, "#lobby", "sensor-1[devices]", "tagged")
	if !l.HasTag(hopTag) {
		t.Errorf("bridged line carries no %s tag: %s", hopTag, l.Raw)
	}

	if err := other.Conn.SendWithTags(map[string]string{hopTag: ""}, "PRIVMSG", "#lobby", "bridged elsewhere"); err != nil {
		t.Fatal(err)
	}
	other.Say("#lobby", "plain")
	a.rec.wait(t, "the plain line", func(ev bridge.Event) bool { return textOfEvent(ev) == "plain" })
	for _, ev := range a.rec.all() {
		if textOfEvent(ev) == "bridged elsewhere" {
			t.Errorf("a line tagged by another bridge was bridged again")
		}
	}
}

func TestPuppetSend(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")

	id := a.send(t, message("devices", "sensor-1", "sensor-1", "hello"), "#lobby")
	l := alice.WaitText(waitFor, "#lobby", "sensor-1[devices]", "hello")
	if _, msgid := l.GetTag("msgid"); id != msgid {
		t.Errorf("remote id %q, alice saw %q", id, msgid)
	}
	if a.puppetCount() != 1 {
		t.Errorf("%d puppets", a.puppetCount())
	}

	em := message("devices", "sensor-1", "sensor-1", "blinks")
	em.Emote = true
	a.send(t, em, "#lobby")
	alice.WaitText(waitFor, "#lobby", "sensor-1[devices]", "\x01ACTION blinks\x01")

	// A name that is no valid nick is made into one.
	a.send(t, message("matrix", "@zoë:x", "Zoë Ünïcode", "hi"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "Zoe_Unicode[matrix]", "hi")

	// The puppets' own lines and joins never become events.
	alice.Say("#lobby", "marker")
	a.rec.wait(t, "marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	for _, ev := range a.rec.all() {
		if n := ev.Head().Sender.Name; n != "alice" {
			t.Errorf("event from %s: %+v", n, ev)
		}
	}
}

func TestPuppetNickCollision(t *testing.T) {
	srv := testenv.InspIRCd(t)
	squatter := srv.Client(t, "sensor-1[devices]")
	squatter.Join("#lobby")
	botSquatter := srv.Client(t, "bridge")
	_ = botSquatter
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")

	botID := bridge.Sender{Network: "libera", ID: "bridge"}
	if want := mapping.IRCNickAlternative("bridge", 16, botID, 0); a.bot.nick() != want {
		t.Errorf("bot nick %q, want %q", a.bot.nick(), want)
	}
	s := bridge.Sender{Network: "devices", ID: "sensor-1", Name: "sensor-1"}
	a.send(t, message("devices", "sensor-1", "sensor-1", "who am i"), "#lobby")
	want := mapping.IRCNickAlternative("sensor-1[devices]", 30, s, 0)
	squatter.WaitText(waitFor, "#lobby", want, "who am i")
}

func TestLongMessage(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")

	var words []string
	for i := 0; len(strings.Join(words, " ")) < 1500; i++ {
		words = append(words, []string{"lorem", "ipsum", "dolor", "sit", "amet", "çà", "日本語", "🎉"}[i%8]+string(rune('a'+i%26)))
	}
	text := strings.Join(words, " ")
	for _, mode := range []string{"puppet", "relay"} {
		a.mode = mode
		from := alice.Len()
		m := message("devices", "sensor-1", "sensor-1", text)
		a.send(t, m, "#lobby")
		nick := map[string]string{"puppet": "sensor-1[devices]", "relay": "bridge"}[mode]
		var got []string
		for {
			i, l, err := alice.WaitIndex(from, waitFor, func(l testenv.IRCLine) bool {
				return l.Command == "PRIVMSG" && strings.EqualFold(l.Nick(), nick)
			})
			if err != nil {
				t.Fatalf("%s: after %d lines: %v", mode, len(got), err)
			}
			from = i + 1
			if n := len(body(l.Raw)) + 2; n > 512 {
				t.Errorf("%s: line of %d bytes: %q", mode, n, l.Raw)
			}
			piece := l.Text()
			if mode == "relay" {
				if !strings.HasPrefix(piece, "<sensor-1> ") {
					t.Fatalf("relay line without prefix: %q", piece)
				}
				piece = strings.TrimPrefix(piece, "<sensor-1> ")
			}
			got = append(got, piece)
			if len(strings.Join(got, " ")) >= len(text) {
				break
			}
		}
		if len(got) < 4 {
			t.Errorf("%s: %d lines for 1,500 bytes", mode, len(got))
		}
		if strings.Join(got, " ") != text {
			t.Errorf("%s: reassembled text differs:\n got %q\nwant %q", mode, strings.Join(got, " "), text)
		}
	}
}

func TestInjection(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")

	evil := "hello\r\nQUIT :x\x00 world\nPRIVMSG #lobby :\x01VERSION\x01\rNICK y"
	a.send(t, message("devices", "sensor-1", "sensor-1", evil), "#lobby")
	p := "sensor-1[devices]"
	alice.WaitText(waitFor, "#lobby", p, "NICK y")
	var got []string
	for _, l := range alice.Messages(from(p)) {
		got = append(got, l.Text())
	}
	want := []string{"hello", "QUIT :x world", "PRIVMSG #lobby :VERSION", "NICK y"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	// Still there: no QUIT, no NICK, still in the channel.
	for _, l := range alice.Lines() {
		if strings.EqualFold(l.Nick(), p) && l.Command != "PRIVMSG" && l.Command != "JOIN" {
			t.Errorf("puppet did more than talk: %q", l.Raw)
		}
	}
	mark := alice.Len()
	alice.Send("NAMES", "#lobby")
	names, err := alice.WaitFrom(mark, waitFor, func(l testenv.IRCLine) bool { return l.Command == "353" })
	if err != nil || !strings.Contains(strings.ToLower(names.Text()), strings.ToLower(p)) {
		t.Errorf("puppet not in channel: %q %v", names.Raw, err)
	}
	// And the puppet still works.
	a.send(t, message("devices", "sensor-1", "sensor-1", "still here"), "#lobby")
	alice.WaitText(waitFor, "#lobby", p, "still here")

	// Relay mode takes the same path for the text and cleans the name.
	a.mode = "relay"
	a.send(t, message("devices", "x\r\nQUIT", "x\r\nQUIT :y", "a\rb"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "bridge", "<x QUIT :y> b")
	if !a.bot.isUp() {
		t.Error("bot disconnected")
	}
}

func TestPuppetMax(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	n := netConfig(srv, "puppet")
	n.Puppets.Max = 2
	a := startAdapter(t, n, nil, "#lobby")

	for i, name := range []string{"s1", "s2", "s3", "s4"} {
		a.send(t, message("devices", name, name, "hi from "+name), "#lobby")
		if i < 2 {
			alice.WaitText(waitFor, "#lobby", name+"[devices]", "hi from "+name)
		} else {
			alice.WaitText(waitFor, "#lobby", "bridge", "<"+name+"> hi from "+name)
		}
	}
	if a.puppetCount() != 2 {
		t.Errorf("%d puppets, want 2", a.puppetCount())
	}
	// Existing puppets keep speaking for their senders.
	a.send(t, message("devices", "s1", "s1", "again"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "s1[devices]", "again")
}

func TestPuppetIdle(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	n := netConfig(srv, "puppet")
	n.Puppets.Idle = 500 * time.Millisecond
	a := startAdapter(t, n, nil, "#lobby")

	a.send(t, message("devices", "s1", "s1", "hi"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "s1[devices]", "hi")
	if _, err := alice.Wait(waitFor, func(l testenv.IRCLine) bool {
		return l.Command == "QUIT" && strings.EqualFold(l.Nick(), "s1[devices]")
	}); err != nil {
		t.Fatalf("idle puppet did not quit: %v", err)
	}
	deadline := time.Now().Add(waitFor)
	for a.puppetCount() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.puppetCount() != 0 {
		t.Fatalf("%d puppets left", a.puppetCount())
	}
	// Its QUIT did not become an event.
	alice.Say("#lobby", "marker")
	a.rec.wait(t, "marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	for _, ev := range a.rec.all() {
		if ev.Head().Sender.Name != "alice" {
			t.Errorf("event %+v", ev)
		}
	}
	// Speaking again brings it back.
	a.send(t, message("devices", "s1", "s1", "back"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "s1[devices]", "back")
}

func TestMembership(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	alice.Join("#other")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby", "#other")
	s := bridge.Sender{Network: "devices", ID: "s1", Name: "s1"}
	h := bridge.Header{ID: bridge.NewEventID(), Sender: s, Time: time.Now()}
	ctx := context.Background()

	// No puppet yet: membership alone does not make one.
	if err := a.SendMembership(ctx, delivery(&bridge.Join{Header: h}, "#lobby")); err != nil {
		t.Fatal(err)
	}
	if a.puppetCount() != 0 {
		t.Fatal("join made a puppet")
	}
	a.send(t, message("devices", "s1", "s1", "hi"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "s1[devices]", "hi")

	if err := a.SendMembership(ctx, delivery(&bridge.Join{Header: h}, "#other")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Wait(waitFor, func(l testenv.IRCLine) bool {
		return l.Command == "JOIN" && l.Target() == "#other" && strings.EqualFold(l.Nick(), "s1[devices]")
	}); err != nil {
		t.Fatal("no join of #other:", err)
	}

	s.Name = "s1-renamed"
	h.Sender = s
	if err := a.SendMembership(ctx, delivery(&bridge.Rename{Header: h, Previous: "s1"}, "#lobby")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Wait(waitFor, func(l testenv.IRCLine) bool {
		return l.Command == "NICK" && strings.EqualFold(l.Nick(), "s1[devices]") && l.Target() == "s1-renamed[devices]"
	}); err != nil {
		t.Fatal("no nick change:", err)
	}

	if err := a.SendMembership(ctx, delivery(&bridge.Leave{Header: h, Reason: "bye\r\nQUIT"}, "#other")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Wait(waitFor, func(l testenv.IRCLine) bool {
		return l.Command == "PART" && l.Target() == "#other" && strings.EqualFold(l.Nick(), "s1-renamed[devices]") && l.Text() == "bye QUIT"
	}); err != nil {
		t.Fatal("no part:", err)
	}
	// Leaving its last channel ends the puppet (alice, sharing no channel
	// with it any more, does not see it quit).
	a.mu.Lock()
	p := a.puppets[puppetKey(s)]
	a.mu.Unlock()
	if err := a.SendMembership(ctx, delivery(&bridge.Leave{Header: h}, "#lobby")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.k.finished:
	case <-time.After(waitFor):
		t.Fatal("puppet still connected")
	}
	if a.puppetCount() != 0 {
		t.Errorf("%d puppets", a.puppetCount())
	}
	// None of that was reported back as events.
	alice.Say("#lobby", "marker")
	a.rec.wait(t, "marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })
	for _, ev := range a.rec.all() {
		if ev.Head().Sender.Name != "alice" {
			t.Errorf("event %+v", ev)
		}
	}
	// Relay mode ignores membership.
	a.mode = "relay"
	if err := a.SendMembership(ctx, delivery(&bridge.Join{Header: h}, "#lobby")); err != nil || a.puppetCount() != 0 {
		t.Errorf("relay membership: %v, %d puppets", err, a.puppetCount())
	}
}

func TestFloodControl(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	n := netConfig(srv, "relay")
	n.Section.(*Config).Flood = Flood{Burst: 2, Interval: 300 * time.Millisecond}
	a := startAdapter(t, n, nil, "#lobby")
	// Let the joins' tokens come back.
	time.Sleep(700 * time.Millisecond)

	start := time.Now()
	a.send(t, message("d", "s", "s", "1\n2\n3\n4\n5"), "#lobby")
	took := time.Since(start)
	// Two at once, then three more at 300ms each.
	if took < 800*time.Millisecond || took > 3*time.Second {
		t.Errorf("5 lines took %v, want about 900ms", took)
	}
	alice.WaitText(waitFor, "#lobby", "bridge", "<s> 5")
}

func TestConfirmationModes(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	for _, c := range []struct {
		name  string
		caps  []string
		msgid bool
	}{
		{"labels", botCaps, true},
		{"echo only", []string{"message-tags", "echo-message"}, true},
		{"no echo", []string{"message-tags"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := netConfig(srv, "relay")
			n.Section.(*Config).Nick = "bridge" + strings.ReplaceAll(c.name, " ", "")
			a := startAdapter(t, n, func(a *Adapter) { a.botCaps = c.caps }, "#lobby")
			nick := a.bot.nick()
			for i := range 3 {
				text := c.name + " " + string(rune('a'+i))
				id := a.send(t, message("d", "s", "s", text+"\n"+text+" 2"), "#lobby")
				l := alice.WaitText(waitFor, "#lobby", nick, "<s> "+text)
				alice.WaitText(waitFor, "#lobby", nick, "<s> "+text+" 2")
				_, msgid := l.GetTag("msgid")
				if c.msgid && id != msgid {
					t.Errorf("remote id %q, alice saw %q", id, msgid)
				}
				if !c.msgid && id != "" {
					t.Errorf("remote id %q without echo", id)
				}
			}
		})
	}
}

// TestPartialDeliveryNotRepeated makes the server refuse one line of three
// (+c blocks colored lines), then retries the same event: only the refused
// line goes out again.
func TestPartialDeliveryNotRepeated(t *testing.T) {
	srv := testenv.InspIRCdWith(t, testenv.IRCServerConfig{Extra: `<module name="blockcolor">`})
	alice := srv.Client(t, "alice")
	alice.Join("#lobby") // alice creates the channel and is its operator
	alice.Send("MODE", "#lobby", "+c")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")

	m := message("d", "s", "s", "first line\nsecond \x0304red\x03 line\nthird line")
	_, err := a.Send(context.Background(), delivery(m, "#lobby"))
	if err == nil {
		t.Fatal("send succeeded with a line refused")
	}
	alice.WaitText(waitFor, "#lobby", "s[d]", "third line")
	alice.Send("MODE", "#lobby", "-c")
	alice.Wait(waitFor, func(l testenv.IRCLine) bool { return l.Command == "MODE" && l.Text() == "-c" })
	a.send(t, m, "#lobby") // the router's retry
	alice.WaitText(waitFor, "#lobby", "s[d]", "second \x0304red\x03 line")
	got := textsFrom(t, a, alice, "s[d]")
	want := []string{"first line", "third line", "second \x0304red\x03 line"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("alice saw %q, want %q", got, want)
	}
}

func TestReconnect(t *testing.T) {
	srv := testenv.InspIRCd(t)
	n := netConfig(srv, "puppet")
	n.Section.(*Config).ReconnectMax = 2 * time.Second
	a := startAdapter(t, n, nil, "#lobby", "#second")
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a.send(t, message("d", "s", "s", "before"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "s[d]", "before")

	srv.Process.Stop()
	deadline := time.Now().Add(waitFor)
	for a.Connected() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.Connected() {
		t.Fatal("still connected with the server down")
	}
	during := message("d", "s", "s", "during the outage")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := a.Send(ctx, delivery(during, "#lobby"))
	cancel()
	if err == nil {
		t.Fatal("send during the outage succeeded")
	}
	relayed := message("d", "r", "r", "relayed during the outage")
	a.mode = "relay"
	if _, err := a.Send(context.Background(), delivery(relayed, "#lobby")); err == nil {
		t.Fatal("relay send during the outage succeeded")
	}
	a.mode = "puppet"

	online := a.rec.onlineCount()
	srv.Restart()
	a.rec.until(t, "online again", func() bool { return a.rec.onlineCount() > online })
	if !a.Connected() || !a.bot.inChannel("#lobby") || !a.bot.inChannel("#second") {
		t.Fatal("not back in both channels")
	}
	bob := srv.Client(t, "bob")
	bob.Join("#lobby")
	// The router retries what failed; the puppet is new.
	a.send(t, during, "#lobby")
	a.mode = "relay"
	a.send(t, relayed, "#lobby")
	a.mode = "puppet"
	a.send(t, message("d", "s", "s", "after"), "#lobby")
	bob.WaitText(waitFor, "#lobby", "s[d]", "after")
	bob.Say("#lobby", "marker")
	a.rec.wait(t, "bob's marker", func(ev bridge.Event) bool { return textOfEvent(ev) == "marker" })

	var got []string
	for _, l := range bob.Messages(nil) {
		got = append(got, l.Nick()+": "+l.Text())
	}
	want := []string{"s[d]: during the outage", "bridge: <r> relayed during the outage", "s[d]: after"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("bob saw %q, want %q", got, want)
	}
}

func TestStop(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")
	for _, s := range []string{"s1", "s2", "s3"} {
		a.send(t, message("d", s, s, "hi"), "#lobby")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}
	for _, nick := range []string{"bridge", "s1[d]", "s2[d]", "s3[d]"} {
		if _, err := alice.Wait(waitFor, func(l testenv.IRCLine) bool {
			return l.Command == "QUIT" && strings.EqualFold(l.Nick(), nick)
		}); err != nil {
			t.Errorf("%s did not quit", nick)
		}
	}
	if a.Connected() {
		t.Error("connected after stop")
	}
	if _, err := a.Send(ctx, delivery(message("d", "s1", "s1", "x"), "#lobby")); err == nil {
		t.Error("send after stop succeeded")
	}
	if err := a.Stop(ctx); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// TestPuppetRefusedRelays: a server that allows few connections per host
// refuses a puppet; its message goes through the bot instead of waiting.
func TestPuppetRefusedRelays(t *testing.T) {
	srv := testenv.InspIRCdWith(t, testenv.IRCServerConfig{MaxClients: 3})
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, netConfig(srv, "puppet"), nil, "#lobby")
	a.send(t, message("d", "s1", "s1", "one"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "s1[d]", "one")
	a.send(t, message("d", "s2", "s2", "two"), "#lobby") // fourth connection
	alice.WaitText(waitFor, "#lobby", "bridge", "<s2> two")
	start := time.Now()
	a.send(t, message("d", "s3", "s3", "three"), "#lobby") // no new attempt for a while
	alice.WaitText(waitFor, "#lobby", "bridge", "<s3> three")
	if d := time.Since(start); d > time.Second {
		t.Errorf("relaying during the pause took %v", d)
	}
	if a.puppetCount() != 1 {
		t.Errorf("%d puppets", a.puppetCount())
	}
}

func TestKick(t *testing.T) {
	rejoinDelay = 100 * time.Millisecond
	t.Cleanup(func() { rejoinDelay = 5 * time.Second })
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby") // operator
	a := startAdapter(t, netConfig(srv, "relay"), nil, "#lobby")
	bob := srv.Client(t, "bob")
	bob.Join("#lobby")
	a.rec.wait(t, "bob's join", func(ev bridge.Event) bool { return ev.Kind() == bridge.KindJoin })

	alice.Send("KICK", "#lobby", "bob", "behave")
	l := a.rec.wait(t, "bob's kick", func(ev bridge.Event) bool { return ev.Kind() == bridge.KindLeave }).(*bridge.Leave)
	if l.Sender.Name != "bob" || l.Reason != "kicked by alice: behave" {
		t.Errorf("kick event %+v", l)
	}

	mark := alice.Len()
	alice.Send("KICK", "#lobby", "bridge", "out")
	if _, err := alice.WaitFrom(mark, waitFor, func(l testenv.IRCLine) bool {
		return l.Command == "JOIN" && strings.EqualFold(l.Nick(), "bridge")
	}); err != nil {
		t.Fatal("bot did not rejoin after a kick:", err)
	}
	a.send(t, message("d", "s", "s", "back"), "#lobby")
	alice.WaitText(waitFor, "#lobby", "bridge", "<s> back")
	for _, ev := range a.rec.all() {
		if ev.Head().Sender.Name == "bridge" {
			t.Errorf("event about the bot: %+v", ev)
		}
	}
}

func TestStopWhileDisconnected(t *testing.T) {
	n := &config.Network{Type: "irc", Mode: "relay", Section: &Config{
		Server: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), Nick: "bridge", ReconnectMax: time.Hour,
	}}
	ad, err := New("down", n, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	if err := a.Start(context.Background(), newRecorder()); err != nil {
		t.Fatal(err)
	}
	// Let it fail a few times and settle into a long backoff.
	time.Sleep(1500 * time.Millisecond)
	if a.Connected() {
		t.Fatal("connected to nothing")
	}
	if _, err := a.Send(context.Background(), delivery(message("d", "s", "s", "x"), "#lobby")); err == nil {
		t.Error("send while down succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop took %v", d)
	}
	if err := a.Start(context.Background(), newRecorder()); err == nil {
		t.Error("restarted after stop")
	}
}
