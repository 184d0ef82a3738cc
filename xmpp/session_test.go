package xmpp

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// onlineCounter is a Recorder that counts Online calls.
type onlineCounter struct {
	*adapterstest.Recorder
	n atomic.Int32
}

func (o *onlineCounter) Online(string) { o.n.Add(1) }

// TestRestart: after the server restarts, the adapter reconnects, rejoins
// its room and its puppets, tells the router it is back, and delivers.
func TestRestart(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "restart")
	a, _ := newTestAdapter(t, srv, setup{})
	rec := &onlineCounter{Recorder: adapterstest.NewRecorder()}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	if err := a.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	adapterstest.WaitConnected(t, a)
	bob := foreign("libera", "bob", "bob")
	send(t, a, room, message(bob, "before restart"))
	for rec.n.Load() == 0 {
		time.Sleep(10 * time.Millisecond) // Online follows Connected
	}
	online := rec.n.Load()

	srv.Restart(t)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	// The puppet comes back without being asked to speak.
	if _, err := alice.c.WaitFor(waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.Nick() == "bob (libera)" && s.Type() == ""
	}); err != nil {
		t.Fatalf("puppet not rejoined: %v", err)
	}
	deadline := time.Now().Add(waitFor)
	for rec.n.Load() == online {
		if time.Now().After(deadline) {
			t.Fatal("Online not called after the reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	send(t, a, room, message(bob, "after restart"))
	alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "after restart" && s.Nick() == "bob (libera)" })
	alice.say("heard?")
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "heard?" })
}

// TestKickedBotRejoins: a bot kicked from its room goes back in.
func TestKickedBotRejoins(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "kick")
	a, _ := newTestAdapter(t, srv, setup{nick: "bridgebot"})
	rec := start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	r := jid.MustParse(room)
	// The bot, as owner, makes alice an owner, who then kicks the bot.
	res, err := a.iq(context.Background(), c, c.me, r, "set",
		el("http://jabber.org/protocol/muc#admin", "query").add(
			el("http://jabber.org/protocol/muc#admin", "item", "jid", "alice@localhost", "affiliation", "owner")), 5*time.Second)
	if err != nil || res.typ != "result" {
		t.Fatalf("make alice owner: %v %+v", err, res)
	}
	st, err := alice.c.IQ(r, "set", `<query xmlns="http://jabber.org/protocol/muc#admin"><item nick="bridgebot" role="none"><reason>test</reason></item></query>`)
	if err != nil || st.Type() != "result" {
		t.Fatalf("kick: %v %s", err, st.Raw)
	}
	// Out, then back in: alice sees the bot join again, and it hears her.
	i, _, err := alice.c.WaitIndex(0, waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.Nick() == "bridgebot" && s.Type() == "unavailable" && s.MUCStatus(307)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.WaitFrom(i+1, waitFor, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.Nick() == "bridgebot" && s.Type() == ""
	}); err != nil {
		t.Fatal(err)
	}
	waitJoined(t, a, room)
	alice.say("are you back?")
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "are you back?" })
}

// TestRelayMode: a client account joins and relays "<name> text".
func TestRelayMode(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "relay")
	a, _ := newTestAdapter(t, srv, setup{mode: "relay", nick: "relay"})
	rec := start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	send(t, a, room, message(foreign("libera", "bob", "bob"), "hello from IRC"))
	st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.Contains(s.Body(), "hello from IRC") })
	if st.Body() != "<bob> hello from IRC" || st.Nick() != "relay" {
		t.Errorf("relayed %q from %q", st.Body(), st.Nick())
	}
	em := message(foreign("libera", "bob", "bob"), "waves")
	em.Emote = true
	send(t, a, room, em)
	alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "* bob waves" })
	alice.say("hi bob")
	m := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "hi bob" })
	if m.Sender.ID != "alice@localhost" {
		t.Errorf("sender %+v", m.Sender)
	}
	for _, m := range rec.Messages() {
		if strings.Contains(m.Text, "hello from IRC") {
			t.Error("the bot's own message came back")
		}
	}
}

// TestStartTLSRequired: without insecure_plaintext, a server that offers
// no StartTLS is refused rather than logged into in clear.
func TestStartTLSRequired(t *testing.T) {
	srv := newServer(t)
	n := netConfig(srv, setup{mode: "relay"})
	n.Section.(*Config).InsecurePlaintext = false
	log := testenv.NewLog(t)
	ad, err := New("jabber", n, log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	a.t = testTiming
	if err := a.Start(context.Background(), adapterstest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(log.String(), "cannot connect") {
		if time.Now().After(deadline) {
			t.Fatal("no failed connection logged")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.Connected() {
		t.Error("connected without TLS")
	}
	if strings.Contains(log.String(), testUsers["relaybot"]) {
		t.Error("the password was logged")
	}
}

// TestComponentSecretNotLogged: a wrong secret fails the handshake, on
// each server, with the server's refusal in the log (what the setup guide
// tells to look for), and neither secret shows in the log.
func TestComponentSecretNotLogged(t *testing.T) {
	for _, server := range testenv.XMPPServers {
		t.Run(server.Name, func(t *testing.T) {
			componentSecretNotLogged(t, server.Start(t, testenv.XMPPServerConfig{Users: testUsers}))
		})
	}
}

func componentSecretNotLogged(t *testing.T, srv *testenv.XMPPServer) {
	n := netConfig(srv, setup{})
	n.Section.(*Config).Component.Secret = "wrong-secret-value"
	log := testenv.NewLog(t)
	ad, err := New("jabber", n, log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	a.t = testTiming
	if err := a.Start(context.Background(), adapterstest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(log.String(), "cannot connect") {
		if time.Now().After(deadline) {
			t.Fatal("no failed connection logged")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range []string{"wrong-secret-value", srv.ComponentSecret} {
		if strings.Contains(log.String(), s) {
			t.Errorf("secret %q in the log", s)
		}
	}
	if !strings.Contains(log.String(), "not-authorized") {
		t.Errorf("the server's refusal (not-authorized) is not in the log:\n%s", log.String())
	}
}

// TestOversizeDropped: a stanza over max_stanza is dropped with a
// warning and the stream carries on.
func TestOversizeDropped(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "big")
	a, log := newTestAdapter(t, srv, setup{})
	a.maxStanza = 8192
	rec := start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	alice.say(strings.Repeat("x", 20000))
	alice.say("small")
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "small" })
	if n := len(rec.Messages()); n != 1 || a.Dropped()[DropOversize] == 0 || !strings.Contains(log.String(), "oversize") {
		t.Errorf("%d messages, dropped %v", n, a.Dropped())
	}
	// What we send is kept within the limit too.
	long := strings.Repeat("y", 20000)
	send(t, a, room, message(foreign("libera", "bob", "bob"), long))
	st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.HasPrefix(s.Body(), "yyy") })
	if len(st.Raw) > 8192+512 || !strings.HasSuffix(st.Body(), "…") {
		t.Errorf("sent %d bytes", len(st.Raw))
	}
}

// TestDisco: the component and its puppets answer service discovery.
func TestDisco(t *testing.T) {
	srv := newServer(t)
	a, _ := newTestAdapter(t, srv, setup{})
	start(t, a)
	alice := srv.Client(t, "alice", testUsers["alice"])
	st, err := alice.IQ(jid.MustParse(srv.Component), "get", `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	if err != nil {
		t.Fatal(err)
	}
	q := st.Child(nsDiscoInfo, "query")
	if id := q.Child("", "identity"); st.Type() != "result" || id.AttrValue("category") != "gateway" {
		t.Fatalf("disco#info: %s", st.Raw)
	}
	var feats []string
	for _, f := range q.ChildrenNamed("", "feature") {
		feats = append(feats, f.AttrValue("var"))
	}
	for _, want := range []string{nsReactions, nsCorrect, nsReply, nsRetract, nsPing} {
		if !strings.Contains(strings.Join(feats, " "), want) {
			t.Errorf("feature %s missing: %v", want, feats)
		}
	}
	pj, _ := puppetJID(foreign("libera", "bob", "Bob"), srv.Component)
	st, err = alice.IQ(pj, "get", `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	if err != nil || st.Type() != "result" || st.Child(nsDiscoInfo, "query").Child("", "identity").AttrValue("category") != "client" {
		t.Errorf("puppet disco#info: %v %s", err, st.Raw)
	}
	st, err = alice.IQ(jid.MustParse(srv.Component), "get", `<query xmlns="http://jabber.org/protocol/disco#items"/>`)
	if err != nil || st.Type() != "result" {
		t.Errorf("disco#items: %v %s", err, st.Raw)
	}
	st, err = alice.IQ(jid.MustParse(srv.Component), "get", `<query xmlns="urn:example:unknown"/>`)
	if err != nil || st.Type() != "error" {
		t.Errorf("unknown query: %v %s", err, st.Raw)
	}
}

// TestNickConflict: a puppet whose nick an XMPP user holds gets the
// sender's fingerprint appended.
func TestNickConflict(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "conflict")
	a, _ := newTestAdapter(t, srv, setup{})
	start(t, a, room)
	squatter := joinHuman(t, srv, "mallory", room, "bob (libera)")
	bob := foreign("libera", "bob", "bob")
	send(t, a, room, message(bob, "who am I"))
	st := squatter.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "who am I" })
	if want := nickAlternative("bob (libera)", bob, 1); st.Nick() != want {
		t.Errorf("nick %q, want %q", st.Nick(), want)
	}
}

// TestLostReflectionNotRepeated: the server goes away after the room took
// a puppet's message but before the adapter read its reflection. The
// retry after the reconnect finds the message in the room's archive and
// returns its stanza-id instead of sending it again.
func TestLostReflectionNotRepeated(t *testing.T) {
	srv := newServer(t)
	room := newRoomName(srv, "lost")
	a, _ := newTestAdapter(t, srv, setup{})
	const text = "said once"
	// The first session never reads the reflection.
	a.testDropReflection = func(st *stanza) bool { return a.gen == 1 && st.body == text }
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	m := message(foreign("libera", "bob", "bob"), text)
	type result struct {
		id  string
		err error
	}
	res := make(chan result, 1)
	firstErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
		defer cancel()
		for first := true; ; first = false {
			id, err := a.Send(ctx, &bridge.Delivery{Link: "test", Room: room, Event: m})
			if first {
				firstErr <- err
			}
			if err == nil || ctx.Err() != nil || errorsIsPermanent(err) {
				res <- result{id, err}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	sid := alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == text }).StanzaID(room)
	srv.Restart(t)
	if err := <-firstErr; err == nil {
		t.Fatal("the first Send succeeded without the reflection")
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("retry: %v", r.err)
	}
	if r.id != sid {
		t.Errorf("the retry returned %q, want the stanza-id %q of the first send", r.id, sid)
	}
	// A newcomer gets the room's history: the message is there once.
	bob := srv.Client(t, "bob", testUsers["bob"])
	if err := bob.JoinWith(jid.MustParse(room), "Bob", `<x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="100"/></x>`); err != nil {
		t.Fatal(err)
	}
	send(t, a, room, message(foreign("libera", "bob", "bob"), "later"))
	bob.WaitMessage(waitFor, func(s testenv.XMPPStanza) bool { return s.Body() == "later" })
	n := 0
	for _, s := range bob.Stanzas() {
		if s.Kind() == "message" && s.Body() == text {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the room has %q %d times, want once", text, n)
	}
}
