package service

import (
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Issue 23, test 4: threads. A Matrix thread reply reaches IRC and XMPP
// as a reply to the thread's root, and XMPP in that thread (XEP-0201);
// an XMPP answer with that thread id joins the Matrix thread; a thread
// an XMPP client starts with an id of its own becomes a Matrix thread,
// and Matrix answers in it reach XMPP under the client's id, across a
// restart of Switchboard.
func TestThreadsAcrossMatrixXMPPAndIRC(t *testing.T) {
	w := newMWorld(t)
	stop := runSwitchboard(t, w.config(t, ""))
	bob := w.human(t, "bob")
	carol := w.person(t, "carol")

	root := w.alice.Text(w.roomID, "plans for friday")
	bob.WaitText(patience, room, "alice[mx]", "plans for friday")
	rootSID := carol.WaitMessage(patience, groupchatFrom(w.room, "alice (mx)", "plans for friday")).StanzaID(w.room.String())
	if rootSID == "" {
		t.Fatal("the root has no stanza-id in the MUC")
	}

	var inThread id.EventID
	var inThreadSID string
	t.Run("a Matrix thread reply reaches IRC and XMPP as a reply to the root", func(t *testing.T) {
		inThread = w.threadReply(t, root, root, "count me in")
		bob.WaitText(patience, room, "alice[mx]", "count me in")
		if !slices.Contains(messages(bob, "alice[mx]"), "> alice: plans for friday") {
			t.Errorf("IRC got %q, want the quote of the root before the reply", messages(bob, "alice[mx]"))
		}
		st := carol.WaitMessage(patience, func(s testenv.XMPPStanza) bool {
			return s.Type() == "groupchat" && strings.HasSuffix(s.Body(), "count me in")
		})
		if got := st.Child("", "thread").TextOrEmpty(); got != rootSID {
			t.Errorf("XMPP <thread> %q, want the root's stanza-id %q", got, rootSID)
		}
		if got := st.Child("urn:xmpp:reply:0", "reply").AttrValue("id"); got != rootSID {
			t.Errorf("XMPP reply to %q, want the root %q", got, rootSID)
		}
		inThreadSID = st.StanzaID(w.room.String())
	})

	t.Run("an XMPP answer in that thread joins the Matrix thread", func(t *testing.T) {
		if _, err := carol.Say(w.room, "me too", "<thread>"+rootSID+"</thread>"); err != nil {
			t.Fatal(err)
		}
		rel := w.waitThreadMessage(t, "me too")
		if rel.EventID != root || !rel.IsFallingBack || rel.GetReplyTo() != inThread {
			t.Errorf("Matrix relation %+v, want the thread of %s falling back to its latest message %s", rel, root, inThread)
		}
		bob.WaitText(patience, room, "carol[jabber]", "me too")

		// A thread on a message in a thread is that thread: Matrix
		// threads do not nest.
		if _, err := carol.Say(w.room, "same here", "<thread>"+inThreadSID+"</thread>"); err != nil {
			t.Fatal(err)
		}
		if rel := w.waitThreadMessage(t, "same here"); rel.EventID != root {
			t.Errorf("Matrix relation %+v, want the thread of %s", rel, root)
		}
	})

	t.Run("a thread an XMPP client starts is a Matrix thread, and answers keep its id", func(t *testing.T) {
		if _, err := carol.Say(w.room, "which venue?", "<thread>venue-1</thread>"); err != nil {
			t.Fatal(err)
		}
		venue := w.waitMatrix(t, "the thread's first message", func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && c.Body == "which venue?"
		})
		if c, _ := messageText(venue); c.RelatesTo.GetThreadParent() != "" {
			t.Errorf("a thread's first message is in the thread of %s", c.RelatesTo.GetThreadParent())
		}
		if _, err := carol.Say(w.room, "the park?", "<thread>venue-1</thread>"); err != nil {
			t.Fatal(err)
		}
		if rel := w.waitThreadMessage(t, "the park?"); rel.EventID != venue.ID {
			t.Errorf("Matrix relation %+v, want the thread of %s", rel, venue.ID)
		}

		// The client's thread id is remembered across a restart.
		stop()
		stop = runSwitchboard(t, w.config(t, ""))
		if _, err := carol.Say(w.room, "or the beach", "<thread>venue-1</thread>"); err != nil {
			t.Fatal(err)
		}
		if rel := w.waitThreadMessage(t, "or the beach"); rel.EventID != venue.ID {
			t.Errorf("after a restart, Matrix relation %+v, want the thread of %s", rel, venue.ID)
		}
		from := carol.Len()
		w.threadReply(t, venue.ID, venue.ID, "the park is fine")
		st, err := carol.WaitFrom(from, patience, func(s testenv.XMPPStanza) bool {
			return s.Type() == "groupchat" && strings.HasSuffix(s.Body(), "the park is fine")
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Child("", "thread").TextOrEmpty(); got != "venue-1" {
			t.Errorf("XMPP <thread> %q, want the client's id venue-1", got)
		}
	})
}

// threadReply posts text as alice in the thread of root, replying (as a
// fallback) to fallback, and returns its event id.
func (w *mworld) threadReply(t *testing.T, root, fallback id.EventID, text string) id.EventID {
	t.Helper()
	evid, err := w.alice.Send(w.roomID, &event.MessageEventContent{
		MsgType:   event.MsgText,
		Body:      text,
		RelatesTo: (&event.RelatesTo{}).SetThread(root, fallback),
	})
	if err != nil {
		t.Fatal(err)
	}
	return evid
}

// waitThreadMessage waits for a message with body in the Matrix room
// and returns its thread relation.
func (w *mworld) waitThreadMessage(t *testing.T, body string) *event.RelatesTo {
	t.Helper()
	ev := w.waitMatrix(t, body, func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == body && ev.RoomID == w.roomID
	})
	c, _ := messageText(ev)
	if c.RelatesTo == nil || c.RelatesTo.Type != event.RelThread {
		t.Fatalf("%q is in no thread: %+v", body, c.RelatesTo)
	}
	return c.RelatesTo
}
