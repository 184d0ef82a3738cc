package service

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Mentions that ping, against InspIRCd, Prosody and Dendrite: each
// network gets a mention in its own form, under the name the mentioned
// person has there (alice is a Matrix user, bob an IRC user, carol an
// XMPP user).
func TestMentionsPingOnEveryNetwork(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, ""))
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")

	// Everyone speaks once, so that each has a puppet or ghost elsewhere.
	w.alice.Text(w.roomID, "hello all")
	bob.WaitText(patience, room, "alice[mx]", "hello all")
	carol.WaitMessage(patience, groupchatFrom(w.room, "alice (mx)", "hello all"))
	bob.Say(room, "hi there")
	ev := w.waitMatrix(t, "bob's hello", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "hi there"
	})
	bobGhost := ev.Sender
	if c, _ := messageText(ev); c.Mentions == nil || len(c.Mentions.UserIDs) != 0 {
		t.Errorf("a message mentioning nobody has m.mentions %+v, want an empty one", c.Mentions)
	}
	carol.WaitMessage(patience, groupchatFrom(w.room, "bob (libera)", "hi there"))
	if _, err := carol.Say(w.room, "hey"); err != nil {
		t.Fatal(err)
	}
	bob.WaitText(patience, room, "carol[jabber]", "hey")

	t.Run("an IRC nick pings on Matrix and XMPP", func(t *testing.T) {
		bob.Say(room, "alice[mx]: lunch?")
		ev := w.waitMatrix(t, "bob's question", func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && strings.HasSuffix(c.Body, "lunch?")
		})
		c, _ := messageText(ev)
		if c.Body != "alice: lunch?" {
			t.Errorf("body %q, want alice's display name for her puppet's nick", c.Body)
		}
		if c.Mentions == nil || !slices.Equal(c.Mentions.UserIDs, []id.UserID{w.alice.UserID}) {
			t.Errorf("m.mentions %+v, want alice's MXID", c.Mentions)
		}
		if want := fmt.Sprintf(`<a href="https://matrix.to/#/%s">alice</a>: lunch?`, w.alice.UserID); c.FormattedBody != want {
			t.Errorf("formatted body %q, want the pill %q", c.FormattedBody, want)
		}
		st := carol.WaitMessage(patience, groupchatFrom(w.room, "bob (libera)", "alice (mx): lunch?"))
		checkReference(t, st, w.room.String()+"/alice (mx)", 0, 10)
	})

	t.Run("a Matrix pill of an IRC user's ghost reaches IRC as his nick", func(t *testing.T) {
		_, err := w.alice.Send(w.roomID, &event.MessageEventContent{
			MsgType:       event.MsgText,
			Body:          "bob (libera): dinner?",
			Format:        event.FormatHTML,
			FormattedBody: fmt.Sprintf(`<a href="https://matrix.to/#/%s">bob (libera)</a>: dinner?`, bobGhost),
			Mentions:      &event.Mentions{UserIDs: []id.UserID{bobGhost}},
		})
		if err != nil {
			t.Fatal(err)
		}
		bob.WaitText(patience, room, "alice[mx]", "bob: dinner?")
		st := carol.WaitMessage(patience, groupchatFrom(w.room, "alice (mx)", "bob (libera): dinner?"))
		checkReference(t, st, w.room.String()+"/bob (libera)", 0, 12)
	})

	t.Run("an XMPP reference and an occupant nick reach IRC and Matrix", func(t *testing.T) {
		ref := fmt.Sprintf(`<reference xmlns="urn:xmpp:reference:0" type="mention" uri="xmpp:%s/bob%%20(libera)" begin="0" end="12"/>`, w.room)
		if _, err := carol.Say(w.room, "bob (libera): and you, Alice (mx)?", ref); err != nil {
			t.Fatal(err)
		}
		bob.WaitText(patience, room, "carol[jabber]", "bob: and you, alice[mx]?")
		ev := w.waitMatrix(t, "carol's question", func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && strings.HasSuffix(c.Body, "and you, alice?")
		})
		c, _ := messageText(ev)
		if c.Body != "bob (libera): and you, alice?" {
			t.Errorf("body %q", c.Body)
		}
		if c.Mentions == nil || !slices.Equal(c.Mentions.UserIDs, []id.UserID{bobGhost, w.alice.UserID}) {
			t.Errorf("m.mentions %+v, want bob's ghost and alice", c.Mentions)
		}
		want := fmt.Sprintf(`<a href="https://matrix.to/#/%s">bob (libera)</a>: and you, <a href="https://matrix.to/#/%s">alice</a>?`, bobGhost, w.alice.UserID)
		if c.FormattedBody != want {
			t.Errorf("formatted body %q, want %q", c.FormattedBody, want)
		}
	})

	t.Run("a word that is no member's nick mentions nobody", func(t *testing.T) {
		bob.Say(room, "alice, are you there? bobby?")
		ev := w.waitMatrix(t, "bob's call", func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && strings.HasSuffix(c.Body, "bobby?")
		})
		c, _ := messageText(ev)
		if c.Body != "alice, are you there? bobby?" || c.Mentions == nil || len(c.Mentions.UserIDs) != 0 || c.FormattedBody != "" {
			t.Errorf("got body %q, m.mentions %+v, formatted %q: alice's nick on IRC is alice[mx]", c.Body, c.Mentions, c.FormattedBody)
		}
	})
}

// checkReference asserts st's mention reference: to occupant, over
// [begin, end) code points of the body.
func checkReference(t *testing.T, st testenv.XMPPStanza, occupant string, begin, end int) {
	t.Helper()
	ref := st.Child("urn:xmpp:reference:0", "reference")
	if ref == nil {
		t.Fatalf("no reference in %s", st.Raw)
	}
	uri, err := url.PathUnescape(ref.AttrValue("uri"))
	if err != nil || uri != "xmpp:"+occupant || ref.AttrValue("type") != "mention" ||
		ref.AttrValue("begin") != fmt.Sprint(begin) || ref.AttrValue("end") != fmt.Sprint(end) {
		t.Errorf("reference %s, want a mention of %s over [%d,%d)", st.Raw, occupant, begin, end)
	}
}
