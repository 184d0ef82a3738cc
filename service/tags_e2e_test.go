package service

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestIRCv3TagsWithMatrix: between Matrix and an IRCv3 client (InspIRCd
// with message-tags), replies, reactions and typing travel in their
// native forms both ways (docs/irc.md, "Native forms").
func TestIRCv3TagsWithMatrix(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, ""))
	// echo-message: bob learns the msgid of what he says.
	bob := w.irc.ClientWith(t, testenv.IRCClientConfig{Nick: "bob", Caps: append(slices.Clone(testenv.DefaultCaps), "echo-message")})
	bob.Join(room)
	const puppet = "alice[mx]"
	tagOf := func(l testenv.IRCLine, name string) string {
		_, v := l.GetTag(name)
		return v
	}
	tagmsg := func(from int, name, value string) testenv.IRCLine {
		t.Helper()
		l, err := bob.WaitFrom(from, patience, func(l testenv.IRCLine) bool {
			return l.Command == "TAGMSG" && strings.EqualFold(l.Nick(), puppet) && l.HasTag(name) && tagOf(l, name) == value
		})
		if err != nil {
			t.Fatalf("bob got no TAGMSG %s=%s from %s: %v", name, value, puppet, err)
		}
		return l
	}
	ghost := func(ev *event.Event) bool { return strings.HasPrefix(ev.Sender.Localpart(), "sb_libera_bob") }

	t.Run("from Matrix", func(t *testing.T) {
		bob.Say(room, "lunch at noon")
		msgid := tagOf(bob.WaitText(patience, room, "bob", "lunch at noon"), "msgid")
		orig := w.waitMatrix(t, "bob's message", func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && c.Body == "lunch at noon"
		})

		from := bob.Len()
		w.alice.Reply(w.roomID, orig.ID, "or later")
		reply := bob.WaitText(patience, room, puppet, "or later")
		if got := tagOf(reply, "+draft/reply"); got != msgid {
			t.Errorf("reply's +draft/reply %q, want bob's msgid %q", got, msgid)
		}
		// Plain clients still see what it answers, on the line before.
		var texts []string
		for _, l := range bob.Lines()[from:] {
			if l.Command == "PRIVMSG" && strings.EqualFold(l.Nick(), puppet) {
				texts = append(texts, l.Text())
			}
		}
		if len(texts) < 2 || !strings.HasPrefix(texts[0], "> ") || !strings.Contains(texts[0], "lunch at noon") || texts[1] != "or later" {
			t.Errorf("reply lines %q, want the quote line, then the reply", texts)
		}

		from = bob.Len()
		w.alice.React(w.roomID, orig.ID, "👍")
		if got := tagOf(tagmsg(from, "+draft/react", "👍"), "+draft/reply"); got != msgid {
			t.Errorf("reaction's +draft/reply %q, want %q", got, msgid)
		}
		bob.WaitText(patience, room, puppet, "\x01ACTION reacted 👍 to \"lunch at noon\"\x01")

		// Dendrite pushes no typing to appservices: the transaction as
		// Synapse sends it. alice[mx] is in the channel by now.
		typingTxn := func(txn string, users ...id.UserID) {
			t.Helper()
			list := `[]`
			if len(users) > 0 {
				list = fmt.Sprintf(`[%q]`, users[0])
			}
			body := fmt.Sprintf(`{"events":[],"ephemeral":[{"type":"m.typing","room_id":%q,"content":{"user_ids":%s}}]}`, w.roomID, list)
			if code := w.pushTransactionBody(t, w.mx.HSToken, txn, body); code != http.StatusOK {
				t.Fatalf("typing transaction: %d", code)
			}
		}
		from = bob.Len()
		typingTxn("typing-1", w.alice.UserID)
		tagmsg(from, "+typing", "active")
		typingTxn("typing-2")
		tagmsg(from, "+typing", "done")
	})

	t.Run("from IRC", func(t *testing.T) {
		dinner := w.alice.Text(w.roomID, "dinner?")
		msgid := tagOf(bob.WaitText(patience, room, puppet, "dinner?"), "msgid")
		if msgid == "" {
			t.Fatal("alice's line has no msgid")
		}
		send := func(tags map[string]string, command string, params ...string) {
			t.Helper()
			if err := bob.Conn.SendWithTags(tags, command, params...); err != nil {
				t.Fatal(err)
			}
		}

		send(map[string]string{"+draft/reply": msgid}, "PRIVMSG", room, "sure")
		ev := w.waitMatrix(t, "bob's reply", func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && ghost(ev) && strings.HasSuffix(c.Body, "sure")
		})
		c, _ := messageText(ev)
		if c.RelatesTo == nil || c.RelatesTo.GetReplyTo() != dinner {
			t.Errorf("bob's reply relates to %+v, want a reply to %s", c.RelatesTo, dinner)
		}

		send(map[string]string{"+draft/react": "🎉", "+draft/reply": msgid}, "TAGMSG", room)
		r := w.waitMatrix(t, "bob's reaction", func(ev *event.Event) bool { return ev.Type == event.EventReaction && ghost(ev) })
		rel := r.Content.AsReaction().RelatesTo
		if rel.Type != event.RelAnnotation || rel.EventID != dinner || rel.Key != "🎉" {
			t.Errorf("reaction %+v, want 🎉 on %s", rel, dinner)
		}

		typingOf := func(ev *event.Event) ([]id.UserID, bool) {
			if ev.Type != event.EphemeralEventTyping || ev.RoomID != w.roomID {
				return nil, false
			}
			return ev.Content.AsTyping().UserIDs, true
		}
		send(map[string]string{"+typing": "active"}, "TAGMSG", room)
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		_, at, err := w.alice.WaitFor(ctx, 0, func(ev *event.Event) bool {
			users, ok := typingOf(ev)
			return ok && slices.ContainsFunc(users, func(u id.UserID) bool { return strings.HasPrefix(u.Localpart(), "sb_libera_bob") })
		})
		if err != nil {
			t.Fatalf("bob's ghost never typed: %v", err)
		}
		send(map[string]string{"+typing": "done"}, "TAGMSG", room)
		if _, _, err := w.alice.WaitFor(ctx, at+1, func(ev *event.Event) bool {
			users, ok := typingOf(ev)
			return ok && len(users) == 0
		}); err != nil {
			t.Fatalf("bob's ghost never stopped typing: %v", err)
		}
	})
}
