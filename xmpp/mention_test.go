package xmpp

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
)

// References count code points of the whole body, end excluded, past a
// reply's quote; the URI names the occupant.
func TestMentionReferencesCountCodePoints(t *testing.T) {
	r := newRoom("room@muc.localhost", jid.MustParse("room@muc.localhost"))
	body := "> Zoë: ça va?\nbob (libera) and Zoë ✓: 👍 bob (libera)"
	refs := references(r, body, len("> Zoë: ça va?\n"), []string{"Zoë ✓", "bob (libera)"})
	want := [][3]string{
		{"xmpp:room@muc.localhost/bob%20%28libera%29", "14", "26"},
		{"xmpp:room@muc.localhost/Zo%C3%AB%20%E2%9C%93", "31", "36"},
	}
	if len(refs) != len(want) {
		t.Fatalf("references %v", refs)
	}
	for i, e := range refs {
		if e.get("uri") != want[i][0] || e.get("begin") != want[i][1] || e.get("end") != want[i][2] || e.get("type") != "mention" {
			t.Errorf("reference %d: %s, want %v", i, e, want[i])
		}
	}
	for _, e := range refs {
		j, ok := referenceJID(e.get("uri"))
		if !ok || j.Bare().String() != "room@muc.localhost" {
			t.Errorf("%s does not read back: %v", e.get("uri"), j)
		}
	}
	if got := runeSlice(body, 31, 36); got != "Zoë ✓" {
		t.Errorf("runeSlice = %q", got)
	}
	for _, c := range [][2]int{{-1, 2}, {3, 3}, {40, 90}} {
		if got := runeSlice(body, c[0], c[1]); got != "" {
			t.Errorf("runeSlice(%v) = %q, want nothing", c, got)
		}
	}
}

// Inbound, a reference and an occupant's nick in any case are
// mentions, a puppet's of its sender; the bot and the speaker are not.
func TestInboundMentionsOfOccupants(t *testing.T) {
	a := &Adapter{name: "jabber"}
	r := newRoom("room@muc.localhost", jid.MustParse("room@muc.localhost"))
	r.nick = "switchboard"
	r.occupants["switchboard"] = &occupant{nick: "switchboard", own: true}
	r.occupants["Dave Smith"] = &occupant{nick: "Dave Smith", jid: "dave@localhost"}
	r.occupants["dave"] = &occupant{nick: "dave"}
	r.occupants["carol"] = &occupant{nick: "carol"}
	r.occupants["bob (libera)"] = &occupant{nick: "bob (libera)", own: true}
	r.puppetNicks["bob (libera)"] = &puppet{sender: bridge.Sender{Network: "libera", ID: "bob", Name: "bob"}}
	st := &stanza{body: "bob (libera): dave smith, switchboard?", el: el("jabber:client", "message").add(
		el(nsReference, "reference", "type", "mention", "uri", "xmpp:room@muc.localhost/bob%20(libera)", "begin", "0", "end", "12"))}
	got := a.mentionsLocked(r, st, st.body, "carol")
	if len(got) != 2 {
		t.Fatalf("mentions %+v, want bob's puppet and Dave Smith", got)
	}
	if s := got[0].Sender; s.Network != "libera" || s.ID != "bob" || got[0].Text != "bob (libera)" {
		t.Errorf("first mention %+v, want the sender bob's puppet speaks for", got[0])
	}
	if s := got[1].Sender; s.ID != "dave@localhost" || !s.Authenticated || got[1].Text != "dave smith" {
		t.Errorf("second mention %+v, want Dave Smith's real JID", got[1])
	}
}
