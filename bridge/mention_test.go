package bridge_test

import (
	"html"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

func mentionsOf(texts ...string) []bridge.Mention {
	ms := make([]bridge.Mention, len(texts))
	for i, t := range texts {
		ms[i].Text = t
	}
	return ms
}

// A mention's name is replaced where it stands as a word, once, and the
// spans say where the new names are.
func TestRenameMentions(t *testing.T) {
	for _, c := range []struct {
		text  string
		ms    []bridge.Mention
		names []string
		want  string
		spans []bridge.MentionSpan
	}{
		{"bob[m]: hi", mentionsOf("bob[m]"), []string{"bob"}, "bob: hi", []bridge.MentionSpan{{0, 0, 3}}},
		// Not within a longer word; the first whole occurrence.
		{"bobby, bob: hi bob", mentionsOf("bob"), []string{"Bob Smith"}, "bobby, Bob Smith: hi bob", []bridge.MentionSpan{{0, 7, 16}}},
		// Two mentions, given out of text order, and a multi-byte name.
		{"ask carol and Zoë", mentionsOf("Zoë", "carol"), []string{"zoe[x]", "Carol ✓"}, "ask Carol ✓ and zoe[x]",
			[]bridge.MentionSpan{{1, 4, 13}, {0, 18, 24}}},
		// A mention the text does not name, one without text, one
		// left as it is ("" name): only the first span moves.
		{"hi dave", mentionsOf("eve", "", "dave"), []string{"x", "y", ""}, "hi dave", []bridge.MentionSpan{{2, 3, 7}}},
		// The same name twice: two mentions take two occurrences.
		{"al al", mentionsOf("al", "al"), []string{"A", "B"}, "A B", []bridge.MentionSpan{{0, 0, 1}, {1, 2, 3}}},
	} {
		got, spans := bridge.RenameMentions(c.text, c.ms, c.names)
		if got != c.want || !reflect.DeepEqual(spans, c.spans) {
			t.Errorf("RenameMentions(%q) = %q %v, want %q %v", c.text, got, spans, c.want, c.spans)
		}
		for _, s := range spans {
			if name := c.names[s.Index]; name != "" && got[s.Start:s.End] != name {
				t.Errorf("%q: span %v holds %q, want %q", c.text, s, got[s.Start:s.End], name)
			}
		}
	}
}

// In HTML only text counts: not attributes, not the text of links, and
// what is rendered in is HTML while the text around stays escaped.
func TestRenameMentionsHTML(t *testing.T) {
	ms := mentionsOf("bob", "a&b")
	render := func(i int) string { return "<b>" + html.EscapeString([]string{"Bob", "A&B"}[i]) + "</b>" }
	for _, c := range []struct{ src, want string }{
		{"bob: <i>hi</i>", "<b>Bob</b>: <i>hi</i>"},
		{`<a href="https://e.org/bob">bob</a> bob`, `<a href="https://e.org/bob">bob</a> <b>Bob</b>`},
		{"<i>a&amp;b</i> &lt;bob&gt;", "<i><b>A&amp;B</b></i> &lt;<b>Bob</b>&gt;"},
		{"nobody here", "nobody here"},
	} {
		if got := bridge.RenameMentionsHTML(c.src, ms, render); got != c.want {
			t.Errorf("RenameMentionsHTML(%q) = %q, want %q", c.src, got, c.want)
		}
	}
	if got := bridge.RenameMentionsHTML("bob", ms, func(int) string { return "" }); got != "bob" {
		t.Errorf("a mention rendered as \"\" changed the HTML: %q", got)
	}
}

// The router hands each network a person's mention as their account
// there, or where they have none as their puppet identity; a mention of
// anyone else, or an unauthenticated id that happens to be an account,
// stays as it was; the message the other deliveries share is unchanged.
func TestRouterMentionsForEachNetwork(t *testing.T) {
	irc, mqtt, matrix := newPlain(), newPlain(), rich{newPlain()}
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix})
	p, err := mapping.NewPeople([]mapping.Person{
		{ID: "alice", Name: "Alice Liddell", Home: "matrix", Accounts: map[string]string{"irc": "alice", "matrix": "@alice:hs"}},
		{ID: "bob", Name: "Bob", Home: "irc", Accounts: map[string]string{"irc": "bob"}},
	}, map[string]mapping.AccountKey{"irc": strings.ToLower})
	if err != nil {
		t.Fatal(err)
	}
	f.router.People = p

	m := msg("mqtt", "chat/lobby", "sensor", "", "Alice, Bob, carol, mallory")
	m.Mentions = []bridge.Mention{
		{Sender: bridge.Sender{Network: "matrix", ID: "@alice:hs", Name: "Alice", Authenticated: true}, Text: "Alice"},
		{Sender: bridge.Sender{Network: "irc", ID: "person/bob"}, Text: "Bob"},
		{Sender: bridge.Sender{Network: "matrix", ID: "@carol:hs", Name: "carol", Authenticated: true}, Text: "carol"},
		// Not vouched for: whoever took that nick is no person.
		{Sender: bridge.Sender{Network: "irc", ID: "alice", Name: "mallory"}, Text: "mallory"},
	}
	accept(t, f.router, m)

	senders := func(d *bridge.Delivery) []bridge.Sender {
		var out []bridge.Sender
		for _, mn := range d.Event.(*bridge.Message).Mentions {
			s := mn.Sender
			out = append(out, bridge.Sender{Network: s.Network, ID: s.ID, Person: s.Person, Authenticated: s.Authenticated})
		}
		return out
	}
	onIRC := senders(irc.waitRoom(t, "#lobby", 1)[0])
	wantIRC := []bridge.Sender{
		{Network: "irc", ID: "alice", Person: "alice", Authenticated: true},
		{Network: "irc", ID: "bob", Person: "bob", Authenticated: true},
		// Authenticated is never stored: at delivery only a person's
		// account is vouched for.
		{Network: "matrix", ID: "@carol:hs"},
		{Network: "irc", ID: "alice"},
	}
	if !reflect.DeepEqual(onIRC, wantIRC) {
		t.Errorf("IRC got mentions %+v, want %+v", onIRC, wantIRC)
	}
	onMatrix := senders(matrix.waitRoom(t, "!lobby", 1)[0])
	wantMatrix := []bridge.Sender{
		{Network: "matrix", ID: "@alice:hs", Person: "alice", Authenticated: true},
		// Bob has no Matrix account: his puppet identity, his ghost there.
		{Network: "irc", ID: "person/bob", Person: "bob"},
		{Network: "matrix", ID: "@carol:hs"},
		{Network: "irc", ID: "alice"},
	}
	if !reflect.DeepEqual(onMatrix, wantMatrix) {
		t.Errorf("Matrix got mentions %+v, want %+v", onMatrix, wantMatrix)
	}
	if m.Mentions[0].Sender.Network != "matrix" || m.Mentions[1].Sender.ID != "person/bob" {
		t.Errorf("the accepted message's mentions changed: %+v", m.Mentions)
	}
}
