package bridge_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

func withPeople(t *testing.T, f *fixture) {
	t.Helper()
	p, err := mapping.NewPeople([]mapping.Person{{
		ID: "alice", Name: "Alice Liddell", Home: "matrix",
		Accounts: map[string]string{"irc": "alice", "mqtt": "alices-phone", "matrix": "@alice:hs"},
	}}, map[string]mapping.AccountKey{"irc": strings.ToLower})
	if err != nil {
		t.Fatal(err)
	}
	f.router.People = p
}

// authed is msg from an id the network authenticated.
func authed(network, room, sender, remoteID, text string) *bridge.Message {
	m := msg(network, room, sender, remoteID, text)
	m.Sender.Authenticated = true
	return m
}

// A person's events carry the person and their configured name, from
// whichever account; a bare nick equal to their account does not, nor
// does an id that claims a person itself.
func TestRouterIdentifiesPeople(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	withPeople(t, f)

	accept(t, f.router, authed("irc", "#lobby", "Alice", "irc-1", "from her IRC account"))
	accept(t, f.router, authed("mqtt", "chat/lobby", "alices-phone", "", "from her phone"))
	accept(t, f.router, msg("irc", "#lobby", "alice", "irc-2", "a nick, not an account"))
	forged := msg("irc", "#lobby", "mallory", "irc-3", "claims to be alice")
	forged.Sender.Person, forged.Sender.Home = "alice", "matrix"
	accept(t, f.router, forged)

	// Senders' lanes run side by side: find each by its text.
	got := map[string]bridge.Sender{}
	for _, d := range matrix.waitRoom(t, "!lobby", 4) {
		got[d.Event.(*bridge.Message).Text] = d.Event.Head().Sender
	}
	for _, w := range []struct{ text, person, name string }{
		{"from her IRC account", "alice", "Alice Liddell"},
		{"from her phone", "alice", "Alice Liddell"},
		{"a nick, not an account", "", "alice"},
		{"claims to be alice", "", "mallory"},
	} {
		if s := got[w.text]; s.Person != w.person || s.Name != w.name || s.Home != map[bool]string{true: "matrix"}[w.person != ""] {
			t.Errorf("%q: sender %+v; want person %q named %q", w.text, s, w.person, w.name)
		}
	}
	// One puppet whichever account she wrote from.
	p0, p1 := got["from her IRC account"].Puppet(), got["from her phone"].Puppet()
	if p0 != p1 || p0.Network != "matrix" || p0.ID != "person/alice" || p0.Name != "Alice Liddell" {
		t.Errorf("puppets %+v and %+v, want one: matrix person/alice", p0, p1)
	}
	if p := got["a nick, not an account"].Puppet(); p.ID != "alice" || p.Network != "irc" {
		t.Errorf("an ordinary sender's puppet is %+v, want themselves", p)
	}
	// The IRC room got her phone's message as hers too.
	if s := irc.waitRoom(t, "#lobby", 1)[0].Event.Head().Sender; s.Person != "alice" || s.Network != "mqtt" || s.ID != "alices-phone" {
		t.Errorf("IRC got sender %+v", s)
	}
}

// Her rename is not news (her name is the config's); her edit from
// another account of hers is her own, a stranger's is refused.
func TestPersonRenameDroppedAndEditsFromAnyAccount(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	withPeople(t, f)
	accept(t, f.router, authed("matrix", "!lobby", "@alice:hs", "$a", "typo"))
	irc.waitRoom(t, "#lobby", 1) // IRC knows it as #lobby-1
	ren := &bridge.Rename{Header: authed("irc", "#lobby", "alice", "", "").Header, Previous: "alice_"}
	accept(t, f.router, ren)
	// From her IRC account, an edit of what she wrote on Matrix; then
	// the same from a nick that is not logged in.
	accept(t, f.router, &bridge.Edit{Header: authed("irc", "#lobby", "alice", "irc-e", "").Header, Target: bridge.Ref{Remote: "#lobby-1"}, Text: "fixed"})
	accept(t, f.router, &bridge.Edit{Header: msg("irc", "#lobby", "alice", "irc-f", "").Header, Target: bridge.Ref{Remote: "#lobby-1"}, Text: "forged"})
	accept(t, f.router, authed("irc", "#lobby", "alice", "irc-m", "marker"))
	got := matrix.waitRoom(t, "!lobby", 2)
	if e, ok := got[0].Event.(*bridge.Edit); !ok || e.Text != "fixed" || got[0].Target != "$a" {
		t.Errorf("Matrix got %T %+v, want her edit of $a", got[0].Event, got[0].Event)
	}
	if m, ok := got[1].Event.(*bridge.Message); !ok || m.Text != "marker" {
		t.Errorf("Matrix got %T %+v, want the marker: no rename, no forged edit", got[1].Event, got[1].Event)
	}
}

// A direct message to her puppet identity (a Matrix ghost parses back to
// it) reaches her account on her home network.
func TestDirectMessageToAPersonsPuppet(t *testing.T) {
	irc, matrix := directPlain{newPlain()}, directPlain{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": newPlain(), "matrix": matrix})
	withPeople(t, f)
	dm := authed("irc", "", "bob", "irc-dm", "hi alice")
	dm.To = &bridge.Sender{Network: "matrix", ID: "person/alice"}
	accept(t, f.router, dm)
	got := matrix.waitRoom(t, "", 1)
	if to := got[0].Event.Head().To; to == nil || to.ID != "@alice:hs" || to.Person != "alice" {
		t.Errorf("direct message went to %+v, want @alice:hs", to)
	}
	lost := authed("irc", "", "bob", "irc-dm2", "hi carol")
	lost.To = &bridge.Sender{Network: "matrix", ID: "person/carol"}
	accept(t, f.router, lost)
	f.waitDepth(t, 0)
	if n := len(matrix.room("")); n != 1 {
		t.Errorf("matrix got %d direct messages; the one to nobody must be dropped", n)
	}
}

// A ban of a person's puppet keeps them out of that room from every
// account of theirs; a nick that is not her account is someone else.
func TestBanOfAPersonsPuppetHoldsForEveryAccount(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	withPeople(t, f)
	room := bridge.RoomAddr{Network: "irc", Room: "#lobby"}
	// What the IRC adapter reports when its channel bans her puppet.
	puppet := bridge.Sender{Network: "matrix", ID: "@alice:hs", Person: "alice", Home: "matrix"}.Puppet()
	if err := f.router.Block(context.Background(), bridge.Block{Room: room, Sender: puppet.Ref(), Source: bridge.BlockBan, Reason: "banned"}); err != nil {
		t.Fatal(err)
	}
	accept(t, f.router, authed("matrix", "!lobby", "@alice:hs", "$1", "from matrix"))
	accept(t, f.router, authed("mqtt", "chat/lobby", "alices-phone", "", "from her phone"))
	accept(t, f.router, msg("mqtt", "chat/lobby", "alices-phone", "", "from a device not vouched for"))
	if got := texts(irc.waitRoom(t, "#lobby", 1)); strings.Join(got, "|") != "from a device not vouched for" {
		t.Errorf("the room that banned her puppet got %q", got)
	}
	f.waitDepth(t, 0)
	if n := len(irc.room("#lobby")); n != 1 {
		t.Errorf("the room got %d messages, want 1", n)
	}
}

// A direct message to a person's puppet on their home network is for
// them, not for Switchboard's bot there.
func TestToAPersonsPuppetIsNotToTheBot(t *testing.T) {
	dm := authed("matrix", "", "@bob:hs", "$dm", "hi")
	dm.To = &bridge.Sender{Network: "matrix", ID: "@switchboard:hs"}
	if !bridge.ToBot(dm) {
		t.Error("a message to the bot of the same network is not to the bot")
	}
	dm.To = &bridge.Sender{Network: "matrix", ID: "person/alice"}
	if bridge.ToBot(dm) {
		t.Error("a message to alice's puppet on her home network counts as to the bot")
	}
}

// OnActive hears of what a person does on their home network (their
// client there is in use), not of what comes from their other accounts,
// nor of their leaving.
func TestRouterReportsHomeActivity(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	withPeople(t, f)
	var mu sync.Mutex
	var active []string
	f.router.OnActive = func(person string) {
		mu.Lock()
		active = append(active, person)
		mu.Unlock()
	}
	home := func(ev bridge.Event) bridge.Event {
		h := ev.Head()
		h.Origin = bridge.Origin{Network: "matrix", Room: "!lobby"}
		h.Sender = bridge.Sender{Network: "matrix", ID: "@alice:hs", Authenticated: true}
		return ev
	}
	accept(t, f.router, authed("irc", "#lobby", "alice", "irc-1", "from IRC: not home"))
	accept(t, f.router, authed("matrix", "!lobby", "@bob:hs", "$b", "someone else at home"))
	accept(t, f.router, home(&bridge.Leave{}))
	mu.Lock()
	if len(active) != 0 {
		t.Errorf("active %q, want no one yet", active)
	}
	mu.Unlock()
	accept(t, f.router, authed("matrix", "!lobby", "@alice:hs", "$a", "from her home client"))
	accept(t, f.router, home(&bridge.Typing{Active: true}))
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(active, []string{"alice", "alice"}) {
		t.Errorf("active %q, want alice for her message and her typing", active)
	}
}
