package webrtc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

const aliceToken = "alice-personal-t0ken"

// peopleServer serves lobby and the token room "secret" to alice and bob,
// who have personal tokens, with its log kept for reading.
func peopleServer(t *testing.T) (*server, *testenv.Log) {
	s := startServer(t, testConfig(), "lobby", "secret")
	lg := testenv.NewLog(t)
	s.a.log = lg.Logger()
	s.a.UsePeople([]adapters.PersonalAccount{
		{Person: "alice", Name: "Alice Liddell", ID: "alice", Token: aliceToken},
		{Person: "bob", Name: "Bob", ID: "bob-web", Token: "bob-personal-t0ken"},
		{Person: "carol", Name: "Carol", ID: "carol"}, // no token: not on the page
	})
	return s, lg
}

func personHeader(token string) http.Header {
	h := http.Header{}
	h.Set(PersonHeader, token)
	return h
}

// TestPersonalToken: with her token the peer is alice, whatever name and
// id its hello claims: the events the router gets carry her account and
// are authenticated, her welcome and the other peers' lists say she is
// verified, and her token is in no log.
func TestPersonalToken(t *testing.T) {
	s, lg := peopleServer(t)
	watcher := testenv.MustDialWebRTC(t, s.url, "lobby", "", "watcher", "watcher-1")

	alice, err := testenv.DialWebRTCHeader(t, s.url, "lobby", personHeader(aliceToken))
	if err != nil {
		t.Fatal(err)
	}
	alice.Send(map[string]any{"type": "hello", "name": "someone else", "id": "web-0123"})
	w := alice.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })
	if w.ID != "alice" || w.Name != "Alice Liddell" || w.Person != "alice" {
		t.Errorf("welcome: id %q name %q person %q, want alice, Alice Liddell, alice", w.ID, w.Name, w.Person)
	}
	join := s.rec.WaitEvent(t, func(ev bridge.Event) bool { _, ok := ev.(*bridge.Join); return ok && ev.Head().Sender.ID == "alice" })
	if snd := join.Head().Sender; !snd.Authenticated || snd.Name != "Alice Liddell" || snd.Network != "web" {
		t.Errorf("join sender %+v, want alice's account, authenticated", snd)
	}
	watcher.Wait(t, wait, "alice's join", func(f testenv.WebRTCFrame) bool {
		return f.Type == "join" && f.Sender.ID == "alice" && f.Sender.Name == "Alice Liddell"
	})

	alice.Say("it's really me")
	m := s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "it's really me" })
	if m.Sender.ID != "alice" || !m.Sender.Authenticated || m.Sender.Name != "Alice Liddell" {
		t.Errorf("message sender %+v, want alice's account, authenticated", m.Sender)
	}
	watcher.Wait(t, wait, "her message", func(f testenv.WebRTCFrame) bool {
		return f.Type == "message" && f.Text == "it's really me" && f.Sender.ID == "alice"
	})

	// A newcomer's welcome lists her as verified, the watcher not.
	late := testenv.MustDialWebRTC(t, s.url, "lobby", "", "late", "late-1")
	lw := late.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })
	who := map[string]string{}
	for _, p := range lw.Peers {
		who[p.ID] = p.Person
	}
	if p, ok := who["alice"]; !ok || p != "alice" || who["watcher-1"] != "" {
		t.Errorf("welcome peers %+v, want alice verified as alice, watcher-1 not", lw.Peers)
	}

	// Her personal token and the room's token go together.
	h := personHeader("bob-personal-t0ken")
	h.Set("Authorization", "Bearer s3cr3t")
	bob, err := testenv.DialWebRTCHeader(t, s.url, "secret", h)
	if err != nil {
		t.Fatal(err)
	}
	bob.Send(map[string]any{"type": "hello"}) // no name needed: it is his
	if w := bob.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" }); w.ID != "bob-web" || w.Name != "Bob" {
		t.Errorf("bob's welcome: %q %q", w.ID, w.Name)
	}

	if strings.Contains(lg.String(), aliceToken) || strings.Contains(lg.String(), "bob-personal-t0ken") {
		t.Errorf("a personal token is in the log:\n%s", lg)
	}
}

// TestPersonalTokenRefused: a token that is no one's is refused with 403
// and a reason, before anything is created, not let in under another
// name; a room's token is still asked for first.
func TestPersonalTokenRefused(t *testing.T) {
	s, lg := peopleServer(t)
	for _, c := range []struct {
		room, roomToken, token string
		status                 string
	}{
		{"lobby", "", "wrong", "403"},
		{"lobby", "", "", "403"},
		{"lobby", "", aliceToken + "x", "403"},
		{"lobby", "", "alice-personal-t0ke", "403"},
		{"secret", "s3cr3t", "wrong", "403"},
		{"secret", "", aliceToken, "401"},
	} {
		h := personHeader(c.token)
		if c.roomToken != "" {
			h.Set("Authorization", "Bearer "+c.roomToken)
		}
		_, err := testenv.DialWebRTCHeader(t, s.url, c.room, h)
		var se *testenv.WebRTCStatusError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.status) {
			t.Errorf("%s with personal token %q: %v, want HTTP %s", c.room, c.token, err, c.status)
			continue
		}
		if c.status == "403" && !strings.Contains(se.Body, "personal token not recognised") {
			t.Errorf("%s with personal token %q: body %q, want a reason", c.room, c.token, se.Body)
		}
	}
	s.a.mu.Lock()
	n := len(s.a.sessions)
	s.a.mu.Unlock()
	if n != 0 {
		t.Errorf("%d sessions after refusals, want none", n)
	}
	if evs := s.rec.Events(); len(evs) != 0 {
		t.Errorf("events after refusals: %v", evs)
	}
	if !strings.Contains(lg.String(), "personal token refused") || strings.Contains(lg.String(), "alice-personal-t0ke") {
		t.Errorf("log: want the refusal, without the token:\n%s", lg)
	}
}

// TestClaimedNameNotAuthenticated: a peer without a token is only who it
// says: named alice, it is an anonymous page peer; it cannot take her id,
// which would let it change her messages on the page.
func TestClaimedNameNotAuthenticated(t *testing.T) {
	s, _ := peopleServer(t)
	eve := testenv.MustDialWebRTC(t, s.url, "lobby", "", "alice", "")
	w := eve.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })
	if w.ID == "alice" || w.Person != "" {
		t.Errorf("welcome of a claimed alice: id %q person %q", w.ID, w.Person)
	}
	eve.Say("I am alice")
	m := s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "I am alice" })
	if m.Sender.Authenticated || m.Sender.ID == "alice" || m.Sender.Name != "alice" {
		t.Errorf("claimed alice's message sender %+v, want an unauthenticated peer named alice", m.Sender)
	}

	for _, id := range []string{"alice", "ALICE", "bob-web"} {
		p, err := testenv.DialWebRTC(t, s.url, "lobby", "")
		if err != nil {
			t.Fatal(err)
		}
		p.Send(map[string]any{"type": "hello", "name": "alice", "id": id})
		f := p.Wait(t, wait, "refusal", func(f testenv.WebRTCFrame) bool { return f.Type == "error" || f.Type == "welcome" })
		if f.Type != "error" || f.Code != "not_allowed" || !strings.Contains(f.Message, PersonHeader) {
			t.Errorf("hello with a person's id %q: %s %s %q, want not_allowed naming %s", id, f.Type, f.Code, f.Message, PersonHeader)
		}
	}
	// A person without a web token keeps no id from anyone.
	testenv.MustDialWebRTC(t, s.url, "lobby", "", "carol", "carol")
	for _, ev := range s.rec.Events() {
		if snd := ev.Head().Sender; snd.Authenticated {
			t.Errorf("%s event authenticated: %+v", ev.Kind(), snd)
		}
	}
}

// TestPersonEditsOwnFromAnyAccount: a message alice wrote on IRC (the
// router marked it as hers) may be edited by her from the page, verified,
// and by no one else there.
func TestPersonEditsOwnFromAnyAccount(t *testing.T) {
	s, _ := peopleServer(t)
	eve := testenv.MustDialWebRTC(t, s.url, "lobby", "", "alice", "")
	alice, err := testenv.DialWebRTCHeader(t, s.url, "lobby", personHeader(aliceToken))
	if err != nil {
		t.Fatal(err)
	}
	alice.Send(map[string]any{"type": "hello"})
	alice.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })

	m := adapterstest.Message(bridge.Sender{Network: "libera", ID: "alice", Name: "Alice Liddell", Person: "alice", Home: "libera"}, "typo hree")
	if _, err := s.a.Send(context.Background(), &bridge.Delivery{Room: "lobby", Event: m}); err != nil {
		t.Fatal(err)
	}
	id := string(m.ID)
	eve.Wait(t, wait, "the IRC message", isMessage("typo hree"))
	alice.Wait(t, wait, "the IRC message", isMessage("typo hree"))

	eve.Send(map[string]any{"type": "edit", "target": id, "text": "eve was here"})
	eve.Wait(t, wait, "refusal", func(f testenv.WebRTCFrame) bool { return f.Type == "error" && f.Code == "not_allowed" })
	alice.Send(map[string]any{"type": "edit", "target": id, "text": "typo here"})
	e := s.rec.WaitEvent(t, func(ev bridge.Event) bool { e, ok := ev.(*bridge.Edit); return ok && e.Text == "typo here" })
	if snd := e.Head().Sender; snd.ID != "alice" || !snd.Authenticated {
		t.Errorf("edit sender %+v", snd)
	}
	for _, ev := range s.rec.Events() {
		if ed, ok := ev.(*bridge.Edit); ok && ed.Text == "eve was here" {
			t.Errorf("eve's edit of alice's message was accepted")
		}
	}
}
