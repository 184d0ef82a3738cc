package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// Issue 21, test 1, through the whole service: alice writes from her
// phone (an MQTT device of hers), and the IRC channel sees it from her
// own nick, logged in to her own account (InspIRCd with Atheme, SASL),
// with her configured name nowhere needed; no puppet of hers ever joins.
// Someone who writes as "alice" from a device that is not hers is an
// ordinary sender, spoken for by a puppet.
func TestPersonSpeaksFromTheirOwnIRCAccount(t *testing.T) {
	bob, broker, _ := aliceWorld(t, "Alice Liddell", "alice-pw")

	dev := broker.Client(t, "")
	testenv.MQTTPublish(t, dev, "chat/lobby/in/alices-phone", 1, false, "hello from my phone")
	if l := bob.WaitText(patience, "#lobby", "", "hello from my phone"); l.Nick() != "alice" {
		t.Errorf("alice's message came from %q, want her own nick alice", l.Nick())
	}
	wantLoggedIn(t, bob, "alice", "alice")

	for _, l := range bob.Lines() {
		if l.Command == "JOIN" && l.Nick() != "alice" && l.Nick() != "switchboard" && l.Nick() != "bob" {
			t.Errorf("%s joined: no puppet speaks for alice", l.Nick())
		}
	}

	// A device that is not hers, claiming her name, gets a puppet of its
	// own: a name is no account.
	testenv.MQTTPublish(t, dev, "chat/lobby/in/not-alice", 1, false, `{"text": "I am alice too", "name": "alice"}`)
	if l := bob.WaitText(patience, "#lobby", "", "I am alice too"); l.Nick() == "alice" {
		t.Errorf("a device that is not alice's spoke from her nick")
	}
}

// Issue 21, test 5, through the whole service: alice's IRC password is
// wrong. Her message goes out through her puppet, nothing is lost, and
// /api/status, /status and the metrics name the failure (never the
// password).
func TestPersonWithAWrongPasswordSpeaksThroughTheirPuppet(t *testing.T) {
	bob, broker, svc := aliceWorld(t, "Alice", "not-her-password")
	var state string
	testwait.For(t, "alice's account marked failed", func() bool {
		for _, n := range getStatus(t, svc).Networks {
			if n.Name == "libera" {
				state = n.People["alice"]
			}
		}
		return strings.HasPrefix(state, "failed: ")
	})
	if strings.Contains(state, "not-her-password") {
		t.Errorf("/api/status shows the password: %q", state)
	}
	dev := broker.Client(t, "")
	testenv.MQTTPublish(t, dev, "chat/lobby/in/alices-phone", 1, false, "through my puppet")
	if l := bob.WaitText(patience, "#lobby", "", "through my puppet"); l.Nick() == "alice" || !strings.HasPrefix(l.Nick(), "Alice") {
		t.Errorf("the message came from %q, want her puppet (Alice[…])", l.Nick())
	}
	_, page := httpGet(t, "http://"+svc.HTTPAddr+"/status")
	if !strings.Contains(page, "alice's own account: <span class=\"person-state\">failed: ") {
		t.Errorf("/status does not show alice's failed account")
	}
	_, metrics := httpGet(t, "http://"+svc.HTTPAddr+"/metrics")
	if !strings.Contains(metrics, `switchboard_personal_accounts{network="libera",state="failed"} 1`) {
		t.Errorf("/metrics has no failed personal account on libera")
	}
}

// aliceWorld starts InspIRCd with Atheme (alice's account, password
// alice-pw), Mosquitto and the service linking #lobby with the devices'
// chat/lobby; alice, named name, has the IRC account with password and
// the device alices-phone, her home. bob is in #lobby. more are further
// lines of alice's entry (indented by four).
func aliceWorld(t *testing.T, name, password string, more ...string) (bob *testenv.IRCClient, broker *testenv.MQTTBroker, svc *Service) {
	t.Helper()
	services := testenv.Atheme(t)
	services.RegisterAccount(t, "alice", "alice-pw")
	broker = testenv.Mosquitto(t)
	bob = services.IRC.Client(t, "bob")
	bob.Join("#lobby")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: "127.0.0.1:0" }
networks:
  libera: { type: irc, server: %q, nick: switchboard, rate: { per_second: 0 } }
  devices: { type: mqtt, broker: %q, client_id: sb-people }
links:
  lobby: [ "libera:#lobby", "devices:chat/lobby" ]
people:
  alice:
    name: %q
    home: devices
    accounts:
      libera: { id: alice, password: %q }
      devices: alices-phone
%s
`, t.TempDir(), services.IRC.Addr, broker.URL, name, password, strings.Join(more, "\n"))))
	if err != nil {
		t.Fatal(err)
	}
	svc, _ = runService(t, cfg)
	return bob, broker, svc
}

// peopleSection is a config's people section around people (its
// entries, indented by two), or nothing.
func peopleSection(people string) string {
	if people == "" {
		return ""
	}
	return "people:\n" + people
}

// pworld is every real server at once, alice with an account on each:
// IRC through InspIRCd with Atheme, XMPP on Prosody, Matrix on Dendrite
// (double puppeting), and MQTT.
type pworld struct {
	*mworld
	services *testenv.Services
	svc      *Service
	stop     func() // stops svc
}

const alicePeople = `  alice:
    name: Alice
    home: mx
    accounts:
      libera: { id: alice, password: alice-pw }
      jabber: { id: alice@localhost, password: alice-pw }
      mx: { id: "@alice:localhost", double_puppet: true }
`

// newPWorld starts the servers one after the other (they share two
// cores), then Switchboard with people (alicePeople, or another people
// section), and waits until alice's three personal accounts are settled:
// connected or failed.
func newPWorld(t *testing.T, people string) *pworld { return newPWorldAfter(t, people, nil) }

// newPWorldAfter is newPWorld that runs first, when not nil, once the
// servers are up and before Switchboard starts with cfg (the first IRC
// client in the channel is its operator).
func newPWorldAfter(t *testing.T, people string, first func(w *pworld, cfg *config.Config)) *pworld {
	services := testenv.Atheme(t)
	services.RegisterAccount(t, "alice", "alice-pw")
	xw := newXWorldAround(t, &world{irc: services.IRC, mqtt: testenv.Mosquitto(t), dir: t.TempDir()}, testenv.ProsodyWith, testenv.XMPPServerConfig{})
	w := &pworld{mworld: newMWorldPeople(t, xw, people), services: services}
	cfg := w.config(t, "")
	if first != nil {
		first(w, cfg)
	}
	w.svc, w.stop = runService(t, cfg)
	testwait.For(t, "alice's personal accounts settled", func() bool {
		settled := 0
		for _, n := range getStatus(t, w.svc).Networks {
			if st := n.People["alice"]; st == "connected" || strings.HasPrefix(st, "failed: ") {
				settled++
			}
		}
		return settled == 3
	})
	return w
}

// seen is who text came from, as bob on IRC, carol in the MUC reached bob on IRC, carol in the MUC
// and alice in the Matrix room saw it.
func (w *pworld) seen(bob *testenv.IRCClient, carol *testenv.XMPPClient, text string) (irc, xmpp, mx []string) {
	for _, l := range bob.Messages(func(l testenv.IRCLine) bool { return l.Target() == room && l.Text() == text }) {
		irc = append(irc, l.Nick())
	}
	for _, s := range carol.Stanzas() {
		if s.Type() == "groupchat" && s.Body() == text {
			xmpp = append(xmpp, s.Nick())
		}
	}
	for _, ev := range w.alice.Events() {
		if c, ok := messageText(ev); ok && c.Body == text {
			mx = append(mx, ev.Sender.String())
		}
	}
	return irc, xmpp, mx
}

// noPuppetsOfAlice fails if a puppet or ghost of alice joined anywhere:
// on IRC only the nicks listed, in the MUC no "Alice (…)" occupant, on
// Matrix no ghost made from her.
func (w *pworld) noPuppetsOfAlice(t *testing.T, bob *testenv.IRCClient, carol *testenv.XMPPClient, ircNicks ...string) {
	t.Helper()
	for _, l := range bob.Lines() {
		if l.Command == "JOIN" && !slices.Contains(ircNicks, l.Nick()) {
			t.Errorf("IRC: %s joined; no puppet speaks for alice", l.Nick())
		}
	}
	for _, s := range carol.Stanzas() {
		if s.Kind() == "presence" && strings.HasPrefix(s.From(), w.room.String()+"/Alice (") {
			t.Errorf("XMPP: a puppet of alice joined: %s", s.From())
		}
	}
	for _, ev := range w.alice.Events() {
		if ev.Type == event.StateMember && strings.HasPrefix(id.UserID(ev.GetStateKey()).Localpart(), "sb_") &&
			strings.Contains(strings.ToLower(ev.GetStateKey()), "alice") {
			t.Errorf("Matrix: a ghost of alice joined: %s", ev.GetStateKey())
		}
	}
}

// Issue 21, tests 2, 3 and 4, with every server at once: what alice
// writes from another client of her own, on IRC or in the MUC, reaches
// every other network once, from her own account there (her nick logged
// in to her account, her occupant with her real JID, her own MXID), and
// no puppet or ghost of hers joins anywhere.
func TestPersonSpeaksAsHerselfEverywhere(t *testing.T) {
	w := newPWorld(t, alicePeople)
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")

	// Test 2 and 3: from a second IRC client logged in to her account.
	phone := w.services.Login(t, "alicephone", "alice", "alice-pw")
	phone.Join(room)
	phone.Say(room, "from my IRC phone")
	st := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && s.Body() == "from my IRC phone"
	})
	if j := occupantJID(carol, w.room.String(), st.Nick()); !strings.HasPrefix(j, "alice@localhost/") {
		t.Errorf("the MUC shows it from %q, whose real JID is %q; want her own occupant, alice@localhost/…", st.Nick(), j)
	}
	ev := w.waitMatrix(t, "alice's IRC message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "from my IRC phone"
	})
	if ev.Sender != w.alice.UserID {
		t.Errorf("Matrix shows it from %s, want her own %s", ev.Sender, w.alice.UserID)
	}

	// Test 4: from a second XMPP client of hers, not Switchboard's
	// session, under a nick of its own.
	laptop := w.xmpp.Client(t, "alice", xmppUsers["alice"])
	if err := laptop.Join(w.room, "alice-laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Say(w.room, "from my XMPP laptop"); err != nil {
		t.Fatal(err)
	}
	l := bob.WaitText(patience, room, "", "from my XMPP laptop")
	if l.Nick() != "alice" {
		t.Errorf("IRC shows it from %q, want her own nick alice", l.Nick())
	}
	w.waitMatrix(t, "alice's XMPP message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "from my XMPP laptop"
	})

	// Her IRC nick is logged in to her account.
	wantLoggedIn(t, bob, "alice", "alice")

	// Anything bridged twice or echoed back would have arrived by now.
	time.Sleep(time.Second)
	ircFrom, xmppFrom, mxFrom := w.seen(bob, carol, "from my IRC phone")
	if len(xmppFrom) != 1 || len(mxFrom) != 1 || len(ircFrom) != 1 || ircFrom[0] != "alicephone" {
		t.Errorf("her IRC message: IRC %q, MUC %q, Matrix %q; want once each (IRC: her phone's own line)", ircFrom, xmppFrom, mxFrom)
	}
	ircFrom, xmppFrom, mxFrom = w.seen(bob, carol, "from my XMPP laptop")
	if !slices.Equal(ircFrom, []string{"alice"}) || !slices.Equal(mxFrom, []string{string(w.alice.UserID)}) || !slices.Equal(xmppFrom, []string{"alice-laptop"}) {
		t.Errorf("her XMPP message: IRC %q, MUC %q, Matrix %q; want once each, from her own accounts", ircFrom, xmppFrom, mxFrom)
	}
	w.noPuppetsOfAlice(t, bob, carol, "alice", "alicephone", "switchboard", "bob")
}

// occupantJID is the real JID a non-anonymous room shows for nick, from
// the presences c received.
func occupantJID(c *testenv.XMPPClient, room, nick string) string {
	for _, s := range c.Stanzas() {
		if s.Kind() == "presence" && s.From() == room+"/"+nick {
			if j := s.Child("http://jabber.org/protocol/muc#user", "x").Child("", "item").AttrValue("jid"); j != "" {
				return j
			}
		}
	}
	return ""
}

// Issue 21, test 5's notice: alice's IRC password is wrong; she is told
// once, by the bot of her home network (Matrix), in a direct chat, which
// account failed and why, never the password; her XMPP and Matrix
// accounts still speak as her.
func TestPersonIsToldOnceOnTheirHomeNetworkWhenAnAccountFails(t *testing.T) {
	w := newPWorld(t, strings.Replace(alicePeople, "libera: { id: alice, password: alice-pw }", "libera: { id: alice, password: not-her-password }", 1))
	ev, notice := w.botNotice(t, "libera")
	c, _ := messageText(ev)
	if !strings.Contains(c.Body, "alice on libera") || !strings.Contains(c.Body, "SASL") || strings.Contains(c.Body, "not-her-password") {
		t.Errorf("notice %q: want her account, its network and the reason, never the password", c.Body)
	}
	// Her other accounts are unaffected: what she writes in the MUC
	// from another client reaches Matrix from her own user.
	bob := w.human(t, "bob")
	laptop := w.xmpp.Client(t, "alice", xmppUsers["alice"])
	if err := laptop.Join(w.room, "alice-laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Say(w.room, "still me"); err != nil {
		t.Fatal(err)
	}
	if got := w.waitMatrix(t, "her XMPP message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "still me"
	}); got.Sender != w.alice.UserID {
		t.Errorf("Matrix shows it from %s, want her own user", got.Sender)
	}
	if l := bob.WaitText(patience, room, "", "still me"); l.Nick() == "alice" {
		t.Errorf("IRC shows it from her nick, whose login failed")
	}
	// Several polls later, still one notice.
	time.Sleep(3 * noticeEvery)
	if n := countEvents(w.alice, notice); n != 1 {
		var seen []string
		for _, ev := range w.alice.Events() {
			if notice(ev) {
				c, _ := messageText(ev)
				seen = append(seen, fmt.Sprintf("%s %s at %d: %q", ev.ID, ev.Sender, ev.Timestamp, c.Body))
			}
		}
		t.Errorf("%d notices, want one:\n%s", n, strings.Join(seen, "\n"))
	}
}

// botNotice waits for the Matrix bot's direct chat with alice, joins it,
// and waits there for the bot's message that holds text; notice matches
// such messages, for counting them.
func (w *pworld) botNotice(t *testing.T, text string) (ev *event.Event, notice func(*event.Event) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	dm, err := w.alice.WaitInvite(ctx, func(r id.RoomID) bool { return r != w.roomID })
	if err != nil {
		t.Fatal(err)
	}
	w.alice.Join(string(dm))
	bot := id.NewUserID(w.mx.Bot, w.mx.Domain)
	notice = func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && ev.RoomID == dm && ev.Sender == bot && strings.Contains(c.Body, text)
	}
	return w.waitMatrix(t, "the bot's notice about "+text, notice), notice
}

// countEvents is how many of the events c saw match.
func countEvents(c *testenv.MatrixClient, match func(*event.Event) bool) int {
	n := 0
	for _, ev := range c.Events() {
		if match(ev) {
			n++
		}
	}
	return n
}

// wantLoggedIn asks the IRC server, as c, whom nick is logged in as
// (WHOIS, 330) and fails unless it is account.
func wantLoggedIn(t *testing.T, c *testenv.IRCClient, nick, account string) {
	t.Helper()
	from := c.Len()
	c.Send("WHOIS", nick)
	l, err := c.WaitFrom(from, patience, func(l testenv.IRCLine) bool { return l.Command == "330" || l.Command == "318" })
	if err != nil {
		t.Fatal(err)
	}
	if l.Command != "330" || len(l.Params) < 3 || l.Params[2] != account {
		t.Errorf("WHOIS %s: %v, want logged in to account %s", nick, l, account)
	}
}
